//! A ring's name taken: `create`, which takes it exclusively, and what already holds
//! it, for `create` and `open_or_create`: the classification of an existing segment, and its
//! guarded removal when its stream is over.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::layout::{self, CONTROL_SIZE, FIXED_SIZE, Fixed, Layout, Params};
use crate::protocol::RingMemory;
use crate::role::{PeerInfo, Role};
use crate::shm::mapping::RawMap;
use crate::shm::peers::Registration;
use crate::shm::segment::{NameRemoval, Segment, remove_name_unless_used, validate_name};
use crate::shm::sys;
use crate::sync::Ordering::*;

/// Creates a segment for `params` under `name` (exclusively), initialises it, registers the
/// calling process as its `role` and marks it ready. A name taken already is made room for
/// ([`make_room`]) when what holds it is over, or refused with why.
///
/// The creator's peer entry is written before READY: an opener that sees the ring also sees
/// its creator attached, so a peer that attaches and leaves before the creator's handle
/// exists never takes itself for the last one out and removes the name (§2.7).
pub(crate) fn create(
    name: &str,
    params: Params,
    config: &Config,
    role: Role,
) -> Result<(Segment, Registration)> {
    validate_name(name)?;
    let layout = Layout::compute(params).map_err(|e| Error::InvalidConfig(e.to_string()))?;
    let size = layout.total_size as u64;
    let fd = loop {
        match sys::create(name, size, config.mode) {
            Ok(fd) => break fd,
            // Replaced if its stream is over; a racing creator that wins is seen next time.
            Err(rustix::io::Errno::EXIST) => make_room(name, config)?,
            Err(e) => {
                return Err(match sys::error(e, "create", name) {
                    Error::NoSpace { name, .. } => Error::NoSpace { name, needed: size },
                    other => other,
                });
            }
        }
    };
    // Held (shared) until READY: a `create` that judges this segment unfinished removes it
    // only under the exclusive lock, so never while we are still setting it up. Best
    // effort: a process that locks our new file on purpose first only costs that guard.
    let locked = sys::try_lock(&fd, false);
    let seg = Segment::lay_out(name, fd, layout, config)?;
    let reg = crate::shm::peers::register_creator(&seg, role, seg.creator_start_time());
    seg.mark_ready(locked);
    Ok((seg, reg))
}

/// What a ring's state means for a `create` or `open_or_create` of its name.
pub(crate) enum Condition {
    /// Live peers are attached and it is not closed: in use (the pid of its live creator, or of
    /// a live peer).
    Live(u32),
    /// Closed, but live peers are still attached.
    ClosedInUse(Vec<PeerInfo>),
    /// No live peer, and closed or with nothing unread: its stream is over; replaceable.
    Finished,
    /// No live peer, not closed, items unread: a producer left them for a consumer to come.
    Abandoned,
}

impl Segment {
    /// What this ring's state means for a `create` or `open_or_create` of its name.
    pub(crate) fn condition(&self) -> Condition {
        let live = crate::shm::peers::live(self);
        let closed = self.positions().closed;
        match (live.is_empty(), closed) {
            (false, true) => Condition::ClosedInUse(live),
            (false, false) => Condition::Live(if self.creator_alive() {
                self.creator_pid()
            } else {
                live[0].pid
            }),
            (true, true) => Condition::Finished,
            (true, false) if crate::shm::peers::unread(self) => Condition::Abandoned,
            // A kept shared array outlives its users: its contents are what it is kept for.
            (true, false)
                if self.kind() == crate::layout::RingKind::Array
                    && crate::protocol::peers::kept(self) =>
            {
                Condition::Abandoned
            }
            // Nobody ever attached, and its creator lives: a creator that registers only after
            // READY (ndring's own creators register before it, §2.7) is still setting it up.
            (true, false)
                if self.control().lifecycle.seen.load(Acquire) == 0 && self.creator_alive() =>
            {
                Condition::Live(self.creator_pid())
            }
            (true, false) => Condition::Finished,
        }
    }
}

/// What holds a name already: a ready ring and its [`Condition`], or a segment never made ready.
enum Existing {
    /// Boxed: the other variants are a few words (a cold path, once per name taken).
    Ready(Box<Segment>, Condition),
    /// Never made ready, by a creator that is alive (this pid): a creation in progress.
    Creating(u32),
    /// Never made ready by its creator, who is dead (or unknown: it never wrote its header).
    Abandoned(NotReady),
    /// Became ready while we looked: the caller's create fails again and looks again.
    Retry,
    Unknown,
}

/// A segment that never became ready, as judged through `fd` (the public listing's
/// `inspect::Unfinished` is its description for `ndring ls`).
struct NotReady {
    fd: sys::Handle,
    /// Its creator (pid, start time), if its fixed header was written.
    creator: Option<(u32, u64)>,
}

impl NotReady {
    fn pid(&self) -> u32 {
        self.creator.map_or(0, |(pid, _)| pid)
    }
}

/// Makes room for an exclusive create of `name`, which found the name taken: returns once the
/// segment there was removed (or the name was gone or replaced meanwhile: the caller retries
/// the create either way), or the typed error that says why it stays.
pub(crate) fn make_room(name: &str, config: &Config) -> Result<()> {
    let stale = |creator_pid| Error::Stale {
        name: name.into(),
        creator_pid,
    };
    let removed = match classify(name, config.ready_timeout) {
        Existing::Ready(_, Condition::Live(pid)) | Existing::Creating(pid) => {
            return Err(Error::AlreadyExists {
                name: name.into(),
                creator_pid: Some(pid),
            });
        }
        Existing::Ready(_, Condition::ClosedInUse(peers)) => {
            return Err(Error::InUse {
                name: name.into(),
                peers,
            });
        }
        // Its stream is over and nobody is attached: never a poisoned name.
        Existing::Ready(seg, Condition::Finished) => remove_over(&seg, config),
        Existing::Ready(seg, Condition::Abandoned) if config.replace_stale => {
            remove_over(&seg, config)
        }
        Existing::Ready(seg, Condition::Abandoned) => return Err(stale(seg.creator_pid())),
        Existing::Abandoned(u) if config.replace_stale => remove_unfinished(name, &u),
        Existing::Abandoned(u) => return Err(stale(u.pid())),
        Existing::Retry => Ok(()),
        Existing::Unknown => {
            return Err(Error::AlreadyExists {
                name: name.into(),
                creator_pid: None,
            });
        }
    };
    match removed {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(sys::error(e, "remove", name)),
    }
}

/// Removes a ready ring judged over, unless the name was replaced meanwhile or a peer attached
/// since we looked (then the caller looks again). Under the segment's exclusive lock: an opener
/// that registered in between confirms the name under the shared one, so it either shows here
/// as a live peer or finds the name gone.
fn remove_over(seg: &Segment, config: &Config) -> Result<(), rustix::io::Errno> {
    let removal = seg.remove_name_unless_used(|| {
        let over = match seg.condition() {
            Condition::Finished => true,
            Condition::Abandoned => config.replace_stale,
            _ => false,
        };
        (!over).then_some(())
    });
    removed(removal)
}

/// A removal's outcome for `make_room`: the caller retries its create unless the unlink failed
/// or the lock was held for over a second (by a process that does so on purpose).
fn removed(
    removal: Option<Result<NameRemoval<()>, rustix::io::Errno>>,
) -> Result<(), rustix::io::Errno> {
    match removal {
        Some(r) => r.map(|_| ()),
        None => Err(rustix::io::Errno::BUSY),
    }
}

/// Removes a segment judged unfinished, like [`remove_over`]: under its exclusive lock, only if
/// the name still refers to the object judged and it is still unfinished with a dead or unknown
/// creator. A live creator holds the shared lock from its exclusive create until READY
/// (`create`), so one that is merely slow is never removed.
fn remove_unfinished(name: &str, u: &NotReady) -> Result<(), rustix::io::Errno> {
    removed(remove_name_unless_used(name, &u.fd, || {
        let still = match look(&u.fd) {
            Look::Ready => false,
            Look::NotReady(Some((pid, start))) => !sys::alive(pid, start),
            Look::NotReady(None) => true,
        };
        (!still).then_some(())
    }))
}

/// Judges what holds `name`.
fn classify(name: &str, ready_timeout: Duration) -> Existing {
    match Segment::open(name, ready_timeout) {
        Ok(seg) => {
            let c = seg.condition();
            Existing::Ready(Box::new(seg), c)
        }
        // Never finished by its creator: stale, unless that creator is alive.
        Err(Error::NotReady { .. }) => {
            let Ok(fd) = sys::open(name, true) else {
                return Existing::Unknown;
            };
            match look(&fd) {
                // Became ready since: look again next time round.
                Look::Ready => Existing::Retry,
                Look::NotReady(Some((pid, start))) if sys::alive(pid, start) => {
                    Existing::Creating(pid)
                }
                Look::NotReady(creator) => Existing::Abandoned(NotReady { fd, creator }),
            }
        }
        Err(_) => Existing::Unknown,
    }
}

/// What a segment that was not ready shows now.
enum Look {
    Ready,
    /// Still not ready; its creator, if its fixed header was written.
    NotReady(Option<(u32, u64)>),
}

/// Looks at the fixed header and the state word of the segment behind `fd` (hostile bytes:
/// copied out with volatile reads, the state word loaded atomically).
fn look(fd: &sys::Handle) -> Look {
    let size = sys::size(fd).unwrap_or(0);
    let len = FIXED_SIZE + CONTROL_SIZE;
    if size < len as u64 {
        return Look::NotReady(None);
    }
    let Ok(map) = RawMap::new(fd, len, true) else {
        return Look::NotReady(None);
    };
    let ready = map.ready();
    let bytes = map.copy::<FIXED_SIZE>(0);
    drop(map);
    if ready {
        return Look::Ready;
    }
    let f: Fixed = bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<Fixed>()]);
    Look::NotReady(
        (f.magic == layout::MAGIC && f.creator_pid != 0)
            .then_some((f.creator_pid, f.creator_start_time)),
    )
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    /// An unfinished segment of an unknown creator (header never written) under `name`.
    fn unfinished(name: &str) -> NotReady {
        std::fs::write(
            format!("/dev/shm{name}"),
            vec![0u8; FIXED_SIZE + CONTROL_SIZE],
        )
        .unwrap();
        let fd = sys::open(name, true).unwrap();
        assert!(matches!(look(&fd), Look::NotReady(None)));
        NotReady { fd, creator: None }
    }

    fn named(name: &str) -> bool {
        sys::name_identity(name).is_ok()
    }

    #[test]
    fn an_unfinished_segment_still_named_and_unlocked_is_removed() {
        let name = format!("/ndr-ex-rm-{}", std::process::id());
        let u = unfinished(&name);
        remove_unfinished(&name, &u).unwrap();
        assert!(!named(&name));
    }

    /// The name was given to another object between the judgement and the removal: that one
    /// stays (a plain unlink by name would remove it).
    #[test]
    fn an_unfinished_segment_replaced_meanwhile_keeps_the_new_object() {
        let name = format!("/ndr-ex-repl-{}", std::process::id());
        let judged = unfinished(&name);
        sys::unlink(&name).unwrap();
        let newer = unfinished(&name);
        remove_unfinished(&name, &judged).unwrap();
        assert!(named(&name), "the new object under the name was removed");
        assert_eq!(
            sys::identity(&newer.fd).unwrap(),
            sys::name_identity(&name).unwrap()
        );
        sys::unlink(&name).unwrap();
    }

    /// A creator holds the shared lock from its exclusive create until READY: a segment it is
    /// still setting up is never removed, however slow it is.
    #[test]
    fn an_unfinished_segment_whose_creator_is_setting_it_up_is_not_removed() {
        let name = format!("/ndr-ex-lock-{}", std::process::id());
        let u = unfinished(&name);
        let creator = sys::open(&name, true).unwrap();
        assert!(sys::try_lock(&creator, false));
        assert_eq!(remove_unfinished(&name, &u), Err(rustix::io::Errno::BUSY));
        assert!(named(&name));
        sys::unlock(&creator);
        sys::unlink(&name).unwrap();
    }
}
