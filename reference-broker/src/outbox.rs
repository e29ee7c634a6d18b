//! One connection's outgoing bytes, between the core and the writer task.
//!
//! The dispatcher encodes each packet straight onto the end of the pending
//! buffer (under the state lock, so packets keep the core's order); the
//! writer takes everything pending in one swap and sends it in one write.
//! Compared with a channel of encoded packets this allocates nothing per
//! packet, wakes the writer once per burst instead of once per packet, and
//! holds exactly the bytes queued.
//!
//! The limit is in bytes: a QoS 0 PUBLISH that would take the pending bytes
//! beyond it is dropped (the caller counts it), every other packet is kept.
//! What else can pile up is bounded elsewhere: QoS 1/2 messages by the
//! receive window, the answers to the client's own packets by the reader,
//! which stops reading while the outbox is over its limit ([`Outbox::room`]).

use std::sync::{Mutex, MutexGuard};

use bytes::BytesMut;
use mqtt_codec::{EncodeError, Packet, Protocol, QoS};
use tokio::sync::Notify;

/// A writer's buffer that grew beyond this is given back after a burst.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Debug)]
pub enum PushError {
    /// A QoS 0 PUBLISH that would take the pending bytes over the limit: not queued.
    Dropped,
    Encode(EncodeError),
}

#[derive(Default)]
struct Pending {
    buf: BytesMut,
    /// No more packets: the writer sends what is left and ends.
    closed: bool,
}

#[derive(Default)]
pub struct Outbox {
    // Held only to append or swap, never across an await.
    pending: Mutex<Pending>,
    ready: Notify,
    /// Notified when the writer takes what is pending.
    taken: Notify,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
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
        if let Err(e) = mqtt_codec::encode(packet, protocol, &mut p.buf) {
            p.buf.truncate(len);
            return Err(PushError::Encode(e));
        }
        if p.buf.len() > limit && matches!(packet, Packet::Publish(m) if m.qos == QoS::AtMostOnce) {
            p.buf.truncate(len);
            return Err(PushError::Dropped);
        }
        let wake = len == 0;
        drop(p);
        if wake {
            // A stored permit if the writer is busy: it looks again after its write.
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Whether more than `limit` bytes are pending.
    pub fn over(&self, limit: usize) -> bool {
        self.lock().buf.len() > limit
    }

    /// Resolves after the writer next takes what is pending (or at once if
    /// it did since the last call).
    pub async fn room(&self) {
        self.taken.notified().await
    }

    /// No more packets; the writer ends once what is pending is sent.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Waits until bytes are pending and moves them into `into` (which must be
    /// empty); `false` once closed with nothing left to send.
    pub async fn take(&self, into: &mut BytesMut) -> bool {
        debug_assert!(into.is_empty());
        if into.capacity() > KEEP_CAPACITY {
            *into = BytesMut::new();
        }
        loop {
            {
                let mut p = self.lock();
                if !p.buf.is_empty() {
                    // The two buffers alternate, so each keeps its capacity.
                    std::mem::swap(&mut p.buf, into);
                    drop(p);
                    self.taken.notify_one();
                    return true;
                }
                if p.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll};

    use super::*;

    /// Polls `take` once: `None` when it would wait.
    fn take_now(o: &Outbox, into: &mut BytesMut) -> Option<bool> {
        let waker = futures_util::task::noop_waker();
        match std::pin::pin!(o.take(into)).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(b) => Some(b),
            Poll::Pending => None,
        }
    }

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
            Err(PushError::Dropped)
        ));
        o.push(&qos(QoS::AtLeastOnce), v, 12)
            .expect("kept beyond the limit");
        o.push(&Packet::PingResp, v, 12)
            .expect("kept beyond the limit");
        assert!(o.over(12));
        let mut into = BytesMut::new();
        assert_eq!(take_now(&o, &mut into), Some(true));
        assert_eq!(into.len(), 6 + 6 + 8 + 2);
        assert!(!o.over(12));
    }

    #[test]
    fn packets_batch_and_close() {
        let o = Outbox::default();
        let mut into = BytesMut::new();
        assert_eq!(take_now(&o, &mut into), None, "nothing pending yet");
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room");
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room");
        assert_eq!(take_now(&o, &mut into), Some(true));
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
            take_now(&o, &mut into),
            Some(true),
            "what was pending before close still goes out"
        );
        assert_eq!(&into[..], &[0xD0, 0x00]);
        into.clear();
        assert_eq!(take_now(&o, &mut into), Some(false));
    }
}
