//! MQTT over WebSocket as a plain byte stream.
//!
//! MQTT travels in binary frames (MQTT-6.0.0-1) and a packet may span frames
//! or share one with others (MQTT-6.0.0-2). So [`WsStream`] hides frames
//! altogether: it reads the payloads of binary frames as one stream of bytes
//! and writes bytes as binary frames, and everything above it (the codec,
//! the broker's connection task, [`crate::Connection`]) is the same code as
//! for TCP. A text frame is an error; pings and pongs are answered or
//! ignored by tungstenite; a close frame is the end of the stream.
//!
//! Like a buffered writer, it sends what it was given on `flush` (tungstenite
//! collects frames until then), so writers flush after each burst.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::{Sink, Stream as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The largest frame written: a bigger write is split, so that a peer with
/// a small frame limit still reads large packets (frames carry no meaning).
pub const MAX_FRAME: usize = 64 * 1024;

/// Why a text frame is refused, as the read error says.
pub const TEXT_FRAME: &str =
    "a text frame arrived; MQTT over WebSocket travels in binary frames only [MQTT-6.0.0-1]";

/// Why a frame that does not hold whole packets is refused under
/// [`WsFaults::frames_are_packets`].
pub const UNALIGNED_FRAME: &str =
    "a binary frame that does not hold whole MQTT packets (this listener assumes frames are packets, breaking MQTT-6.0.0-2 on purpose)";

/// Deliberate faults of the accepting side, for a broker that breaks the
/// WebSocket statements on purpose (the reference broker's `--violate`):
/// none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsFaults {
    /// Reads a text frame's bytes as MQTT instead of closing (MQTT-6.0.0-1).
    pub text_as_binary: bool,
    /// Assumes each binary frame holds whole packets, and fails the read
    /// where one does not (MQTT-6.0.0-2).
    pub frames_are_packets: bool,
    /// Answers the upgrade without selecting the `mqtt` subprotocol
    /// (MQTT-6.0.0-4).
    pub no_subprotocol: bool,
}

/// The subprotocol MQTT over WebSocket announces (MQTT-6.0.0-3, -4).
pub const SUBPROTOCOL: &str = "mqtt";

/// A WebSocket connection read and written as bytes.
#[derive(Debug)]
pub struct WsStream<S> {
    ws: WebSocketStream<S>,
    /// The payload of the last binary frame, and how much of it was read:
    /// a frame larger than the reader's buffer is handed out in pieces.
    frame: Vec<u8>,
    read: usize,
    /// A close frame (or the end of the connection) has been read.
    eof: bool,
    faults: WsFaults,
}

impl<S> WsStream<S> {
    pub fn new(ws: WebSocketStream<S>) -> WsStream<S> {
        WsStream {
            ws,
            frame: Vec::new(),
            read: 0,
            eof: false,
            faults: WsFaults::default(),
        }
    }

    /// The same, reading with deliberate `faults`.
    pub fn with_faults(ws: WebSocketStream<S>, faults: WsFaults) -> WsStream<S> {
        WsStream {
            faults,
            ..WsStream::new(ws)
        }
    }
}

/// Whether `frame` holds whole MQTT packets, back to back.
fn whole_packets(mut frame: &[u8]) -> bool {
    while !frame.is_empty() {
        match mqtt_codec::decode::frame_len(frame) {
            Some(n) if n <= frame.len() => frame = frame.get(n..).unwrap_or(&[]),
            _ => return false,
        }
    }
    true
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The stream under the WebSocket (TCP or TLS).
    pub fn get_ref(&self) -> &S {
        self.ws.get_ref()
    }

    /// Sends `text` in one text frame, which MQTT forbids (MQTT-6.0.0-1): a
    /// test harness sends one on purpose. Bytes written before are flushed
    /// first, so frames keep their order.
    pub async fn send_text(&mut self, text: String) -> io::Result<()> {
        use futures_util::SinkExt;
        use tokio::io::AsyncWriteExt;
        self.flush().await?;
        self.ws.send(Message::Text(text)).await.map_err(to_io)
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        // Writing after a close: what a socket says when the peer is gone.
        e @ (WsError::ConnectionClosed | WsError::AlreadyClosed) => {
            io::Error::new(io::ErrorKind::BrokenPipe, e)
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S> AsyncRead for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let left = this.frame.get(this.read..).unwrap_or(&[]);
            if !left.is_empty() {
                let n = left.len().min(buf.remaining());
                buf.put_slice(left.get(..n).unwrap_or(&[]));
                this.read += n;
                if this.read >= this.frame.len() {
                    // An idle connection keeps no frame buffer.
                    this.frame = Vec::new();
                    this.read = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // Nothing put in `buf`: the end of the stream.
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => {
                    if this.faults.frames_are_packets && !whole_packets(&data) {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            UNALIGNED_FRAME,
                        )));
                    }
                    // An empty frame carries nothing: read on (a read of
                    // zero bytes would be taken for the end of the stream).
                    this.frame = data;
                    this.read = 0;
                }
                Some(Ok(Message::Text(text))) if this.faults.text_as_binary => {
                    this.frame = text.into_bytes();
                    this.read = 0;
                }
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, TEXT_FRAME)))
                }
                // tungstenite queues the pong itself; neither carries MQTT.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)))
                | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed))
                | None => this.eof = true,
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl<S> AsyncWrite for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let ws = &mut self.ws;
        ready!(Pin::new(&mut *ws).poll_ready(cx)).map_err(to_io)?;
        let n = buf.len().min(MAX_FRAME);
        let payload = buf.get(..n).unwrap_or(buf).to_vec();
        Pin::new(&mut *ws)
            .start_send(Message::Binary(payload))
            .map_err(to_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    /// Sends a close frame (and what is still buffered before it).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(to_io)
    }
}

/// Whether a WebSocket upgrade request offers the `mqtt` subprotocol.
pub fn offers_mqtt(req: &Request) -> bool {
    req.headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

/// The accepting side's answer to an upgrade request: the `mqtt`
/// subprotocol selected, or 400 Bad Request when the client does not offer
/// it (MQTT-6.0.0-4).
// tungstenite's callback type fixes the error type, large as it is.
#[allow(clippy::result_large_err)]
pub fn select_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if !offers_mqtt(req) {
        let mut refusal =
            ErrorResponse::new(Some("offer the WebSocket subprotocol \"mqtt\"".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    resp.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(resp)
}

/// [`select_subprotocol`] that selects none: the upgrade is accepted
/// without the `mqtt` subprotocol (the deliberate fault of
/// [`WsFaults::no_subprotocol`]).
#[allow(clippy::result_large_err)]
pub fn select_no_subprotocol(req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
    let mut resp = select_subprotocol(req, resp)?;
    resp.headers_mut().remove("Sec-WebSocket-Protocol");
    Ok(resp)
}
