//! One byte stream whatever the transport, and the connecting side.
//!
//! [`Stream`] is TCP, TLS, WebSocket or WebSocket over TLS behind one
//! `AsyncRead + AsyncWrite`, so that the codec, the broker's connection task
//! and [`crate::Connection`] are written once. Plain TCP is held inline and
//! costs one match per poll; the TLS and WebSocket states (a rustls
//! connection, handshake and frame buffers: kilobytes) are boxed, so that a
//! broker holding many plain TCP connections does not pay for them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::tls::{self, TlsConfigError};
use crate::ws::{WsStream, SUBPROTOCOL};
use crate::{Scheme, Target};

/// TLS of either side over TCP.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// A connection's bytes, over whichever transport it came.
#[derive(Debug)]
pub struct Stream {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Ws(Box<WsStream<TcpStream>>),
    Wss(Box<WsStream<TlsStream>>),
}

impl Stream {
    /// Sends `bytes` in one WebSocket text frame (forbidden by MQTT-6.0.0-1,
    /// sent on purpose by tests): `InvalidInput` when they are not UTF-8 or
    /// the stream is not a WebSocket.
    pub async fn send_text(&mut self, bytes: &[u8]) -> io::Result<()> {
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the bytes are not UTF-8, so no WebSocket text frame can carry them",
            )
        })?;
        match &mut self.inner {
            Inner::Ws(ws) => ws.send_text(text).await,
            Inner::Wss(ws) => ws.send_text(text).await,
            Inner::Tcp(_) | Inner::Tls(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a text frame needs a WebSocket connection (ws:// or wss://)",
            )),
        }
    }

    pub(crate) fn tls(s: TlsStream) -> Stream {
        Stream {
            inner: Inner::Tls(Box::new(s)),
        }
    }

    pub(crate) fn ws(s: WsStream<TcpStream>) -> Stream {
        Stream {
            inner: Inner::Ws(Box::new(s)),
        }
    }

    pub(crate) fn wss(s: WsStream<TlsStream>) -> Stream {
        Stream {
            inner: Inner::Wss(Box::new(s)),
        }
    }

    /// How the bytes travel.
    pub fn scheme(&self) -> Scheme {
        match &self.inner {
            Inner::Tcp(_) => Scheme::Mqtt,
            Inner::Tls(_) => Scheme::Mqtts,
            Inner::Ws(_) => Scheme::Ws,
            Inner::Wss(_) => Scheme::Wss,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Tcp(s) => s,
            Inner::Tls(s) => s.get_ref().0,
            Inner::Ws(s) => s.get_ref(),
            Inner::Wss(s) => s.get_ref().get_ref().0,
        }
    }

    /// Ready when a read can make progress: for plain TCP, once the socket
    /// has bytes (or has ended), so that a caller can wait for input without
    /// holding a buffer; TLS and WebSocket keep decoded bytes of their own,
    /// which the socket does not show, so for them at once.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &self.inner {
            Inner::Tcp(s) => s.poll_read_ready(cx),
            Inner::Tls(_) | Inner::Ws(_) | Inner::Wss(_) => Poll::Ready(Ok(())),
        }
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().local_addr()
    }
}

impl From<TcpStream> for Stream {
    fn from(tcp: TcpStream) -> Stream {
        Stream {
            inner: Inner::Tcp(tcp),
        }
    }
}

/// Runs `$e` on whichever stream `$inner` holds, pinned.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.get_mut().inner {
            Inner::Tcp($s) => {
                let $s = Pin::new($s);
                $e
            }
            Inner::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            Inner::Ws($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
            Inner::Wss($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => s.poll_write(cx, buf))
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Tcp(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
            Inner::Ws(s) => s.is_write_vectored(),
            Inner::Wss(s) => s.is_write_vectored(),
        }
    }
}

/// Why a connection to a target could not be opened. Each names the target
/// (as `cannot connect to mqtt://…: …`) except the configuration errors,
/// which are about the options rather than the target.
#[derive(Debug)]
pub enum ConnectError {
    /// The TCP connection failed: refused, unreachable, unknown host…
    Io { target: String, error: io::Error },
    /// No connection (or handshake) before the deadline.
    TimedOut { target: String },
    /// The TLS handshake failed (an untrusted certificate, a TLS version
    /// or cipher the server does not offer…).
    Tls { target: String, error: io::Error },
    /// The WebSocket upgrade failed (a refused subprotocol, a wrong path…).
    WebSocket {
        target: String,
        error: tokio_tungstenite::tungstenite::Error,
    },
    /// The target cannot make a WebSocket request (an unusable path).
    BadUrl { url: String, reason: String },
    /// The TLS options do not make a configuration.
    TlsConfig(TlsConfigError),
}

impl ConnectError {
    /// The server answered the WebSocket upgrade without selecting the
    /// `mqtt` subprotocol the client offered: a verdict on the server
    /// (MQTT-6.0.0-4), not a failure to reach it.
    pub fn refused_subprotocol(&self) -> bool {
        use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
        matches!(
            self,
            ConnectError::WebSocket {
                error: WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)),
                ..
            }
        )
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io { target, error } => write!(f, "cannot connect to {target}: {error}"),
            ConnectError::TimedOut { target } => {
                write!(
                    f,
                    "cannot connect to {target}: no answer before the deadline"
                )
            }
            ConnectError::Tls { target, error } => write!(
                f,
                "cannot connect to {target}: the TLS handshake failed: {error}"
            ),
            ConnectError::WebSocket { target, error } => write!(
                f,
                "cannot connect to {target}: the WebSocket handshake failed: {error}"
            ),
            ConnectError::BadUrl { url, reason } => {
                write!(f, "`{url}` is not a WebSocket URL: {reason}")
            }
            ConnectError::TlsConfig(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Io { error, .. } | ConnectError::Tls { error, .. } => Some(error),
            ConnectError::WebSocket { error, .. } => Some(error),
            ConnectError::TlsConfig(e) => Some(e),
            ConnectError::TimedOut { .. } | ConnectError::BadUrl { .. } => None,
        }
    }
}

impl From<TlsConfigError> for ConnectError {
    fn from(e: TlsConfigError) -> ConnectError {
        ConnectError::TlsConfig(e)
    }
}

/// Opens a connection to `target` (TCP, then TLS and the WebSocket upgrade
/// as its scheme says), giving up at `deadline`. The TLS configuration is
/// checked before anything is sent, so that a bad CA file is reported as
/// such even when the target is down.
pub async fn connect(target: &Target, deadline: Instant) -> Result<Stream, ConnectError> {
    let tls = match target.scheme {
        Scheme::Mqtts | Scheme::Wss => Some((
            tokio_rustls::TlsConnector::from(Arc::new(tls::client_config(&target.tls)?)),
            tls::server_name(&target.host)?,
        )),
        Scheme::Mqtt | Scheme::Ws => None,
    };
    let opening = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|error| ConnectError::Io {
                target: target.to_string(),
                error,
            })?;
        // MQTT packets are small and answered one by one: Nagle's delay
        // would only add latency.
        let _ = tcp.set_nodelay(true);
        let Some((connector, name)) = tls else {
            return match target.scheme {
                Scheme::Ws => Ok(Stream::ws(websocket(target, tcp).await?)),
                _ => Ok(Stream::from(tcp)),
            };
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|error| ConnectError::Tls {
                target: target.to_string(),
                error,
            })?;
        let tls = tokio_rustls::TlsStream::Client(tls);
        match target.scheme {
            Scheme::Wss => Ok(Stream::wss(websocket(target, tls).await?)),
            _ => Ok(Stream::tls(tls)),
        }
    };
    // Boxed: the handshakes' state is large, and a caller holding this
    // future (in a task of its own) should not carry it once connected.
    match timeout_at(deadline, Box::pin(opening)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::TimedOut {
            target: target.to_string(),
        }),
    }
}

/// The WebSocket upgrade of the connecting side, offering the `mqtt`
/// subprotocol (MQTT-6.0.0-3).
async fn websocket<S>(target: &Target, stream: S) -> Result<WsStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let url = target.to_string();
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|error| ConnectError::WebSocket { target: url, error })?;
    Ok(WsStream::new(ws))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broker holds one per connection: the TLS and WebSocket states
    /// stay behind a pointer, so a plain TCP stream costs at most a tag.
    #[test]
    fn a_stream_is_a_tcp_stream_and_a_tag() {
        assert!(
            std::mem::size_of::<Stream>()
                <= std::mem::size_of::<TcpStream>() + std::mem::size_of::<usize>(),
            "{} bytes",
            std::mem::size_of::<Stream>()
        );
    }
}
