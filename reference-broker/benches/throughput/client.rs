//! A raw MQTT 3.1.1 client on `mqtt_codec` and tokio, just enough for load:
//! CONNECT, SUBSCRIBE, pipelined PUBLISH from a pre-encoded template, batched
//! PUBACKs. Every wait is under a deadline.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    Connect, DecodeOptions, Decoder, Disconnect, Packet, Properties, Protocol, PubResponse,
    Publish, QoS, Sender, Subscribe, Subscription, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub const PROTOCOL: Protocol = Protocol::V3_1_1;
/// Deadline for the broker's answer to CONNECT and SUBSCRIBE.
pub const PROMPT: Duration = Duration::from_secs(10);

/// The instant all payload timestamps count from (one process, one clock).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`].
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

pub fn encode(packet: &Packet) -> Bytes {
    mqtt_codec::encode_bytes(packet, PROTOCOL).expect("the bench encodes only valid packets")
}

/// What [`Reader::read_batch`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// At least one packet.
    Packets,
    /// End of stream.
    Closed,
    /// Nothing before the deadline.
    TimedOut,
}

/// Reads packets from the broker.
pub struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    decoder: Decoder,
    /// Most bytes taken from the socket per read (a slow reader's few).
    pub max_read: Option<usize>,
}

impl Reader {
    /// Decodes what is buffered; reads once more when nothing is.
    pub async fn read_batch(
        &mut self,
        out: &mut Vec<Packet>,
        deadline: Instant,
    ) -> Result<Read, String> {
        loop {
            while let Some(p) = self
                .decoder
                .decode(&mut self.buf)
                .map_err(|e| format!("broker sent a bad packet: {e}"))?
            {
                out.push(p);
            }
            if !out.is_empty() {
                return Ok(Read::Packets);
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            let read = async {
                match self.max_read {
                    Some(n) => (&mut self.rd).take(n as u64).read_buf(&mut self.buf).await,
                    None => self.rd.read_buf(&mut self.buf).await,
                }
            };
            match tokio::time::timeout_at(deadline.into(), read).await {
                Err(_) => return Ok(Read::TimedOut),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Ok(Ok(0)) => return Ok(Read::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet, which must come before `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Result<Packet, String> {
        let mut out = Vec::with_capacity(1);
        match self.read_batch(&mut out, deadline).await? {
            Read::Packets => {}
            Read::Closed => return Err("broker closed the connection".into()),
            Read::TimedOut => return Err("timed out waiting for the broker".into()),
        }
        let p = out.remove(0);
        // Only used in the handshake, where one answer is expected at a time.
        if !out.is_empty() {
            return Err(format!("unexpected packets after {p:?}"));
        }
        Ok(p)
    }
}

/// A connected client, split so that one task can write while another reads.
pub struct Client {
    pub reader: Reader,
    pub writer: OwnedWriteHalf,
}

impl Client {
    /// Opens a TCP connection and completes CONNECT / CONNACK (clean session,
    /// a keep alive of ten minutes: longer than any run, so that idle
    /// connections stay open without pings; not 0, which rumqttd refuses).
    pub async fn connect(addr: SocketAddr, client_id: &str) -> Result<Client, String> {
        Client::connect_session(addr, client_id, true).await
    }

    /// [`Client::connect`], keeping the session after the connection when
    /// `clean` is false.
    pub async fn connect_session(
        addr: SocketAddr,
        client_id: &str,
        clean: bool,
    ) -> Result<Client, String> {
        let deadline = Instant::now() + PROMPT;
        let stream = tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr} timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("set_nodelay: {e}"))?;
        let (rd, mut writer) = stream.into_split();
        let mut reader = Reader {
            rd,
            buf: BytesMut::with_capacity(64 * 1024),
            decoder: Decoder::new(DecodeOptions::new(PROTOCOL, Sender::Server)),
            max_read: None,
        };
        let mut connect = Connect::new(PROTOCOL, client_id);
        connect.keep_alive = 600;
        connect.clean_start = clean;
        write(
            &mut writer,
            &encode(&Packet::Connect(Box::new(connect))),
            deadline,
        )
        .await?;
        match reader.next(deadline).await? {
            Packet::ConnAck(a) if a.code == 0 => Ok(Client { reader, writer }),
            other => Err(format!("{client_id}: CONNECT answered with {other:?}")),
        }
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), String> {
        let deadline = Instant::now() + PROMPT;
        let sub = Subscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions::qos(qos),
            }],
        };
        write(&mut self.writer, &encode(&Packet::Subscribe(sub)), deadline).await?;
        match self.reader.next(deadline).await? {
            Packet::SubAck(a) if a.packet_id == 1 && a.reason_codes == [qos.as_u8()] => Ok(()),
            other => Err(format!("SUBSCRIBE {filter} answered with {other:?}")),
        }
    }

    /// Sends DISCONNECT and closes, without waiting long for either.
    pub async fn disconnect(mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        let bytes = encode(&Packet::Disconnect(Disconnect::default()));
        let _ = write(&mut self.writer, &bytes, deadline).await;
        let _ = tokio::time::timeout_at(deadline.into(), self.writer.shutdown()).await;
    }
}

pub async fn write(w: &mut OwnedWriteHalf, bytes: &[u8], deadline: Instant) -> Result<(), String> {
    tokio::time::timeout_at(deadline.into(), w.write_all(bytes))
        .await
        .map_err(|_| "timed out writing to the broker".to_string())?
        .map_err(|e| format!("write: {e}"))
}

/// A PUBLISH encoded once by the codec; each copy patches its packet
/// identifier and the send timestamp at the start of the payload.
pub struct PublishTemplate {
    bytes: Vec<u8>,
    /// Offset of the packet identifier (QoS > 0 only).
    id_at: Option<usize>,
    stamp_at: usize,
}

impl PublishTemplate {
    pub fn new(topic: &str, qos: QoS, payload_len: usize) -> PublishTemplate {
        assert!(payload_len >= 8, "the payload carries an 8-byte timestamp");
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: 0xA5A5,
            properties: Properties::new(),
            payload: Bytes::from(vec![0x5A; payload_len]),
        };
        let bytes = encode(&Packet::Publish(publish)).to_vec();
        let stamp_at = bytes.len() - payload_len;
        let id_at = (qos != QoS::AtMostOnce).then(|| stamp_at - 2);
        if let Some(at) = id_at {
            assert_eq!(
                bytes[at..at + 2],
                [0xA5, 0xA5],
                "packet identifier right before the payload"
            );
        }
        PublishTemplate {
            bytes,
            id_at,
            stamp_at,
        }
    }

    /// Bytes one PUBLISH takes on the wire.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn append(&self, out: &mut Vec<u8>, packet_id: u16, stamp_ns: u64) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(at) = self.id_at {
            out[start + at..start + at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        out[start + self.stamp_at..start + self.stamp_at + 8]
            .copy_from_slice(&stamp_ns.to_be_bytes());
    }
}

/// The send timestamp a [`PublishTemplate`] wrote into a payload.
pub fn stamp_of(payload: &[u8]) -> Option<u64> {
    let head: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

/// Appends a PUBACK for `packet_id` (encoded once, identifier patched: the
/// identifier is the last two bytes of a 3.1.1 PUBACK).
pub fn append_puback(out: &mut Vec<u8>, packet_id: u16) {
    static PUBACK: OnceLock<Bytes> = OnceLock::new();
    let template = PUBACK.get_or_init(|| encode(&Packet::PubAck(PubResponse::new(0))));
    out.extend_from_slice(template);
    let end = out.len();
    out[end - 2..].copy_from_slice(&packet_id.to_be_bytes());
}
