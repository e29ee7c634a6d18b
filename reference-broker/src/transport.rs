//! Transports: TCP, TLS (rustls), WebSocket and secure WebSocket (subprotocol
//! `mqtt`). Each delivers a byte stream to [`server::handle_connection`];
//! WebSocket frames are bridged through an in-memory pipe, so the MQTT layer
//! never sees frame boundaries (MQTT-6.0.0-2).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;

use crate::server::{self, Shared};
use mqtt_codec::decode::frame_len;

/// How a listener speaks.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    Tls(TlsAcceptor),
    Ws,
    Wss(TlsAcceptor),
}

impl Transport {
    pub fn scheme(&self) -> &'static str {
        match self {
            Transport::Tcp => "mqtt",
            Transport::Tls(_) => "mqtts",
            Transport::Ws => "ws",
            Transport::Wss(_) => "wss",
        }
    }
}

/// Builds a TLS acceptor from a PEM certificate chain and a PEM private key.
pub fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read the certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no PEM certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("cannot read the private key PEM: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not form a usable pair: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves MQTT over `transport` on `listener` with a broker of its own
/// (what [`server::run`] is for TCP), until `shutdown` resolves: then every
/// connection is ended and what is not yet persisted is written.
pub async fn run(
    listener: TcpListener,
    transport: Transport,
    config: crate::Config,
    shutdown: impl Future,
) -> io::Result<()> {
    let shared = Shared::open(config).map_err(io::Error::other)?;
    let timers = tokio::spawn(server::run_timers(shared.clone()));
    let result = serve(listener, transport, shared.clone(), shutdown).await;
    if !shared.close_all(Duration::from_secs(5)).await {
        tracing::warn!("connections still open after the shutdown deadline");
    }
    timers.abort();
    shared.release_persistence();
    result
}

/// Serves `transport` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    transport: Transport,
    shared: Arc<Shared>,
    shutdown: impl Future,
) -> io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let transport = transport.clone();
                tokio::spawn(async move { accept(stream, transport, shared).await });
            }
        }
    }
}

async fn accept(stream: tokio::net::TcpStream, transport: Transport, shared: Arc<Shared>) {
    // The handshakes count against the time allowed before CONNECT: one
    // deadline from the accept, for TLS, WebSocket and CONNECT together.
    let accepted = Instant::now();
    let deadline = accepted + shared.connect_timeout();
    // A task is as large as its largest state: TLS and WebSocket state (a
    // rustls connection, handshake buffers) is boxed so that each plain TCP
    // connection does not carry ~14 KiB it never uses.
    match transport {
        Transport::Tcp => server::handle_connection_from(shared, stream, accepted).await,
        Transport::Tls(acceptor) => {
            Box::pin(async move {
                if let Ok(Ok(tls)) = timeout_at(deadline, acceptor.accept(stream)).await {
                    server::handle_connection_from(shared, tls, accepted).await;
                }
            })
            .await
        }
        Transport::Ws => Box::pin(websocket(stream, shared, accepted, deadline)).await,
        Transport::Wss(acceptor) => {
            Box::pin(async move {
                if let Ok(Ok(tls)) = timeout_at(deadline, acceptor.accept(stream)).await {
                    websocket(tls, shared, accepted, deadline).await;
                }
            })
            .await
        }
    }
}

/// Picks the `mqtt` subprotocol (MQTT-6.0.0-4) or refuses the upgrade; the
/// violation accepts the upgrade without naming a subprotocol.
#[allow(clippy::result_large_err)]
fn select_subprotocol(
    req: &Request,
    mut resp: Response,
    violate: bool,
) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("mqtt"));
    if !offered {
        let mut refusal =
            ErrorResponse::new(Some("offer the WebSocket subprotocol \"mqtt\"".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    if !violate {
        resp.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    }
    Ok(resp)
}

/// Whether a binary frame ends on an MQTT packet boundary, given `partial`,
/// the bytes of a packet the frames before it left unfinished (kept for the
/// MQTT-6.0.0-2 violation, which assumes packets never span frames).
fn ends_on_boundary(partial: &mut Vec<u8>, frame: &[u8]) -> bool {
    partial.extend_from_slice(frame);
    let mut at = 0;
    while let Some(n) = partial.get(at..).and_then(frame_len) {
        if at + n > partial.len() {
            break;
        }
        at += n;
    }
    partial.drain(..at);
    partial.is_empty()
}

async fn websocket<S>(stream: S, shared: Arc<Shared>, accepted: Instant, deadline: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let no_subprotocol = shared.breaks("MQTT-6.0.0-4");
    // The handshake callback's error is tungstenite's HTTP response, large by design.
    #[allow(clippy::result_large_err)]
    let Ok(Ok(ws)) = timeout_at(
        deadline,
        tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp| {
            select_subprotocol(req, resp, no_subprotocol)
        }),
    )
    .await
    else {
        return;
    };
    // Deliberate violations of the framing rules, read once per connection.
    let text_as_binary = shared.breaks("MQTT-6.0.0-1");
    let aligned_only = shared.breaks("MQTT-6.0.0-2");
    let mut partial = Vec::new();
    let (mqtt_side, bridge_side) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(server::handle_connection_from(shared, mqtt_side, accepted));
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut from_broker, mut to_broker) = tokio::io::split(bridge_side);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            frame = ws_rx.next() => match frame {
                Some(Ok(Message::Binary(data))) => {
                    // MQTT-6.0.0-2: packets need not align with frames; the
                    // violation closes on a frame that ends inside one.
                    if aligned_only && !ends_on_boundary(&mut partial, &data) {
                        break;
                    }
                    if to_broker.write_all(&data).await.is_err() {
                        break;
                    }
                }
                // MQTT-6.0.0-1: the violation takes a text frame's bytes as MQTT.
                Some(Ok(Message::Text(text))) if text_as_binary => {
                    if to_broker.write_all(text.as_bytes()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                // MQTT-6.0.0-1: anything but binary data frames closes the connection.
                Some(Ok(Message::Text(_) | Message::Frame(_) | Message::Close(_))) | Some(Err(_)) | None => break,
            },
            read = from_broker.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = buf.get(..n).unwrap_or(&[]).to_vec();
                    if ws_tx.send(Message::Binary(chunk)).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = to_broker.shutdown().await;
    drop(to_broker);
    drop(from_broker);
    let _ = tokio::time::timeout(Duration::from_secs(5), ws_tx.close()).await;
    let _ = session.await;
}
