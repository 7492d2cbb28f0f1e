//! Shared by the typed handles: checking a segment against `T` and `D`, creating one, and
//! opening or creating a name.

use ndarray::Dimension;

use crate::config::Config;
use crate::element::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::{Params, RingKind};
use crate::role::Role;
use crate::shm::existing::Condition;
use crate::shm::peers::Registration;
use crate::shm::segment::Segment;

/// The kinds of segment a typed handle attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// SPSC or MPMC.
    Queue,
    Broadcast,
    Array,
    Rpc,
}

impl Family {
    fn of_role(role: Role) -> Family {
        match role {
            Role::Writer | Role::Subscriber => Family::Broadcast,
            Role::Sharer => Family::Array,
            Role::Server | Role::Client => Family::Rpc,
            Role::Producer | Role::Consumer => Family::Queue,
        }
    }

    fn holds(self, kind: RingKind) -> bool {
        match self {
            Family::Queue => kind.is_queue(),
            Family::Broadcast => kind == RingKind::Broadcast,
            Family::Array => kind == RingKind::Array,
            Family::Rpc => kind == RingKind::Rpc,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Queue => "a queue ring (SPSC or MPMC)",
            Family::Broadcast => "a broadcast ring",
            Family::Array => "a shared array",
            Family::Rpc => "a request/reply segment",
        }
    }

    fn config(self) -> &'static str {
        match self {
            Family::Queue => "Config::spsc() or Config::mpmc()",
            Family::Broadcast => "Config::broadcast()",
            Family::Array => "Config::array()",
            Family::Rpc => "Config::rpc()",
        }
    }
}

/// Checks the segment's kind (of `family`), element type and rank; returns its shape as a `D`.
pub(crate) fn check_as<T: Element, D: Dimension>(seg: &Segment, family: Family) -> Result<D> {
    if seg.is_read_only() {
        return Err(Error::ReadOnly {
            name: seg.name().into(),
        });
    }
    if !family.holds(seg.kind()) {
        return Err(Error::KindMismatch {
            expected: family.name(),
            found: seg.kind(),
        });
    }
    dim_of::<T, D>(seg.dtype(), seg.shape())
}

/// Items of `dtype` and `shape`, as recorded in a segment, checked against `T` and `D`'s rank:
/// the shape as a `D`.
pub(crate) fn dim_of<T: Element, D: Dimension>(dtype: DType, shape: &[usize]) -> Result<D> {
    if dtype != T::DTYPE {
        return Err(Error::TypeMismatch {
            expected: T::DTYPE,
            found: dtype,
        });
    }
    if let Some(n) = D::NDIM
        && n != shape.len()
    {
        return Err(Error::RankMismatch {
            expected: n,
            found: shape.len(),
        });
    }
    let mut dim = D::zeros(shape.len());
    dim.slice_mut().copy_from_slice(shape);
    Ok(dim)
}

/// Checks that the segment's shape is exactly `expected`.
pub(crate) fn check_shape(seg: &Segment, expected: &[usize]) -> Result<()> {
    if seg.shape() != expected {
        return Err(Error::ShapeMismatch {
            expected: expected.to_vec(),
            found: seg.shape().to_vec(),
        });
    }
    Ok(())
}

/// Creates the segment for items of `T` with `shape`, with the caller registered as `role`
/// (a queue ring for producers and consumers, a broadcast ring for the writer, a shared array
/// for a sharer).
pub(crate) fn create<T: Element>(
    name: &str,
    shape: &[usize],
    config: &Config,
    role: Role,
) -> Result<(Segment, Registration)> {
    create_segment(name, (T::DTYPE, shape), None, config, role)
}

/// Creates a segment of any kind, the caller registered as `role`: items of `dtype` and
/// `shape` (a request/reply segment's requests), and a request/reply segment's `reply`. The
/// one place a config becomes a segment's parameters.
pub(crate) fn create_segment(
    name: &str,
    (dtype, shape): (DType, &[usize]),
    reply: Option<(DType, &[usize])>,
    config: &Config,
    role: Role,
) -> Result<(Segment, Registration)> {
    let family = Family::of_role(role);
    if !family.holds(config.kind) {
        return Err(Error::InvalidConfig(format!(
            "{} needs {}, the config is for {}",
            family.name(),
            family.config(),
            config.kind
        )));
    }
    if config.kind == RingKind::Broadcast && config.slots < config.max_peers + 1 {
        let subs = config.max_peers - 1;
        return Err(Error::InvalidConfig(format!(
            "a broadcast ring for {subs} subscribers needs at least {} slots (one pinned per \
             subscriber, plus the newest frame, plus one to write), got {}",
            subs + 2,
            config.slots
        )));
    }
    let array = family == Family::Array;
    let params = Params {
        kind: config.kind,
        dtype,
        shape: shape.to_vec(),
        // A shared array is one array, with no metadata; only streams stamp their items.
        slots: if array { 1 } else { config.slots },
        user_meta: if array { 0 } else { config.user_meta },
        max_peers: config.max_peers,
        timestamps: config.timestamps && matches!(family, Family::Queue | Family::Broadcast),
        reply: reply.map(|(dtype, shape)| (dtype, shape.to_vec())),
    };
    crate::shm::existing::create(name, params, config, role)
}

/// Checks that a segment opened by name is a valid broadcast ring's (slot count vs subscribers),
/// since a hostile header could describe one the writer cannot serve.
pub(crate) fn check_broadcast_capacity(seg: &Segment) -> Result<()> {
    let subs = seg.layout().params.max_peers - 1;
    if seg.kind() == RingKind::Broadcast && seg.slot_count() < subs + 2 {
        return Err(Error::Corrupt {
            name: seg.name().into(),
            reason: format!(
                "a broadcast ring with {} slots cannot serve {subs} subscribers",
                seg.slot_count()
            ),
        });
    }
    Ok(())
}

/// Opens `name` if it holds a ring in use, else creates it: a ring whose stream is over
/// (closed, or left with nothing unread, and no live peer) is replaced, never reused; a closed
/// ring with live peers is `InUse`. The shape of a ring opened is checked. A ring created comes
/// with the caller's registration as `role`; one opened without.
pub(crate) fn open_or_create<T: Element>(
    name: &str,
    shape: &[usize],
    config: &Config,
    role: Role,
) -> Result<(Segment, Option<Registration>)> {
    loop {
        let finished = match Segment::open(name, config.ready_timeout) {
            Ok(seg) => match seg.condition() {
                Condition::ClosedInUse(peers) => {
                    return Err(Error::InUse {
                        name: name.into(),
                        peers,
                    });
                }
                Condition::Finished => true,
                Condition::Live(_) | Condition::Abandoned => {
                    check_shape(&seg, shape)?;
                    return Ok((seg, None));
                }
            },
            Err(Error::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        // `create` replaces a finished ring itself; losing a race to another creator means
        // opening theirs.
        match create::<T>(name, shape, config, role) {
            Err(Error::AlreadyExists { .. }) => continue,
            Err(Error::InUse { .. }) if finished => continue,
            other => return other.map(|(seg, reg)| (seg, Some(reg))),
        }
    }
}

/// Opens a segment with `open` and attaches a handle to it with `attach`, again while the
/// registration finds that the name no longer refers to the ring opened (its last handle out
/// removed it in between, or a create replaced it: `NotFound` from `peers::register`, the
/// only `NotFound` an attach returns). The next open finds the new ring, or none.
pub(crate) fn open_attach<S, H>(
    mut open: impl FnMut() -> Result<S>,
    mut attach: impl FnMut(S) -> Result<H>,
) -> Result<H> {
    loop {
        match attach(open()?) {
            Err(Error::NotFound { .. }) => continue,
            other => return other,
        }
    }
}

/// Opens `name` (default options) and checks that its arrays have exactly `shape`.
pub(crate) fn open_shape(name: &str, shape: &[usize]) -> Result<Segment> {
    let seg = Segment::open(name, crate::config::OpenOptions::default().ready_timeout)?;
    check_shape(&seg, shape)?;
    Ok(seg)
}
