//! The case as a state machine: requests out, replies in, an outcome at the
//! end — with no I/O and no clock inside.
//!
//! A case is sequential (connect, then each step in order) but full of
//! nested exchanges: a CONNECT that is refused may lead to a probe on a
//! fresh connection, and that probe to another one in a second version.
//! Written as an explicit enum of states, every such branch would be a state
//! of its own. Instead the case logic ([`super::case`]) is an `async fn`
//! that awaits nothing but [`Port::call`]: the compiler turns it into the
//! state machine, and [`Machine`] polls it by hand, with a waker that does
//! nothing, between replies. It never touches a socket or a timer: every
//! reply carries the time (`now`) at which it happened, so that tests drive
//! it on a fake clock and the async driver ([`super::driver`]) on the real one.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol};

use crate::net::Event;

/// What the case asks its driver to do. Each request gets exactly one reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Open a connection for `client` (replacing any it has): to the named
    /// target when the scenario names one, else to the run's target. Its
    /// received bytes are decoded as `protocol` until told otherwise.
    /// Reply: [`Reply::Opened`].
    Open {
        client: String,
        target: Option<String>,
        protocol: Protocol,
    },
    /// Write these bytes on `client`'s connection, at the latest by
    /// `deadline`; `packet` is what they encode, for the log. Reply: [`Reply::Sent`].
    Send {
        client: String,
        bytes: Bytes,
        packet: Option<Packet>,
        deadline: Instant,
    },
    /// Write these bytes on `client`'s WebSocket connection as one text
    /// frame (which MQTT forbids: a scenario sends one on purpose). Reply:
    /// [`Reply::Sent`].
    SendText {
        client: String,
        bytes: Bytes,
        deadline: Instant,
    },
    /// Decode what `client` receives from now on as `protocol` (after a
    /// CONNECT of that version). Reply: [`Reply::Done`].
    SetProtocol { client: String, protocol: Protocol },
    /// The next event on `client`'s connection, or [`Event::Timeout`] at
    /// `deadline`. Reply: [`Reply::Event`].
    Read { client: String, deadline: Instant },
    /// Close `client`'s socket (no DISCONNECT is sent). Reply: [`Reply::Done`].
    Close { client: String },
    /// Let time pass until `until` (a spec timer the scenario waits for).
    /// Reply: [`Reply::Done`].
    Sleep { until: Instant },
    /// A remark on the last entry of `client`'s log. Reply: [`Reply::Done`].
    Note { client: String, text: String },
}

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Written,
    /// The connection is not open.
    NotOpen,
    /// The peer closed or reset the connection first.
    Broken(String),
    /// The peer did not take the bytes before the deadline.
    Timeout,
    /// What was asked cannot be sent on this connection (a text frame on a
    /// connection that is no WebSocket): the scenario cannot run here.
    Unsupported(String),
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub message: String,
    /// The server answered the WebSocket upgrade without selecting the
    /// subprotocol offered (MQTT-6.0.0-4): a verdict, not a failure to reach it.
    pub refused_subprotocol: bool,
}

impl OpenError {
    /// A connection that could not be opened for a plain reason.
    pub fn new(message: impl Into<String>) -> OpenError {
        OpenError {
            message: message.into(),
            refused_subprotocol: false,
        }
    }
}

/// The driver's answer to a [`Request`].
#[derive(Debug, Clone)]
pub enum Reply {
    /// The connection is open, or why it could not be opened.
    Opened(Result<(), OpenError>),
    Sent(SendOutcome),
    Event(Event),
    Done,
}

#[derive(Default)]
struct Slot {
    request: Option<Request>,
    reply: Option<Reply>,
    now: Option<Instant>,
}

/// The case logic's side of the exchange with its driver.
#[derive(Clone)]
pub struct Port {
    slot: Arc<Mutex<Slot>>,
}

impl Port {
    fn with<T>(&self, f: impl FnOnce(&mut Slot) -> T) -> T {
        // A poisoned lock only means a case panicked while holding it; the
        // slot holds plain data, still usable.
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut slot)
    }

    /// Asks the driver for `request` and waits (as the machine is polled)
    /// for its reply.
    pub async fn call(&self, request: Request) -> Reply {
        self.with(|s| {
            s.request = Some(request);
            s.reply = None;
        });
        std::future::poll_fn(|_| match self.with(|s| s.reply.take()) {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        })
        .await
    }

    /// The time of the last reply (or of the start).
    pub fn now(&self) -> Instant {
        // `now` is set before the first poll; the fallback is never used.
        self.with(|s| s.now).unwrap_or_else(Instant::now)
    }
}

/// What the machine says after a start or a reply.
#[derive(Debug)]
pub enum Output<T> {
    /// Do this, then [`Machine::resume`] with the reply.
    Request(Request),
    /// The case is over.
    Done(T),
    /// The logic waits on something other than the port: a bug in the case
    /// logic, which must only ever await [`Port::call`]. The case cannot go on.
    Stalled,
}

/// A case's logic, polled by hand between replies.
pub struct Machine<T> {
    port: Port,
    logic: Pin<Box<dyn Future<Output = T> + Send>>,
    done: bool,
}

impl<T> Machine<T> {
    /// `logic` is built from the port it must use for every request.
    pub fn new<F>(logic: impl FnOnce(Port) -> F) -> Machine<T>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let port = Port {
            slot: Arc::new(Mutex::new(Slot::default())),
        };
        let logic = Box::pin(logic(port.clone()));
        Machine {
            port,
            logic,
            done: false,
        }
    }

    /// Runs the logic until its first request (or its end).
    pub fn start(&mut self, now: Instant) -> Output<T> {
        self.port.with(|s| s.now = Some(now));
        self.poll()
    }

    /// Hands over the reply to the last request, which arrived at `now`.
    pub fn resume(&mut self, reply: Reply, now: Instant) -> Output<T> {
        self.port.with(|s| {
            s.reply = Some(reply);
            s.now = Some(now);
        });
        self.poll()
    }

    fn poll(&mut self) -> Output<T> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.logic.as_mut().poll(&mut cx) {
            Poll::Ready(outcome) => {
                self.done = true;
                Output::Done(outcome)
            }
            Poll::Pending => match self.port.with(|s| s.request.take()) {
                Some(r) => Output::Request(r),
                None => Output::Stalled,
            },
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_and_replies_alternate_and_time_comes_in() {
        let t0 = Instant::now();
        let mut m = Machine::new(|port: Port| async move {
            let start = port.now();
            let r = port
                .call(Request::Sleep {
                    until: start + Duration::from_secs(1),
                })
                .await;
            assert!(matches!(r, Reply::Done));
            port.now() - start
        });
        let Output::Request(Request::Sleep { until }) = m.start(t0) else {
            panic!("a sleep first");
        };
        assert_eq!(until, t0 + Duration::from_secs(1));
        match m.resume(Reply::Done, until) {
            Output::Done(elapsed) => assert_eq!(elapsed, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        assert!(m.is_done());
    }
}
