//! Removing a ring's name from outside (`ndring rm`): decided under the segment's exclusive
//! lock, the lock under which an opener confirms its registration and the last handle out
//! removes the name, so that no process attaches between the check and the unlink.

use crate::error::{Error, Result};
use crate::shm::segment::NameRemoval;
use crate::shm::sys;

use super::{Inspector, PeerStatus};

/// What [`Inspector::remove_unless_used`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The name is gone; processes that have the ring mapped keep it.
    Removed,
    /// Live processes are attached (listed); nothing was removed.
    InUse(Vec<PeerStatus>),
    /// The name now refers to another object (this ring was replaced meanwhile); nothing was
    /// removed.
    Replaced,
}

impl Inspector {
    /// Removes the ring's name unless a live process is attached to it. The check and the
    /// unlink run under the segment's exclusive advisory lock: an opener registers, then
    /// confirms under the shared lock that the name still refers to this ring, so it is either
    /// seen here (and nothing is removed) or finds the name gone and fails to open. A lock held
    /// by another process for over a second gives `Err(Timeout)`.
    ///
    /// ```
    /// # use ndring::*;
    /// use ndring::inspect::{Inspector, Removal};
    /// # let name = format!("/ndr-doc-rmunused-{}", std::process::id());
    /// let tx = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc().keep(true))?;
    /// let ring = Inspector::open(&name)?;
    /// assert!(matches!(ring.remove_unless_used()?, Removal::InUse(p) if p.len() == 1));
    /// drop(tx); // kept: the name stays
    /// assert_eq!(ring.remove_unless_used()?, Removal::Removed);
    /// assert!(matches!(Inspector::open(&name), Err(Error::NotFound { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn remove_unless_used(&self) -> Result<Removal> {
        let removal = self.seg.remove_name_unless_used(|| {
            let live: Vec<PeerStatus> = self.peers().into_iter().filter(|p| p.alive).collect();
            (!live.is_empty()).then_some(live)
        });
        match removal {
            Some(Ok(NameRemoval::Removed)) => Ok(Removal::Removed),
            Some(Ok(NameRemoval::InUse(live))) => Ok(Removal::InUse(live)),
            Some(Ok(NameRemoval::Replaced)) => Ok(Removal::Replaced),
            Some(Err(e)) => Err(sys::error(e, "remove", self.name())),
            None => Err(Error::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Producer};

    #[test]
    fn a_ring_replaced_under_the_same_name_is_not_removed() {
        let name = format!("/ndr-rm-replaced-{}", std::process::id());
        let old = Producer::<u8, ndarray::Ix1>::create(&name, 4, &Config::spsc().keep(true))
            .expect("create");
        let ring = Inspector::open(&name).expect("open");
        drop(old);
        crate::remove(&name).expect("remove");
        let _new = Producer::<u8, ndarray::Ix1>::create(&name, 8, &Config::spsc()).expect("create");
        assert_eq!(
            ring.remove_unless_used().expect("remove"),
            Removal::Replaced
        );
        assert_eq!(Inspector::open(&name).expect("the new ring").shape(), &[8]);
        crate::remove(&name).expect("clean up");
    }
}
