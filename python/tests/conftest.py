import itertools
import os

import pytest

import ndring

_counter = itertools.count()


@pytest.fixture
def name():
    """A ring name unique to this test; removed afterwards if it is still there."""
    n = f"/ndr-pytest-{os.getpid()}-{next(_counter)}"
    yield n
    try:
        ndring.remove(n)
    except ndring.NotFound:
        pass
