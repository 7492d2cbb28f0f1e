//! See `tests/`: the models run only with `RUSTFLAGS="--cfg loom"`.
