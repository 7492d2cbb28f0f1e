//! Ring names for the unit tests that remove their ring when the test ends, passed or failed:
//! a ring with items left unread, or one a test leaves a handle of on purpose (a forgotten or
//! "killed" peer), keeps its name otherwise (last one out), and every run of the tests would
//! leave another entry in `/dev/shm`.

/// A ring name, usable as `&str`; removes the ring when dropped. Bind it first in a test, so
/// that it is dropped last, after the test's handles.
pub(crate) struct TestName(String);

impl TestName {
    pub(crate) fn new(name: String) -> TestName {
        TestName(name)
    }
}

impl std::ops::Deref for TestName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for TestName {
    fn drop(&mut self) {
        let _ = crate::remove(&self.0); // already gone if the last handle removed it
    }
}
