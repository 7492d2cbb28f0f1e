//! What an inspector reads of the two kinds that are not rings: a shared array's version,
//! poison flag and lock holders, and a request/reply segment's calls. Loads only: the mapping
//! is read-only, and every word is hostile input (an entry index or a pid is only reported).

use crate::layout::RingKind;
use crate::protocol::array::{EXCLUSIVE, OWNER};
use crate::sync::Ordering::*;

use super::Inspector;

/// A shared array's state, loaded now ([`Inspector::array`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayStatus {
    /// How many writes have ended (the array's version).
    pub version: u64,
    /// Whether a writer died holding the lock (the array may be half-written).
    pub poisoned: bool,
    /// The pid of the whole-array writer holding the lock (or draining readers to take it).
    pub exclusive: Option<u32>,
    /// Peers holding read shares: (pid, shares).
    pub readers: Vec<(u32, u64)>,
    /// Peers writing rows beside others: (pid, range locks held).
    pub range_writers: Vec<(u32, u64)>,
}

impl Inspector {
    /// A shared array's version, poison flag and lock holders by pid (`None` for other kinds).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-insparr-{}", std::process::id());
    /// let sa = SharedArray::<u8, ndarray::Ix1>::create(&name, 4, &Config::array())?;
    /// sa.write()?.fill(1);
    /// let guard = sa.write()?;
    /// let a = ndring::inspect::Inspector::open(&name)?.array().unwrap();
    /// assert_eq!((a.version, a.poisoned, a.exclusive), (1, false, Some(std::process::id())));
    /// drop(guard);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn array(&self) -> Option<ArrayStatus> {
        if self.kind() != RingKind::Array {
            return None;
        }
        let c = self.map().array();
        let lock = c.lock.load(Acquire);
        // Bits 0..32 of the owner tag are the pid, the bits above it the entry + 1.
        let exclusive = (lock & EXCLUSIVE != 0 && lock & OWNER != 0).then_some(lock as u32);
        let (mut readers, mut range_writers) = (Vec::new(), Vec::new());
        for p in self.peers() {
            let e = self.map().peer(p.entry);
            let (holding, pin) = crate::protocol::peers::holds(e);
            if holding != 0 {
                readers.push((p.pid, holding));
            }
            if pin != 0 {
                range_writers.push((p.pid, pin));
            }
        }
        Some(ArrayStatus {
            version: c.versions.done.load(Acquire),
            poisoned: c.state.poisoned.load(Acquire) != 0,
            exclusive,
            readers,
            range_writers,
        })
    }
}
