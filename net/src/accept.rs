//! The accepting side: from an accepted TCP connection to a [`Stream`], doing
//! the TLS handshake and the WebSocket upgrade a listener asks for.
//!
//! The caller (the broker's listener, a proxy) owns the `TcpListener` and
//! the deadline: the handshakes count against the time a client has to send
//! CONNECT, so the one deadline taken at the accept covers them all.

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::stream::{Stream, TlsStream};
use crate::ws::{self, WsFaults, WsStream};
use crate::Scheme;

/// How a listener speaks.
#[derive(Clone)]
pub enum Acceptor {
    Tcp,
    Tls(TlsAcceptor),
    Ws,
    Wss(TlsAcceptor),
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The TLS acceptor holds keys: name the scheme only.
        write!(f, "Acceptor({})", self.scheme().as_str())
    }
}

/// Why an accepted connection did not become a stream.
#[derive(Debug)]
pub enum AcceptError {
    /// The handshakes did not finish before the deadline.
    TimedOut,
    /// The TLS handshake failed.
    Tls(io::Error),
    /// The client did not offer the `mqtt` subprotocol (MQTT-6.0.0-4); it
    /// was answered 400 Bad Request.
    NoMqttSubprotocol,
    /// The WebSocket upgrade failed otherwise (not an upgrade request…).
    /// Boxed: tungstenite's error is large, and a listener's task holds
    /// this result while it decides what to do.
    WebSocket(Box<WsError>),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::TimedOut => {
                f.write_str("the handshake did not finish before the deadline")
            }
            AcceptError::Tls(e) => write!(f, "the TLS handshake failed: {e}"),
            AcceptError::NoMqttSubprotocol => f.write_str(
                "the WebSocket upgrade did not offer the subprotocol \"mqtt\" [MQTT-6.0.0-4]",
            ),
            AcceptError::WebSocket(e) => write!(f, "the WebSocket handshake failed: {e}"),
        }
    }
}

impl std::error::Error for AcceptError {}

impl Acceptor {
    /// The scheme clients use to reach this listener.
    pub fn scheme(&self) -> Scheme {
        match self {
            Acceptor::Tcp => Scheme::Mqtt,
            Acceptor::Tls(_) => Scheme::Mqtts,
            Acceptor::Ws => Scheme::Ws,
            Acceptor::Wss(_) => Scheme::Wss,
        }
    }

    /// Turns an accepted connection into a stream, the handshakes finished
    /// by `deadline`. Plain TCP is returned at once, without an allocation.
    pub async fn accept(&self, tcp: TcpStream, deadline: Instant) -> Result<Stream, AcceptError> {
        self.accept_with(tcp, deadline, WsFaults::default()).await
    }

    /// [`Acceptor::accept`], a WebSocket read and answered with deliberate
    /// `faults` (a broker breaking section 6 on purpose).
    pub async fn accept_with(
        &self,
        tcp: TcpStream,
        deadline: Instant,
        faults: WsFaults,
    ) -> Result<Stream, AcceptError> {
        match self {
            Acceptor::Tcp => Ok(Stream::from(tcp)),
            // Boxed, timer included: the handshake state is kilobytes, and a
            // task that accepts and then serves a connection keeps room for
            // this future while it serves, plain TCP connections too.
            other => Box::pin(other.handshake(tcp, deadline, faults)).await,
        }
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        deadline: Instant,
        faults: WsFaults,
    ) -> Result<Stream, AcceptError> {
        let handshake = async {
            match self {
                Acceptor::Tcp => Ok(Stream::from(tcp)),
                Acceptor::Tls(a) => Ok(Stream::tls(tls(a, tcp).await?)),
                Acceptor::Ws => Ok(Stream::ws(websocket(tcp, faults).await?)),
                Acceptor::Wss(a) => Ok(Stream::wss(websocket(tls(a, tcp).await?, faults).await?)),
            }
        };
        match timeout_at(deadline, handshake).await {
            Ok(r) => r,
            Err(_) => Err(AcceptError::TimedOut),
        }
    }
}

async fn tls(acceptor: &TlsAcceptor, tcp: TcpStream) -> Result<TlsStream, AcceptError> {
    let s = acceptor.accept(tcp).await.map_err(AcceptError::Tls)?;
    Ok(tokio_rustls::TlsStream::Server(s))
}

async fn websocket<S>(stream: S, faults: WsFaults) -> Result<WsStream<S>, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let upgraded = if faults.no_subprotocol {
        tokio_tungstenite::accept_hdr_async(stream, ws::select_no_subprotocol).await
    } else {
        tokio_tungstenite::accept_hdr_async(stream, ws::select_subprotocol).await
    };
    match upgraded {
        Ok(ws) => Ok(WsStream::with_faults(ws, faults)),
        // The server side answers with an HTTP error only where the callback
        // refused the request, and it refuses only a missing subprotocol.
        Err(WsError::Http(_)) => Err(AcceptError::NoMqttSubprotocol),
        Err(e) => Err(AcceptError::WebSocket(Box::new(e))),
    }
}
