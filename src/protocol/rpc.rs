//! Request and reply: each slot of the segment holds one call (a request and its reply), and its
//! state word says who holds it. A client claims a free slot, fills the request in place and
//! queues it; one server takes it, fills the reply in place and hands it back; the client reads
//! the reply and frees the slot. The slot is the routing: a reply can only ever reach the call
//! that its slot holds, and the generation in the state word (bumped at every free) tells a
//! caller's ticket from a later call in the same slot.
//!
//! # The state word
//!
//! ```text
//! bits 0..4    code: FREE, FILLING, QUEUED, SERVING, REPLIED, CANCELLED, FAILED
//! bits 4..14   the serving server's peer entry (SERVING, REPLIED, CANCELLED, FAILED)
//! bits 14..24  the client's peer entry (for listings)
//! bits 24..32  generation (mod 256), bumped when the slot is freed
//! bits 32..64  the client's pid (0 when FREE)
//! ```
//!
//! Transitions (each one CAS, `AcqRel`): FREE → FILLING (client claims) → QUEUED (client submits)
//! → SERVING (a server takes it: exactly one CAS wins) → REPLIED or FAILED (the server answers, or
//! drops it unanswered) → FREE (the client has read the answer). A caller that gives up
//! (timeout, ticket dropped) frees a QUEUED call itself, marks a SERVING one CANCELLED (its server
//! then frees it instead of answering: a late reply is discarded, never delivered), and frees a
//! REPLIED or FAILED one. A survivor frees the calls of a dead client, and fails (to their callers)
//! the calls a dead server was serving ([`recover_client`], [`recover_server`]).
//!
//! The request's bytes are published by the QUEUED CAS (Release) and acquired by the server's
//! SERVING CAS; the reply's by the REPLIED CAS and the caller's load of it (Acquire). Sleepers
//! re-check with an RMW of the word their waker changes (see the `protocol` module docs).

use crate::header::CallCtrl;
use crate::sync::Ordering::*;

/// A free slot.
pub const FREE: u64 = 0;
/// Claimed by a client filling its request.
pub const FILLING: u64 = 1;
/// Queued for a server.
pub const QUEUED: u64 = 2;
/// Taken by a server, which is filling the reply.
pub const SERVING: u64 = 3;
/// Answered: the reply is there for the caller.
pub const REPLIED: u64 = 4;
/// Given up by its caller while a server serves it: the server frees it.
pub const CANCELLED: u64 = 5;
/// Dropped unanswered by its server (or its server died): the caller is told.
pub const FAILED: u64 = 6;

const CODE: u64 = 0xF;
const SERVER_SHIFT: u32 = 4;
const CLIENT_SHIFT: u32 = 14;
const ENTRY_MASK: u64 = 0x3FF;
const GEN_SHIFT: u32 = 24;
const PID_SHIFT: u32 = 32;

/// Access to a request/reply segment's calls, wherever they live.
pub trait CallMemory {
    /// Call `i`'s control words, `i < calls()`.
    fn call(&self, i: usize) -> &CallCtrl;
    /// Number of calls (slots).
    fn calls(&self) -> usize;
}

/// The parts of a state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State(pub u64);

impl State {
    /// The state code.
    pub fn code(self) -> u64 {
        self.0 & CODE
    }
    /// The generation.
    pub fn generation(self) -> u8 {
        (self.0 >> GEN_SHIFT) as u8
    }
    /// The client's pid (0 when free).
    pub fn client_pid(self) -> u32 {
        (self.0 >> PID_SHIFT) as u32
    }
    /// The serving server's peer entry.
    pub fn server_entry(self) -> usize {
        ((self.0 >> SERVER_SHIFT) & ENTRY_MASK) as usize
    }
    fn with_code(self, code: u64) -> State {
        State(self.0 & !CODE | code)
    }
    fn freed(self) -> State {
        State(((self.generation().wrapping_add(1)) as u64) << GEN_SHIFT)
    }
}

/// A caller's handle on its call: the slot and the generation it was claimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The slot.
    pub slot: usize,
    /// Its generation when claimed.
    pub generation: u8,
}

/// A client claims a free slot, scanning from `start`: `Some` ticket, now FILLING.
pub fn try_claim<M: CallMemory>(
    mem: &M,
    start: usize,
    client_entry: usize,
    pid: u32,
    strong: bool,
) -> Option<Ticket> {
    let n = mem.calls();
    (0..n).map(|k| (start + k) % n).find_map(|i| {
        let w = &mem.call(i).state;
        let s = State(if strong {
            w.fetch_add(0, AcqRel)
        } else {
            w.load(Relaxed)
        });
        if s.code() != FREE {
            return None;
        }
        let mine = s.0
            | FILLING
            | ((client_entry as u64 & ENTRY_MASK) << CLIENT_SHIFT)
            | (pid as u64) << PID_SHIFT;
        // Acquire: the previous call's reads of this slot (its caller's) are over before we
        // write the request.
        w.compare_exchange(s.0, mine, Acquire, Relaxed)
            .ok()
            .map(|_| Ticket {
                slot: i,
                generation: s.generation(),
            })
    })
}

/// The client queues its filled request (FILLING → QUEUED). Release: the request's bytes go
/// with it to the server that takes it. Acquire: a server whose re-check RMW came first counts
/// as a waiter in what the caller then reads, so the caller wakes it (a lost wake-up otherwise,
/// found by the loom model). The caller then wakes sleeping servers.
pub fn submit<M: CallMemory>(mem: &M, t: Ticket) {
    let w = &mem.call(t.slot).state;
    // Only its client moves a FILLING call, or a survivor once the client is dead.
    let s = State(w.load(Relaxed));
    debug_assert_eq!((s.code(), s.generation()), (FILLING, t.generation));
    let _ = w.compare_exchange(s.0, s.with_code(QUEUED).0, AcqRel, Relaxed);
}

/// A server takes a queued call, scanning from `start`: `Some(slot, state now SERVING)`.
pub fn try_take<M: CallMemory>(
    mem: &M,
    start: usize,
    server_entry: usize,
    strong: bool,
) -> Option<(usize, State)> {
    let n = mem.calls();
    (0..n).map(|k| (start + k) % n).find_map(|i| {
        let w = &mem.call(i).state;
        let s = State(if strong {
            w.fetch_add(0, AcqRel)
        } else {
            w.load(Relaxed)
        });
        if s.code() != QUEUED {
            return None;
        }
        let serving = State(
            s.0 & !(CODE | ENTRY_MASK << SERVER_SHIFT)
                | SERVING
                | (server_entry as u64 & ENTRY_MASK) << SERVER_SHIFT,
        );
        // Acquire: pairs with `submit`'s Release (the request's bytes).
        w.compare_exchange(s.0, serving.0, Acquire, Relaxed)
            .ok()
            .map(|_| (i, serving))
    })
}

/// What became of a server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The caller has it (wake its reply word).
    Delivered,
    /// The caller had given up: the call is freed, the answer discarded (wake claimers).
    Discarded,
    /// The call is no longer ours (a survivor judged us dead): nothing to do.
    Lost,
}

/// A server answers call `slot` it took as `serving`: with its reply (`REPLIED`, Release: the
/// reply's bytes go with it) or unanswered (`FAILED`).
pub fn answer<M: CallMemory>(mem: &M, slot: usize, serving: State, replied: bool) -> Answered {
    let w = &mem.call(slot).state;
    let to = serving.with_code(if replied { REPLIED } else { FAILED });
    match w.compare_exchange(serving.0, to.0, AcqRel, Acquire) {
        Ok(_) => Answered::Delivered,
        Err(now) if now == serving.with_code(CANCELLED).0 => {
            match w.compare_exchange(now, State(now).freed().0, AcqRel, Relaxed) {
                Ok(_) => Answered::Discarded,
                Err(_) => Answered::Lost,
            }
        }
        Err(_) => Answered::Lost,
    }
}

/// What a caller finds of its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Not answered yet.
    Pending,
    /// The reply is in (Acquire: its bytes are visible).
    Replied,
    /// Its server dropped it unanswered, or died.
    Failed,
    /// The slot no longer holds this call (a survivor freed it, judging us dead).
    Gone,
}

/// A caller looks at its call.
pub fn poll<M: CallMemory>(mem: &M, t: Ticket, strong: bool) -> Poll {
    let w = &mem.call(t.slot).state;
    let s = State(if strong {
        w.fetch_add(0, AcqRel)
    } else {
        w.load(Acquire)
    });
    if s.generation() != t.generation {
        return Poll::Gone;
    }
    match s.code() {
        QUEUED | SERVING => Poll::Pending,
        REPLIED => Poll::Replied,
        FAILED => Poll::Failed,
        _ => Poll::Gone,
    }
}

/// A caller is done with its call, whatever its state: a REPLIED, FAILED, QUEUED or FILLING call
/// is freed; a SERVING one is marked CANCELLED (its server frees it). Returns whether the slot
/// was freed (wake claimers).
pub fn release<M: CallMemory>(mem: &M, t: Ticket) -> bool {
    let w = &mem.call(t.slot).state;
    let mut s = State(w.load(Acquire));
    loop {
        if s.generation() != t.generation {
            return false;
        }
        let to = match s.code() {
            FILLING | QUEUED | REPLIED | FAILED => s.freed(),
            SERVING => s.with_code(CANCELLED),
            _ => return false,
        };
        // Release: our reads of the reply are over before another caller's request lands here.
        match w.compare_exchange(s.0, to.0, AcqRel, Acquire) {
            Ok(_) => return to.code() == FREE,
            Err(now) => s = State(now),
        }
    }
}

/// Frees the calls of the dead client process `pid` (a SERVING one is marked CANCELLED: its
/// server frees it). Returns how many calls it took back.
pub fn recover_client<M: CallMemory>(mem: &M, pid: u32) -> usize {
    let mut n = 0;
    for i in 0..mem.calls() {
        let w = &mem.call(i).state;
        let s = State(w.load(Acquire));
        if s.code() == FREE || s.client_pid() != pid {
            continue;
        }
        let to = match s.code() {
            SERVING => s.with_code(CANCELLED),
            CANCELLED => continue,
            _ => s.freed(),
        };
        if w.compare_exchange(s.0, to.0, AcqRel, Relaxed).is_ok() {
            n += 1;
        }
    }
    n
}

/// Fails, to their callers, the calls that the dead server of peer entry `entry` was serving
/// (and frees those their callers had given up). Returns how many.
pub fn recover_server<M: CallMemory>(mem: &M, entry: usize) -> usize {
    let mut n = 0;
    for i in 0..mem.calls() {
        let w = &mem.call(i).state;
        let s = State(w.load(Acquire));
        if s.server_entry() != entry {
            continue;
        }
        let to = match s.code() {
            SERVING => s.with_code(FAILED),
            CANCELLED => s.freed(),
            _ => continue,
        };
        if w.compare_exchange(s.0, to.0, AcqRel, Relaxed).is_ok() {
            n += 1;
        }
    }
    n
}

/// Counts of calls by state code, for listings: `[free, filling, queued, serving, replied,
/// cancelled, failed]`.
pub fn census<M: CallMemory>(mem: &M) -> [usize; 7] {
    let mut c = [0; 7];
    for i in 0..mem.calls() {
        let code = State(mem.call(i).state.load(Relaxed)).code() as usize;
        if code < 7 {
            c[code] += 1;
        }
    }
    c
}
