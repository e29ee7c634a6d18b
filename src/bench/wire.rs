//! The bench's few packets on a raw `net::Stream`: the CONNECT and
//! SUBSCRIBE handshakes under a deadline, and the stamp each PUBLISH
//! payload carries (when it was written, who sent it, its number).
//!
//! Not `net::Connection`: that one logs every packet, which a load
//! generator cannot afford; packets still go through the codec both ways.

use bytes::BytesMut;
use mqtt_codec::{
    decode_slice, Connect, DecodeOptions, Decoded, Packet, Properties, Protocol, QoS, Sender,
    Subscribe, Subscription, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

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

/// An open connection: the stream, what was read past the CONNACK, and
/// the broker's Receive Maximum (5.0; 65535 when it says none).
pub type Opened = (Stream, BytesMut, u16);

/// Opens a connection and completes CONNECT / CONNACK before `deadline`.
pub async fn connect(
    target: &Target,
    connect: Connect,
    deadline: Instant,
) -> Result<Opened, String> {
    let protocol = connect.protocol;
    let mut stream = crate::net::connect(target, deadline)
        .await
        .map_err(|e| e.to_string())?;
    let bytes = mqtt_codec::encode_bytes(&Packet::Connect(Box::new(connect)), protocol)
        .map_err(|e| e.to_string())?;
    write(&mut stream, &bytes, deadline).await?;
    let mut buf = BytesMut::with_capacity(8192);
    match until(&mut stream, &mut buf, protocol, deadline, |p| {
        matches!(p, Packet::ConnAck(_))
    })
    .await?
    {
        Packet::ConnAck(a) if a.code == 0 => {
            let receive = a.properties.receive_maximum().unwrap_or(u16::MAX);
            Ok((stream, buf, receive))
        }
        Packet::ConnAck(a) => Err(format!(
            "CONNACK refused the connection with 0x{:02X}",
            a.code
        )),
        _ => Err("no CONNACK".into()),
    }
}

/// Subscribes to `filters` (in SUBSCRIBEs of at most 100) and waits for
/// each SUBACK; a refused filter is an error.
pub async fn subscribe(
    stream: &mut Stream,
    buf: &mut BytesMut,
    protocol: Protocol,
    filters: &[String],
    qos: QoS,
    deadline: Instant,
) -> Result<(), String> {
    for (i, chunk) in filters.chunks(100).enumerate() {
        let id = u16::try_from(i + 1).unwrap_or(u16::MAX);
        let packet = Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Properties::new(),
            filters: chunk
                .iter()
                .map(|f| Subscription {
                    filter: f.as_str().into(),
                    options: SubscriptionOptions::qos(qos),
                })
                .collect(),
        });
        let bytes = mqtt_codec::encode_bytes(&packet, protocol).map_err(|e| e.to_string())?;
        write(stream, &bytes, deadline).await?;
        match until(
            stream,
            buf,
            protocol,
            deadline,
            |p| matches!(p, Packet::SubAck(s) if s.packet_id == id),
        )
        .await?
        {
            Packet::SubAck(s) if s.reason_codes.iter().all(|&c| c < 0x80) => {}
            Packet::SubAck(s) => {
                return Err(format!("SUBACK refused a filter: {:02X?}", s.reason_codes))
            }
            _ => return Err("no SUBACK".into()),
        }
    }
    Ok(())
}

async fn write(stream: &mut Stream, bytes: &[u8], deadline: Instant) -> Result<(), String> {
    match timeout_at(deadline, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("writing failed: {e}")),
        Err(_) => Err("the broker did not take the bytes in time".into()),
    }
}

/// Reads until a packet for which `wanted` holds (others are dropped: none
/// is expected during a handshake), a close, garbage or the deadline.
async fn until(
    stream: &mut Stream,
    buf: &mut BytesMut,
    protocol: Protocol,
    deadline: Instant,
    wanted: impl Fn(&Packet) -> bool,
) -> Result<Packet, String> {
    let opts = from_server(protocol);
    loop {
        while !buf.is_empty() {
            match decode_slice(buf, &opts) {
                Ok(Decoded::Packet { packet, len }) => {
                    let owned = packet.to_owned_packet();
                    let _ = buf.split_to(len);
                    if wanted(&owned) {
                        return Ok(owned);
                    }
                    if let Packet::Disconnect(d) = owned {
                        return Err(format!("DISCONNECT 0x{:02X}", d.reason_code));
                    }
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => return Err(format!("the broker sent what does not decode: {e}")),
            }
        }
        match timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(0)) => return Err("the broker closed the connection".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("reading failed: {e}")),
            Err(_) => return Err("no answer before the deadline".into()),
        }
    }
}
