//! A packet connection: bytes in and out through the codec, every wait
//! bounded by a deadline, and a typed log of what went each way.
//!
//! It is deliberately not an MQTT client: it sends exactly the bytes it is
//! given (valid or not) and reports exactly what came back, as a packet,
//! bytes the codec refuses, a close or nothing before the deadline. The log
//! keeps packets as the codec's values and the bytes as they travelled, so
//! that reporters decide how to show them and nothing is decoded twice.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::decode::frame_len;
use mqtt_codec::{DecodeError, DecodeOptions, Decoded, Decoder, Packet, Protocol, Sender};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};

use crate::{connect, ConnectError, Stream, Target};

/// Log entries kept per connection until [`Connection::take_log`]: a `#`
/// subscription on a busy broker must not fill memory.
pub const LOG_LIMIT: usize = 2000;

/// How long [`Connection::close`] waits for the transport's goodbye (a TLS
/// close_notify, a WebSocket close frame) to be written.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What a read produced.
#[derive(Debug, Clone)]
pub enum Event {
    /// A packet and its bytes.
    Packet(Packet, Bytes),
    /// The peer closed the connection (or reset it), with why when known.
    Closed(Option<String>),
    /// The peer sent bytes the codec refuses.
    Malformed(DecodeError, Bytes),
    /// Nothing before the deadline.
    Timeout,
}

/// Which way a logged packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// One line of the exchange log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// When it happened (orders the logs of several connections).
    pub at: Instant,
    /// The connection's name.
    pub client: String,
    pub direction: Direction,
    /// The version the packet was decoded or encoded in: what its fields
    /// mean (a reason code table, properties or not).
    pub protocol: Protocol,
    /// The packet; `None` for bytes that do not decode, bytes sent raw, and
    /// events without bytes (a close).
    pub packet: Option<Packet>,
    /// The bytes as they travelled (empty for a close).
    pub bytes: Bytes,
    /// A remark: a decode error, the connection closing, noise skipped…
    pub note: Option<String>,
}

/// Why [`Connection::send`] did not deliver.
#[derive(Debug)]
pub enum SendError {
    /// The connection was closed before.
    NotOpen,
    /// The peer closed or reset the connection first.
    Broken(io::Error),
    /// The peer did not take the bytes before the deadline.
    Timeout,
    /// What was asked cannot be sent on this connection (a text frame on
    /// a connection that is no WebSocket, bytes that are not UTF-8).
    Unsupported(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotOpen => f.write_str("the connection is not open"),
            SendError::Broken(e) => write!(f, "writing failed: {e}"),
            SendError::Timeout => f.write_str("the peer did not take the bytes in time"),
            SendError::Unsupported(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Broken(e) => Some(e),
            SendError::NotOpen | SendError::Timeout | SendError::Unsupported(_) => None,
        }
    }
}

/// One connection, speaking packets.
#[derive(Debug)]
pub struct Connection {
    name: String,
    stream: Option<Stream>,
    decoder: Decoder,
    buf: BytesMut,
    protocol: Protocol,
    connected: bool,
    log: Vec<LogEntry>,
}

fn other_version(p: Protocol) -> Protocol {
    if p.is_v5() {
        Protocol::V3_1_1
    } else {
        Protocol::V5
    }
}

impl Connection {
    /// Opens a connection to `target` for the client called `name`; what
    /// arrives is decoded as a server's packets of `protocol`.
    pub async fn open(
        name: &str,
        target: &Target,
        protocol: Protocol,
        deadline: Instant,
    ) -> Result<Connection, ConnectError> {
        let stream = connect(target, deadline).await?;
        Ok(Connection::from_stream(
            name,
            stream,
            protocol,
            Sender::Server,
        ))
    }

    /// A connection over a stream opened elsewhere, decoding what `sender`
    /// sends: `Sender::Client` on the accepting side (a proxy, a fake
    /// broker), `Sender::Server` on the connecting side. A CONNECT decoded
    /// from a client sets the connection's protocol to its version.
    pub fn from_stream(
        name: &str,
        stream: Stream,
        protocol: Protocol,
        sender: Sender,
    ) -> Connection {
        Connection {
            name: name.to_string(),
            stream: Some(stream),
            decoder: Decoder::new(DecodeOptions::new(protocol, sender)),
            buf: BytesMut::with_capacity(4096),
            protocol,
            connected: false,
            log: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version received bytes are decoded in.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sets the version received bytes are decoded in (after a CONNECT).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        self.decoder.options.protocol = protocol;
    }

    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Refuses received packets larger than `max` bytes (fixed header
    /// included) from their fixed header, before buffering them: a peer
    /// that announces a huge packet cannot make the buffer grow past it.
    pub fn set_max_packet_size(&mut self, max: u32) {
        self.decoder.options.max_packet_size = max;
    }

    /// A CONNACK with code 0 has arrived.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Writes `bytes` before `deadline`. `packet` is what they encode, logged
    /// as is (`None`: bytes only, such as raw hex or a deliberately broken
    /// encoding).
    pub async fn send(
        &mut self,
        bytes: &[u8],
        packet: Option<Packet>,
        deadline: Instant,
    ) -> Result<(), SendError> {
        // A CONNECT is written in its own version, whatever the connection's.
        let protocol = match &packet {
            Some(Packet::Connect(c)) => c.protocol,
            _ => self.protocol,
        };
        let open = self.stream.is_some();
        self.record(LogEntry {
            at: Instant::now(),
            client: self.name.clone(),
            direction: Direction::Sent,
            protocol,
            packet,
            bytes: Bytes::copy_from_slice(bytes),
            note: (!open).then(|| "not sent: the connection is closed".to_string()),
        });
        let Some(stream) = self.stream.as_mut() else {
            return Err(SendError::NotOpen);
        };
        let writing = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match timeout_at(deadline, writing).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Broken(e)),
            Err(_) => Err(SendError::Timeout),
        }
    }

    /// Writes `bytes` in one WebSocket text frame (MQTT forbids them:
    /// scenarios send one on purpose), logged with a note saying so.
    pub async fn send_text(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), SendError> {
        let protocol = self.protocol;
        self.record(LogEntry {
            at: Instant::now(),
            client: self.name.clone(),
            direction: Direction::Sent,
            protocol,
            packet: None,
            bytes: Bytes::copy_from_slice(bytes),
            note: Some("in a WebSocket text frame".into()),
        });
        let Some(stream) = self.stream.as_mut() else {
            return Err(SendError::NotOpen);
        };
        match timeout_at(deadline, stream.send_text(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidInput => {
                Err(SendError::Unsupported(e.to_string()))
            }
            Ok(Err(e)) => Err(SendError::Broken(e)),
            Err(_) => Err(SendError::Timeout),
        }
    }

    /// The next packet, close or decode failure, or `Timeout` at `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> Event {
        loop {
            if let Some(event) = self.buffered_event() {
                return event;
            }
            let Some(stream) = self.stream.as_mut() else {
                return Event::Closed(Some("the connection was already closed".into()));
            };
            match timeout_at(deadline, stream.read_buf(&mut self.buf)).await {
                Err(_) => return Event::Timeout,
                Ok(Ok(0)) => {
                    let note = (!self.buf.is_empty()).then(|| {
                        format!("closed inside a packet: {} bytes pending", self.buf.len())
                    });
                    self.closed(note.clone());
                    return Event::Closed(note);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let note = Some(e.to_string());
                    self.closed(note.clone());
                    return Event::Closed(note);
                }
            }
        }
    }

    /// A packet or a refusal from what is buffered; `None` when a packet
    /// needs more bytes.
    fn buffered_event(&mut self) -> Option<Event> {
        if self.buf.is_empty() {
            return None;
        }
        // The frame's bytes are copied for the event only when they are all
        // there: a large packet arriving in many reads is not copied each time.
        let whole = frame_len(&self.buf)
            .filter(|&n| n <= self.buf.len())
            .and_then(|n| self.buf.get(..n))
            .map(Bytes::copy_from_slice);
        let decoded = self.decoder.decode(&mut self.buf);
        // A CONNECT from a client switches the decoder to its version.
        self.protocol = self.decoder.options.protocol;
        match decoded {
            Ok(None) => None,
            Ok(Some(p)) => {
                let raw = whole.unwrap_or_default();
                if matches!(&p, Packet::ConnAck(a) if a.code == 0) {
                    self.connected = true;
                }
                self.received(Some(p.clone()), self.protocol, raw.clone(), None);
                Some(Event::Packet(p, raw))
            }
            Err(e) => {
                // Refused from its header (before it was whole): what is
                // buffered is all there is to show.
                let raw = whole.unwrap_or_else(|| Bytes::copy_from_slice(&self.buf));
                self.buf.clear();
                // A server that did not recognise the CONNECT's version may
                // answer in the other format: a CONNACK is tried in both.
                if let Some(p) = self.connack_other_version(&raw) {
                    let other = other_version(self.protocol);
                    let note = format!("decoded as an MQTT {other} CONNACK");
                    self.received(Some(p.clone()), other, raw.clone(), Some(note));
                    return Some(Event::Packet(p, raw));
                }
                let note = format!("does not decode: {e}");
                self.received(None, self.protocol, raw.clone(), Some(note));
                Some(Event::Malformed(e, raw))
            }
        }
    }

    fn connack_other_version(&self, raw: &Bytes) -> Option<Packet> {
        let from_server = self.decoder.options.from == Sender::Server;
        if !from_server || self.connected || raw.first().map(|b| b >> 4) != Some(2) {
            return None;
        }
        let opts = DecodeOptions::new(other_version(self.protocol), Sender::Server);
        match mqtt_codec::decode_bytes(raw, &opts) {
            Ok(Decoded::Packet { packet, len }) if len == raw.len() => Some(packet),
            _ => None,
        }
    }

    fn received(
        &mut self,
        packet: Option<Packet>,
        protocol: Protocol,
        bytes: Bytes,
        note: Option<String>,
    ) {
        self.record(LogEntry {
            at: Instant::now(),
            client: self.name.clone(),
            direction: Direction::Received,
            protocol,
            packet,
            bytes,
            note,
        });
    }

    fn closed(&mut self, why: Option<String>) {
        self.stream = None;
        let note = match why {
            Some(n) => format!("connection closed: {n}"),
            None => "connection closed".into(),
        };
        self.received(None, self.protocol, Bytes::new(), Some(note));
    }

    /// Appends to the log, which keeps the first [`LOG_LIMIT`] entries and
    /// then one saying that it was truncated.
    fn record(&mut self, entry: LogEntry) {
        match self.log.len() {
            n if n < LOG_LIMIT => self.log.push(entry),
            n if n == LOG_LIMIT => self.log.push(LogEntry {
                packet: None,
                bytes: Bytes::new(),
                note: Some(format!("(log truncated after {LOG_LIMIT} entries)")),
                ..entry
            }),
            _ => {}
        }
    }

    /// A remark on the last log entry (a skipped noise packet, why a write
    /// failed), after any remark it has already.
    pub fn note(&mut self, text: impl Into<String>) {
        // Past the limit the last entry is the truncation notice, which
        // stands for entries not kept: no remark belongs to it.
        if self.log.len() > LOG_LIMIT {
            return;
        }
        if let Some(last) = self.log.last_mut() {
            let text = text.into();
            last.note = Some(match last.note.take() {
                Some(before) => format!("{before}; {text}"),
                None => text,
            });
        }
    }

    /// Shuts the connection down without a DISCONNECT, and logs it.
    pub async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            let _ = timeout(CLOSE_WAIT, stream.shutdown()).await;
            self.record(LogEntry {
                at: Instant::now(),
                client: self.name.clone(),
                direction: Direction::Sent,
                protocol: self.protocol,
                packet: None,
                bytes: Bytes::new(),
                note: Some("closed the socket".into()),
            });
        }
    }

    /// The stream and the bytes read but not decoded yet, for a caller that
    /// goes on without packets or a log (the bench's load, once connected);
    /// `None` when the connection is closed.
    pub fn into_stream(self) -> Option<(Stream, BytesMut)> {
        Some((self.stream?, self.buf))
    }

    /// The log so far; the connection starts a new one.
    pub fn take_log(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.log)
    }
}
