//! One connection's outgoing bytes, between the core and the writer task.
//!
//! The dispatcher encodes each packet straight onto the end of the pending
//! buffer (under the state lock, so packets keep the core's order); the
//! writer takes everything pending in one swap and sends it in one write.
//! Compared with a channel of encoded packets this allocates nothing per
//! packet, wakes the writer once per burst instead of once per packet, and
//! holds exactly the bytes queued.

use std::sync::{Mutex, MutexGuard};

use bytes::BytesMut;
use mqtt_codec::{EncodeError, Packet, Protocol};
use tokio::sync::Notify;

/// A writer's buffer that grew beyond this is given back after a burst.
const KEEP_CAPACITY: usize = 64 * 1024;

#[derive(Debug)]
pub enum PushError {
    /// `limit` packets are already waiting: the peer reads too slowly.
    Full,
    Encode(EncodeError),
}

#[derive(Default)]
struct Pending {
    buf: BytesMut,
    /// Packets in `buf`.
    packets: usize,
    /// No more packets: the writer sends what is left and ends.
    closed: bool,
}

#[derive(Default)]
pub struct Outbox {
    // Held only to append or swap, never across an await.
    pending: Mutex<Pending>,
    ready: Notify,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Encodes `packet` for `protocol` after what is pending, unless `limit`
    /// packets are pending already. After [`Outbox::close`] packets are dropped.
    pub fn push(&self, packet: &Packet, protocol: Protocol, limit: usize) -> Result<(), PushError> {
        let mut p = self.lock();
        if p.closed {
            return Ok(());
        }
        if p.packets >= limit {
            return Err(PushError::Full);
        }
        let len = p.buf.len();
        if let Err(e) = mqtt_codec::encode(packet, protocol, &mut p.buf) {
            p.buf.truncate(len);
            return Err(PushError::Encode(e));
        }
        p.packets += 1;
        let wake = p.packets == 1;
        drop(p);
        if wake {
            // A stored permit if the writer is busy: it looks again after its write.
            self.ready.notify_one();
        }
        Ok(())
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
                    p.packets = 0;
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

    #[test]
    fn packets_batch_limit_and_close() {
        let o = Outbox::default();
        let mut into = BytesMut::new();
        assert_eq!(take_now(&o, &mut into), None, "nothing pending yet");
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room");
        o.push(&Packet::PingResp, Protocol::V3_1_1, 2)
            .expect("room");
        assert!(matches!(
            o.push(&Packet::PingResp, Protocol::V3_1_1, 2),
            Err(PushError::Full)
        ));
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
