//! One connection's outgoing bytes, between the core and the connection task.
//!
//! The dispatcher encodes each packet straight onto the end of the pending
//! buffer (under the state lock, so packets keep the core's order); the
//! connection task takes everything pending in one swap and sends it in one
//! write. Compared with a channel of encoded packets this allocates nothing
//! per packet, wakes the task once per burst instead of once per packet, and
//! holds exactly the bytes queued.
//!
//! The limit is in bytes: a QoS 0 PUBLISH that would take the pending bytes
//! beyond it is dropped (the caller counts it), every other packet is kept.
//! What else can pile up is bounded elsewhere: QoS 1/2 messages by the
//! receive window, the answers to the client's own packets by the reader,
//! which stops reading while the outbox is over its limit.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use bytes::BytesMut;
use mqtt_codec::{EncodeError, Packet, Protocol, QoS};

/// A buffer that grew beyond this is given back after a burst.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Debug)]
pub enum PushError {
    /// A QoS 0 PUBLISH that would take the pending bytes over the limit:
    /// not queued. `first`: since a PUBLISH was last queued (one log line
    /// per burst).
    Dropped {
        first: bool,
    },
    Encode(EncodeError),
}

#[derive(Default)]
struct Pending {
    buf: BytesMut,
    /// No more packets: the task sends what is left and ends.
    closed: bool,
    /// The core no longer pauses the connection (see [`Outbox::resume`]).
    resumed: bool,
    /// The largest burst taken (up to [`KEEP_CAPACITY`]): the room an empty
    /// buffer is given, so that a busy connection whose task gave its
    /// buffer back while it waited allocates once per burst, not once per
    /// doubling.
    hint: usize,
    /// Set by the first packet after a take, by close and by resume, until
    /// [`Outbox::poll_changed`] sees it: the one wake-up the task waits on.
    signalled: bool,
    /// The connection's task, waiting for it.
    waker: Option<Waker>,
    /// The timer task asked whether the connection is idle (see [`Outbox::tick`]).
    ticked: bool,
    /// The connection is parked (`server/lounge.rs`): the signal rings
    /// this instead of waking a task.
    bell: Option<crate::server::lounge::Bell>,
    /// QoS 0 messages are being dropped (see [`PushError::Dropped`]).
    dropping: bool,
}

/// A parked connection's waker: rings its bell, so that the lounge looks
/// at it; nothing once it has a task again.
impl Wake for Outbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let bell = self.lock().bell.clone();
        if let Some(bell) = bell {
            bell.ring();
        }
    }
}

/// What [`Outbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Bytes, now in the caller's buffer.
    Bytes,
    /// Nothing pending; more may come.
    Nothing,
    /// Nothing pending and closed: nothing more will come.
    Closed,
}

/// The connection task's side of one connection: what to write, and the
/// wake-ups the core sends it. One allocation per connection; a waker
/// rather than a `Notify`, so that waiting for it takes no future of its
/// own (a parked connection has none).
#[derive(Default)]
pub struct Outbox {
    // Held only to append or swap, never across an await.
    pending: Mutex<Pending>,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the signal and wakes whoever waits for it, outside the lock.
    fn signal(mut p: MutexGuard<'_, Pending>) {
        p.signalled = true;
        if let Some(bell) = p.bell.clone() {
            drop(p);
            bell.ring();
            return;
        }
        let waker = p.waker.take();
        drop(p);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Encodes `packet` for `protocol` after what is pending; a QoS 0
    /// PUBLISH only if the pending bytes stay within `limit`. After
    /// [`Outbox::close`] packets are dropped.
    pub fn push(&self, packet: &Packet, protocol: Protocol, limit: usize) -> Result<(), PushError> {
        let mut p = self.lock();
        if p.closed {
            return Ok(());
        }
        let len = p.buf.len();
        if p.buf.capacity() == 0 {
            let room = p.hint;
            p.buf.reserve(room);
        }
        if let Err(e) = mqtt_codec::encode(packet, protocol, &mut p.buf) {
            p.buf.truncate(len);
            return Err(PushError::Encode(e));
        }
        if let Packet::Publish(m) = packet {
            if p.buf.len() > limit && m.qos == QoS::AtMostOnce {
                p.buf.truncate(len);
                let first = !std::mem::replace(&mut p.dropping, true);
                return Err(PushError::Dropped { first });
            }
            p.dropping = false;
        }
        if len == 0 {
            // Kept if the task is busy: it looks again after its write.
            Outbox::signal(p);
        }
        Ok(())
    }

    /// Whether more than `limit` bytes are pending.
    pub fn over(&self, limit: usize) -> bool {
        self.lock().buf.len() > limit
    }

    /// No more packets; the task sends what is pending and ends.
    pub fn close(&self) {
        let mut p = self.lock();
        p.closed = true;
        Outbox::signal(p);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Ready, once, after a packet was pushed to an empty outbox, or after
    /// [`Outbox::close`] or [`Outbox::resume`], since the last time it was
    /// (the signal is kept until seen); otherwise `cx` is woken then.
    pub fn poll_changed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut p = self.lock();
        if std::mem::take(&mut p.signalled) {
            return Poll::Ready(());
        }
        match &mut p.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => p.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Parks the connection: signals ring `bell` from now on, and so does
    /// waking the outbox as a waker (its socket's readiness, see
    /// [`Outbox::wake`](Wake::wake)).
    pub fn hang(&self, bell: crate::server::lounge::Bell) {
        let mut p = self.lock();
        p.bell = Some(bell);
        p.waker = None;
    }

    /// The connection has a task again, which takes the signal.
    pub fn unhang(&self) {
        self.lock().bell = None;
    }

    /// Whether a signal waits, without taking it: the lounge looks, the
    /// connection's task, woken, takes it.
    pub fn is_signalled(&self) -> bool {
        self.lock().signalled
    }

    /// Asks the connection's task whether anything happened since the last
    /// ask (it answers with [`Outbox::take_ticked`]); a parked connection is
    /// not asked.
    pub fn tick(&self) {
        let mut p = self.lock();
        if p.bell.is_some() || p.closed {
            return;
        }
        p.ticked = true;
        Outbox::signal(p);
    }

    /// Whether [`Outbox::tick`] was called since the last time this was asked.
    pub fn take_ticked(&self) -> bool {
        std::mem::take(&mut self.lock().ticked)
    }

    /// Nothing to send, nothing signalled, not closed: a connection whose
    /// task sees this and has nothing else to do may be parked.
    pub fn is_quiet(&self) -> bool {
        let p = self.lock();
        p.buf.is_empty() && !p.signalled && !p.closed
    }

    /// Tells the task that the core no longer pauses its connection.
    pub fn resume(&self) {
        let mut p = self.lock();
        p.resumed = true;
        Outbox::signal(p);
    }

    /// Whether [`Outbox::resume`] was called since the last time this was asked.
    pub fn take_resumed(&self) -> bool {
        std::mem::take(&mut self.lock().resumed)
    }

    /// Moves what is pending into `into`, which must be empty: the two
    /// buffers alternate, so each keeps its capacity while the connection is
    /// busy.
    pub fn take(&self, into: &mut BytesMut) -> Taken {
        debug_assert!(into.is_empty());
        if into.capacity() > KEEP_CAPACITY {
            *into = BytesMut::new();
        }
        let mut p = self.lock();
        if !p.buf.is_empty() {
            p.hint = p.hint.max(p.buf.capacity()).min(KEEP_CAPACITY);
            std::mem::swap(&mut p.buf, into);
            Taken::Bytes
        } else if p.closed {
            Taken::Closed
        } else {
            Taken::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qos(qos: QoS) -> Packet {
        Packet::Publish(mqtt_codec::Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t".into(),
            packet_id: u16::from(qos != QoS::AtMostOnce),
            properties: Default::default(),
            payload: bytes::Bytes::from_static(b"x"),
        })
    }

    #[test]
    fn bytes_limit_drops_only_qos0() {
        let o = Outbox::default();
        let v = Protocol::V3_1_1;
        // A QoS 0 PUBLISH on "t" is 6 bytes, a QoS 1 one 8.
        o.push(&qos(QoS::AtMostOnce), v, 12).expect("room");
        o.push(&qos(QoS::AtMostOnce), v, 12).expect("room");
        assert!(!o.over(12));
        assert!(matches!(
            o.push(&qos(QoS::AtMostOnce), v, 12),
            Err(PushError::Dropped { first: true })
        ));
        o.push(&qos(QoS::AtLeastOnce), v, 12)
            .expect("kept beyond the limit");
        o.push(&Packet::PingResp, v, 12)
            .expect("kept beyond the limit");
        assert!(o.over(12));
        let mut into = BytesMut::new();
        assert_eq!(o.take(&mut into), Taken::Bytes);
        assert_eq!(into.len(), 6 + 6 + 8 + 2);
        assert!(!o.over(12));
    }

    #[test]
    fn packets_batch_and_close() {
        let o = Outbox::default();
        let mut into = BytesMut::new();
        assert_eq!(o.take(&mut into), Taken::Nothing, "nothing pending yet");
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room");
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room");
        assert_eq!(o.take(&mut into), Taken::Bytes);
        assert_eq!(
            &into[..],
            &[0xD0, 0x00, 0xD0, 0x00],
            "both packets, in order, in one take"
        );
        into.clear();
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room again after a take");
        o.close();
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("dropped after close");
        assert_eq!(
            o.take(&mut into),
            Taken::Bytes,
            "what was pending before close still goes out"
        );
        assert_eq!(&into[..], &[0xD0, 0x00]);
        into.clear();
        assert_eq!(o.take(&mut into), Taken::Closed);
    }
}
