//! Roles, registration in the segment's peer table, and recovery of what dead peers held.

use crate::error::{Error, Result};
use crate::header::{
    PeerEntry, SLEEPING_CHANGED, SLEEPING_DRAINED, SLEEPING_NOT_EMPTY, SLEEPING_NOT_FULL,
    SLEEPING_RELEASED, SLEEPING_REPLY, WaitWord,
};
use crate::layout::RingKind;
use crate::protocol::{RingMemory, mpmc, peers};
use crate::role::{PeerInfo, Role};
use crate::shm::segment::Segment;
use crate::shm::sys;
use crate::shm::wait::Stuck;
use crate::sync::Ordering::*;

impl Segment {
    /// The processes attached to this ring (role, pid, alive).
    ///
    /// ```
    /// # use ndring::*;
    /// # let name = format!("/ndr-doc-segpeers-{}", std::process::id());
    /// let _rx = Consumer::<u8, ndarray::Ix1>::create(&name, 4, &Config::mpmc())?;
    /// let seg = Segment::open(&name, std::time::Duration::from_secs(1))?;
    /// assert_eq!(seg.peers().len(), 1);
    /// assert_eq!(seg.peers()[0].role, Role::Consumer);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn peers(&self) -> Vec<PeerInfo> {
        list(self)
    }
}

/// Lists the peers registered in `seg`.
pub(crate) fn list(seg: &Segment) -> Vec<PeerInfo> {
    (0..seg.max_peers())
        .filter_map(|i| {
            let o = peers::owner(seg.peer(i))?;
            Some(PeerInfo {
                role: Role::from_u8(o.role)?,
                pid: o.pid,
                alive: alive(&o),
            })
        })
        .collect()
}

/// Whether owner `o` is alive (`/proc`: its pid, started when it says). Our own process always is.
fn alive(o: &peers::Owner) -> bool {
    o.pid == sys::pid() || sys::alive(o.pid, o.start_time)
}

/// Whether the owner of entry `e` is alive; a free entry counts as alive (nothing to recover).
fn entry_alive(e: &PeerEntry) -> bool {
    peers::owner(e).is_none_or(|o| alive(&o))
}

/// Which entries a role may use.
pub(crate) fn entries(seg: &Segment, role: Role) -> std::ops::Range<usize> {
    match (seg.kind(), role) {
        (RingKind::Spsc, Role::Producer) => 0..1,
        (RingKind::Spsc, Role::Consumer) => 1..2,
        (RingKind::Broadcast, Role::Writer) => 0..1,
        (RingKind::Broadcast, Role::Subscriber) => 1..seg.max_peers(),
        (_, _) => 0..seg.max_peers(),
    }
}

/// Whether at most one process may hold `role` on a ring of `kind`.
fn single_holder(kind: RingKind, role: Role) -> bool {
    kind == RingKind::Spsc || role == Role::Writer
}

/// A taken peer entry; what the previous (dead) owner held, if we took over one.
pub(crate) struct Registration {
    pub index: usize,
    /// `holding` of the dead owner we replaced (SPSC consumer: the item it held).
    pub dead_holding: Option<u64>,
}

/// Takes an entry for `role`: a free one, else one whose owner is dead (after recovering what it
/// held). Errors: `RoleTaken` (single-holder roles) or `TooManyPeers`.
///
/// Then confirms, under the segment's shared lock, that the name still refers to this ring:
/// the last handle out (or a create replacing a finished ring) may have removed it between our
/// open and our registration, and we would wait on a ring nobody else can find. It removes the
/// name under the exclusive lock after looking at the peer table, so either it saw our entry
/// (and kept the name) or we see the name gone: then we leave again, and the caller gets
/// `NotFound` (the `open` constructors open the name again).
pub(crate) fn register(seg: &Segment, role: Role) -> Result<Registration> {
    let reg = register_entry(seg, role)?;
    let named = seg
        .locked(false, || seg.still_named())
        .unwrap_or_else(|| seg.still_named());
    if !named {
        peers::release(seg.peer(reg.index));
        return Err(Error::NotFound {
            name: seg.name().into(),
        });
    }
    peers::mark_seen(seg, role as u8);
    Ok(reg)
}

/// Registers the creator of `seg` as `role` (started at `start_time`), while it sets the segment
/// up: before READY, so no other process has seen the (zeroed) peer table and the role's first
/// entry is free, and no last one out can have removed the name (every opener waits for READY,
/// then sees this entry). Hence no name confirmation.
pub(crate) fn register_creator(seg: &Segment, role: Role, start_time: u64) -> Registration {
    let index = entries(seg, role).start;
    let taken = peers::try_take(
        seg.peer(index),
        peers::owner_word(sys::pid(), role as u8),
        start_time,
    );
    debug_assert!(taken.is_ok(), "a new segment's peer table is empty");
    peers::mark_seen(seg, role as u8);
    Registration {
        index,
        dead_holding: None,
    }
}

fn register_entry(seg: &Segment, role: Role) -> Result<Registration> {
    let pid = sys::pid();
    let me = peers::owner_word(pid, role as u8);
    let start = sys::start_time(pid);
    let range = entries(seg, role);
    for i in range.clone() {
        if peers::try_take(seg.peer(i), me, start).is_ok() {
            return Ok(Registration {
                index: i,
                dead_holding: None,
            });
        }
    }
    // No free entry: replace a dead owner.
    let mut holder = None;
    for i in range.clone() {
        let e = seg.peer(i);
        let Some(dead) = peers::owner(e) else {
            if peers::try_take(e, me, start).is_ok() {
                return Ok(Registration {
                    index: i,
                    dead_holding: None,
                });
            }
            continue;
        };
        if alive(&dead) {
            holder = Some(dead.pid);
            continue;
        }
        let (holding, _) = peers::holds(e);
        recover_entry(seg, i);
        peers::undo_sleep(e, dead.pid, |t| wait_word(seg, t));
        if peers::try_take_over(e, dead.word, dead.start_time, me, start) {
            if single_holder(seg.kind(), role) {
                seg.control().stats.role_takeovers.fetch_add(1, Relaxed);
            }
            // SPSC: the dead consumer's `holding` stays: positions below it are delivered, and
            // stay so until our attach has skipped them (`head` up to it). Cleared here, a
            // successor killed before that skip would leave them to the next consumer to
            // deliver again (`tests/takeover.rs`). MPMC and broadcast: `recover_entry` returned
            // what it names.
            peers::clear_after_takeover(e, seg.kind() == RingKind::Spsc);
            return Ok(Registration {
                index: i,
                dead_holding: (holding != 0).then_some(holding),
            });
        }
    }
    if single_holder(seg.kind(), role) {
        Err(Error::RoleTaken {
            role,
            pid: holder.unwrap_or(0),
        })
    } else {
        Err(Error::TooManyPeers {
            role,
            max: range.len(),
        })
    }
}

/// The wait word a `sleeping` tag names.
fn wait_word(seg: &Segment, tag: u64) -> Option<&WaitWord> {
    match tag {
        SLEEPING_NOT_EMPTY => Some(&seg.control().not_empty),
        SLEEPING_NOT_FULL => Some(&seg.control().not_full),
        SLEEPING_RELEASED if seg.kind() == RingKind::Array => Some(&array_words(seg).released),
        SLEEPING_DRAINED if seg.kind() == RingKind::Array => Some(&array_words(seg).drained),
        SLEEPING_CHANGED if seg.kind() == RingKind::Array => Some(&array_words(seg).changed),
        t if seg.kind() == RingKind::Rpc
            && t >= SLEEPING_REPLY
            && t - SLEEPING_REPLY < seg.slot_count() as u64 =>
        {
            Some(&crate::protocol::rpc::CallMemory::call(seg, (t - SLEEPING_REPLY) as usize).reply)
        }
        _ => None,
    }
}

/// Frees our entry, and wakes whoever sleeps on the other side: a receiver or sender that finds
/// no peer left reports `Disconnected` (see `protocol::peers::attached`).
pub(crate) fn unregister(seg: &Segment, index: usize, role: Role) {
    peers::release(seg.peer(index));
    let c = seg.control();
    match role {
        Role::Producer | Role::Writer => {
            crate::shm::wait::notify(&c.not_empty);
        }
        Role::Consumer => {
            crate::shm::wait::notify(&c.not_full);
        }
        Role::Server => {
            // Callers waiting for a reply look again: none may be left to serve them.
            for i in 0..seg.slot_count() {
                crate::shm::wait::notify(&crate::protocol::rpc::CallMemory::call(seg, i).reply);
            }
            crate::shm::wait::notify(&c.not_full);
        }
        Role::Client => {
            crate::shm::wait::notify(&c.not_empty);
        }
        Role::Subscriber | Role::Sharer => {}
    }
}

fn array_words(seg: &Segment) -> &crate::header::ArrayControl {
    crate::protocol::array::ArrayMemory::array(seg)
}

/// Whether a peer of `role` is attached to `seg`: an entry taken for `role`, and (when
/// `check_alive`, which reads `/proc`) held by a live process. `strong`: see
/// `protocol::peers::attached`.
pub(crate) fn attached(seg: &Segment, role: Role, strong: bool, check_alive: bool) -> bool {
    let range = entries(seg, role);
    if !peers::attached(seg, range.clone(), role as u8, strong) {
        return false;
    }
    !check_alive
        || range
            .into_iter()
            .filter_map(|i| peers::owner(seg.peer(i)))
            .any(|o| o.role == role as u8 && alive(&o))
}

/// Whether a receiver that found nothing to receive (or a sender that found no room) is
/// disconnected: the other side (`role`) has attached once, and none is attached now. If so,
/// the caller re-checks the ring with a strong attempt, since a peer may publish and leave
/// between the two looks.
///
/// Entries still taken count unless `check_alive()` (asked only then) says to look at `/proc`,
/// and every holder is dead: callers rate-limit that to once per grace period
/// ([`crate::shm::wait::SweepClock`]), so a dead peer is noticed within one.
pub(crate) fn disconnected(
    seg: &Segment,
    role: Role,
    strong: bool,
    check_alive: impl FnOnce() -> bool,
) -> bool {
    if peers::gone(seg, entries(seg, role), role as u8, strong) {
        return true;
    }
    peers::seen(seg, role as u8) && check_alive() && !attached(seg, role, false, true)
}

/// The name's "last one out" rule, run by a handle after it unregistered: the name is removed
/// when no live peer is attached, nothing published is unread (queue rings) and the ring is not
/// kept (`Config::keep`); and only if the name still refers to this segment (it may have been
/// replaced by a new ring meanwhile).
///
/// Under the segment's exclusive lock, against an opener that registers meanwhile (see
/// [`register`]) and against a create that replaces the ring (which checks the name under the
/// same lock, so neither removes the other's new ring by name).
pub(crate) fn leave(seg: &Segment) {
    if peers::kept(seg) {
        return;
    }
    let _ = seg.remove_name_unless_used(|| {
        let anyone = (0..seg.max_peers())
            .filter_map(|i| peers::owner(seg.peer(i)))
            .any(|o| alive(&o));
        (anyone || unread(seg)).then_some(())
    });
}

/// Whether a queue ring holds published items nobody has received yet (`protocol::spsc::unread`,
/// `protocol::mpmc::unread`); never for other kinds.
pub(crate) fn unread(seg: &Segment) -> bool {
    match seg.kind() {
        RingKind::Spsc => crate::protocol::spsc::unread(seg),
        RingKind::Mpmc => crate::protocol::mpmc::unread(seg),
        RingKind::Broadcast | RingKind::Array | RingKind::Rpc => false,
    }
}

/// The live peers attached to `seg`.
pub(crate) fn live(seg: &Segment) -> Vec<PeerInfo> {
    list(seg).into_iter().filter(|p| p.alive).collect()
}

/// Undoes what the (dead) owner of entry `i` held: an MPMC claim or taken slot, or a broadcast
/// pin. SPSC items held by a dead consumer are skipped by the consumer that takes its role.
fn recover_entry(seg: &Segment, i: usize) {
    let e = seg.peer(i);
    match seg.kind() {
        RingKind::Mpmc => {
            mpmc::recover(seg, e, |held| {
                (0..seg.max_peers()).any(|j| {
                    j != i && {
                        let o = seg.peer(j);
                        peers::holds(o).0 == held && entry_alive(o)
                    }
                })
            });
        }
        RingKind::Broadcast => {
            if peers::unpin_dead(e) {
                seg.control().stats.recovered_reads.fetch_add(1, Relaxed);
            }
        }
        RingKind::Array => {
            let Some(dead) = peers::owner(e) else {
                return;
            };
            let tag = crate::protocol::array::owner_tag(dead.pid, i);
            let got = crate::protocol::array::recover(seg, i, tag);
            let stats = &seg.control().stats;
            if got.reads > 0 {
                stats.recovered_reads.fetch_add(1, Relaxed);
            }
            if got.writes > 0 {
                stats.recovered_claims.fetch_add(1, Relaxed);
                crate::shm::wait::notify(&array_words(seg).changed);
            }
            crate::shm::wait::notify(&array_words(seg).released);
            crate::shm::wait::notify(&array_words(seg).drained);
        }
        RingKind::Rpc => {
            use crate::protocol::rpc;
            let Some(dead) = peers::owner(e) else {
                return;
            };
            let n = if dead.role == Role::Server as u8 {
                rpc::recover_server(seg, i)
            } else {
                rpc::recover_client(seg, dead.pid)
            };
            if n > 0 {
                seg.control()
                    .stats
                    .recovered_claims
                    .fetch_add(n as u64, Relaxed);
                for j in 0..seg.slot_count() {
                    crate::shm::wait::notify(&rpc::CallMemory::call(seg, j).reply);
                }
            }
        }
        RingKind::Spsc => {}
    }
}

/// For a call that found the ring stuck at position `pos` (nothing to receive, no room to
/// claim): sweeps the peer table once the ring has been stuck there for a grace period, however
/// the caller slices its waits (see [`Stuck`]). Whether the sweep recovered anything: then the
/// call tries again at once.
pub(crate) fn recover_if_stuck(
    seg: &Segment,
    stuck: &mut Stuck,
    pos: u64,
    grace: std::time::Duration,
) -> bool {
    stuck.due(pos, grace) && sweep(seg) > 0
}

/// Finds dead peers, recovers what they held and frees their entries (single-holder roles stay
/// taken until a successor takes them over). Returns how many entries were recovered.
/// Called by calls that found their ring stuck for a grace period ([`recover_if_stuck`]), by
/// notifiers that found sleepers, and by `recover_dead()`.
pub(crate) fn sweep(seg: &Segment) -> usize {
    let mut n = 0;
    for i in 0..seg.max_peers() {
        let e = seg.peer(i);
        let Some(dead) = peers::owner(e).filter(|o| !alive(o)) else {
            continue;
        };
        // A peer that died asleep still counts in `waiters`: take that back (also for single
        // holders), so that notifiers stop making a futex call per item for no one.
        if peers::undo_sleep(e, dead.pid, |t| wait_word(seg, t)) {
            n += 1;
        }
        let single =
            matches!(seg.kind(), RingKind::Spsc) || (seg.kind() == RingKind::Broadcast && i == 0);
        // A single-holder role stays taken until a successor takes it over (which recovers it).
        if single {
            continue;
        }
        recover_entry(seg, i);
        // Free it only if nobody took it over meanwhile.
        if peers::free_dead(e, dead.word, dead.start_time) {
            n += 1;
        }
    }
    if n > 0 {
        // Recovered slots may unblock sleepers on either side.
        crate::shm::wait::notify(&seg.control().not_empty);
        crate::shm::wait::notify(&seg.control().not_full);
    }
    n
}
