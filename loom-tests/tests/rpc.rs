//! Model checks of the request/reply call protocol (`RUSTFLAGS="--cfg loom"`): the request's
//! bytes reach the server that takes the call, the reply's bytes reach its caller, a call is
//! served once, and a caller that gives up while its call is served never reads a late reply
//! and leaves the slot free exactly once.
#![cfg(loom)]

mod support;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use ndring::header::{CallCtrl, WaitWord};
use ndring::protocol::rpc::{self, Answered, CallMemory, Poll};
use support::{model, notify, sleep_until};

/// One call slot on the heap: its control words, and a request and a reply word accessed
/// through `UnsafeCell`s, so that loom reports any access the protocol does not order.
struct Calls {
    call: CallCtrl,
    request: UnsafeCell<u64>,
    reply: UnsafeCell<u64>,
    /// Where servers sleep for requests (the control block's `not_empty`).
    requests: WaitWord,
}

impl CallMemory for Calls {
    fn call(&self, i: usize) -> &CallCtrl {
        assert_eq!(i, 0);
        &self.call
    }
    fn calls(&self) -> usize {
        1
    }
}

fn calls() -> Arc<Calls> {
    Arc::new(Calls {
        call: CallCtrl::default(),
        request: UnsafeCell::new(0),
        reply: UnsafeCell::new(0),
        requests: WaitWord::default(),
    })
}

/// A server waits for a call while its client fills and queues it, then waits for the reply:
/// the request's bytes are what the client wrote, the reply's bytes what the server wrote (read by
/// the client before it joins the server: only the protocol orders the two).
#[test]
fn a_request_and_its_reply_cross_both_ways() {
    model(2, || {
        let m = calls();
        let m2 = m.clone();
        let server = thread::spawn(move || {
            let (slot, state) =
                sleep_until(&m2.requests, |strong| rpc::try_take(&*m2, 0, 1, strong));
            // SAFETY (checked by loom): the SERVING CAS gave us the call.
            let q = m2.request.with(|p| unsafe { *p });
            assert_eq!(q, 42, "the request's bytes did not arrive");
            // SAFETY (checked by loom): ours until answered.
            m2.reply.with_mut(|p| unsafe { *p = q + 1 });
            assert_eq!(rpc::answer(&*m2, slot, state, true), Answered::Delivered);
            notify(&m2.call.reply);
        });
        let t = rpc::try_claim(&*m, 0, 5, 77, false).expect("a free call");
        // SAFETY (checked by loom): FILLING: ours.
        m.request.with_mut(|p| unsafe { *p = 42 });
        rpc::submit(&*m, t);
        notify(&m.requests);
        let p = sleep_until(&m.call.reply, |strong| match rpc::poll(&*m, t, strong) {
            Poll::Pending => None,
            p => Some(p),
        });
        assert_eq!(p, Poll::Replied);
        // SAFETY (checked by loom): REPLIED, acquired by `poll`.
        assert_eq!(m.reply.with(|p| unsafe { *p }), 43);
        assert!(rpc::release(&*m, t));
        server.join().unwrap();
    });
}

/// Two servers race for one queued call: exactly one takes it.
#[test]
fn a_queued_call_is_taken_by_one_server() {
    model(2, || {
        let m = calls();
        let t = rpc::try_claim(&*m, 0, 5, 77, false).unwrap();
        rpc::submit(&*m, t);
        let other = {
            let m = m.clone();
            thread::spawn(move || rpc::try_take(&*m, 0, 2, false).is_some())
        };
        let mine = rpc::try_take(&*m, 0, 1, false).is_some();
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "taken by {} servers",
            mine as u8 + theirs as u8
        );
    });
}

/// A caller gives up while a server serves its call: either the reply is delivered (and the
/// caller, which gave up, frees the call) or it is discarded and the server frees it; the slot
/// ends free exactly once, one generation on, and no later ticket sees the late reply.
#[test]
fn a_caller_giving_up_never_gets_a_late_reply_and_the_slot_is_freed_once() {
    model(2, || {
        let m = calls();
        let t = rpc::try_claim(&*m, 0, 5, 77, false).unwrap();
        rpc::submit(&*m, t);
        let (slot, state) = rpc::try_take(&*m, 0, 1, false).unwrap();
        let m2 = m.clone();
        let server = thread::spawn(move || {
            // SAFETY (checked by loom): SERVING: ours until answered.
            m2.reply.with_mut(|p| unsafe { *p = 9 });
            rpc::answer(&*m2, slot, state, true)
        });
        let freed_by_caller = rpc::release(&*m, t);
        // The next caller claims the slot as soon as it is free, and (as its server will) writes
        // the reply word: ordered after the late reply's write, or loom reports the race.
        let next = loop {
            if let Some(next) = rpc::try_claim(&*m, 0, 6, 78, false) {
                break next;
            }
            thread::yield_now();
        };
        // SAFETY (checked by loom): FILLING, the previous call freed.
        m.reply.with_mut(|p| unsafe { *p = 1 });
        match server.join().unwrap() {
            Answered::Delivered => assert!(freed_by_caller, "a delivered reply left unfreed"),
            Answered::Discarded => assert!(!freed_by_caller, "the call freed twice"),
            Answered::Lost => panic!("the server lost its call"),
        }
        assert_eq!(next.generation, t.generation.wrapping_add(1));
        assert_eq!(rpc::poll(&*m, t, false), Poll::Gone);
    });
}
