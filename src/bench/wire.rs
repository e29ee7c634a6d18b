//! The bench's connections: opened and brought up (CONNECT / CONNACK,
//! SUBSCRIBE / SUBACK) by the shared [`crate::client::Session`], then handed
//! to the load tasks as a bare [`Stream`] with what was read past the
//! handshake; and the stamp each PUBLISH payload carries (when it was
//! written, who sent it, its number).
//!
//! Why the load itself is not a `Session` (nor a `net::Connection`): those
//! log every packet and encode each into a buffer of its own, which a load
//! generator cannot afford at tens of thousands of messages a second. The
//! hot path (`tasks`) encodes batches of PUBLISH into one reused buffer and
//! decodes in place from the read buffer (`decode_slice`); packets still go
//! through the codec both ways. Only the handshakes, where speed does not
//! matter, go through the shared client.

use bytes::BytesMut;
use mqtt_codec::{
    Connect, DecodeOptions, Properties, Protocol, QoS, Sender, Subscription, SubscriptionOptions,
};

use crate::client::Session;
use crate::net::{Stream, Target};

/// Bytes at the start of every payload: nanoseconds since the run's epoch
/// (u64), the publisher's index (u32), the message's number (u64).
pub const STAMP: usize = 20;

pub fn stamp(out: &mut [u8], nanos: u64, publisher: u32, seq: u64) {
    if let Some(s) = out.get_mut(..STAMP) {
        s[..8].copy_from_slice(&nanos.to_le_bytes());
        s[8..12].copy_from_slice(&publisher.to_le_bytes());
        s[12..20].copy_from_slice(&seq.to_le_bytes());
    }
}

/// (nanos, publisher, seq) of a payload, `None` when it is too short.
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u32, u64)> {
    let s = payload.get(..STAMP)?;
    let n = u64::from_le_bytes(s[..8].try_into().ok()?);
    let p = u32::from_le_bytes(s[8..12].try_into().ok()?);
    let q = u64::from_le_bytes(s[12..20].try_into().ok()?);
    Some((n, p, q))
}

/// The decode options of what a server sends.
pub fn from_server(protocol: Protocol) -> DecodeOptions {
    DecodeOptions::new(protocol, Sender::Server)
}

/// A connected session and the broker's Receive Maximum (5.0; 65535
/// when it says none).
pub type Opened = (Session, u16);

/// Opens a connection and completes CONNECT / CONNACK, each step within
/// `timeout`.
pub async fn connect(
    target: &Target,
    connect: Connect,
    timeout: std::time::Duration,
) -> Result<Opened, String> {
    let name = connect.client_id.to_string();
    let mut session = Session::open_raw(target, connect.protocol, &name, timeout)
        .await
        .map_err(|e| e.to_string())?;
    match session.connect_with(connect).await {
        Ok(a) if a.code == 0 => {
            let receive = a.properties.receive_maximum().unwrap_or(u16::MAX);
            // Nothing of the handshake is shown: its log is not kept.
            session.take_log();
            Ok((session, receive))
        }
        Ok(a) => Err(format!(
            "CONNACK refused the connection with 0x{:02X}",
            a.code
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Subscribes to `filters` (in SUBSCRIBEs of at most 100) and waits for
/// each SUBACK; a refused filter is an error.
pub async fn subscribe(session: &mut Session, filters: &[String], qos: QoS) -> Result<(), String> {
    for chunk in filters.chunks(100) {
        let filters = chunk
            .iter()
            .map(|f| Subscription {
                filter: f.as_str().into(),
                options: SubscriptionOptions::qos(qos),
            })
            .collect();
        let codes = session
            .try_subscribe(filters, Properties::new())
            .await
            .map_err(|e| e.to_string())?;
        session.take_log();
        if codes.iter().any(|&c| c >= 0x80) {
            return Err(format!("SUBACK refused a filter: {codes:02X?}"));
        }
    }
    Ok(())
}

/// The session's transport and what was read past its handshakes, for the
/// load tasks.
pub fn stream(session: Session) -> Result<(Stream, BytesMut), String> {
    session
        .into_stream()
        .ok_or_else(|| "the broker closed the connection".to_string())
}
