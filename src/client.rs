//! The test client: one connection to the broker under test, speaking bytes
//! through the codec and keeping a log of everything exchanged.
//!
//! It is deliberately not an MQTT client library: it sends exactly what a
//! scenario says (valid or not) and reports exactly what came back, each read
//! bounded by a deadline. The [`Transport`] is TCP, TLS, WebSocket or
//! WebSocket over TLS.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use mqtt_codec::decode::frame_len;
use mqtt_codec::{DecodeError, DecodeOptions, Decoder, Packet, Protocol, Sender};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::DigitallySignedStruct;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{hex, packet};

/// Where the broker under test listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// The WebSocket path (`/mqtt`), for `ws` and `wss`.
    pub path: String,
    /// How to trust the server, for `mqtts` and `wss`.
    pub tls: TlsOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Mqtt,
    Mqtts,
    Ws,
    Wss,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

impl Target {
    /// `mqtt://host:port`, `mqtts://…`, `ws://host:port/mqtt`, `wss://…`;
    /// a bare `host:port` is `mqtt://`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "mqtt" | "tcp" => Scheme::Mqtt,
                    "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    other => {
                        return Err(format!(
                            "`{other}://` is not a target scheme; use mqtt://, mqtts://, ws:// or wss://"
                        ))
                    }
                };
                (scheme, rest)
            }
            None => (Scheme::Mqtt, url),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, ""),
        };
        let default_port = match scheme {
            Scheme::Mqtt => 1883,
            Scheme::Mqtts => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{url}`: an IPv6 address needs a closing `]`"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, url)?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p, url)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!(
                "`{url}` names no host; write e.g. mqtt://localhost:1883"
            ));
        }
        Ok(Target {
            scheme,
            host,
            port,
            path: if path.is_empty() && matches!(scheme, Scheme::Ws | Scheme::Wss) {
                "/mqtt".into()
            } else {
                path.to_string()
            },
            tls: TlsOptions::default(),
        })
    }
}

fn parse_port(p: &str, url: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("`{url}`: `{p}` is not a port number (1-65535)"))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{}://[{}]:{}{}",
                self.scheme.as_str(),
                self.host,
                self.port,
                self.path
            )
        } else {
            write!(
                f,
                "{}://{}:{}{}",
                self.scheme.as_str(),
                self.host,
                self.port,
                self.path
            )
        }
    }
}

/// How to trust a TLS server (`mqtts://`, `wss://`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust.
    pub ca: Option<PathBuf>,
    /// Accept any server certificate (testing only: no authentication).
    pub insecure: bool,
    /// A client certificate chain and its private key (PEM), for brokers
    /// that authenticate clients by certificate.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The byte stream under a connection: TCP, TLS, WebSocket or WebSocket over
/// TLS. Everything above reads and writes bytes through this; WebSocket frame
/// boundaries are not seen above it.
#[derive(Debug)]
pub enum Transport {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Ws(Box<WebSocketStream<TcpStream>>),
    Wss(Box<WebSocketStream<TlsStream>>),
}

impl Transport {
    /// Opens a connection, giving up at `deadline`.
    pub async fn connect(target: &Target, deadline: Instant) -> Result<Transport, String> {
        let fail = |what: String| format!("cannot connect to {target}: {what}");
        let opening = async {
            let addr = (target.host.as_str(), target.port);
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            match target.scheme {
                Scheme::Mqtt => Ok(Transport::Tcp(tcp)),
                Scheme::Mqtts => Ok(Transport::Tls(Box::new(tls(target, tcp).await?))),
                Scheme::Ws => Ok(Transport::Ws(Box::new(websocket(target, tcp).await?))),
                Scheme::Wss => {
                    let t = tls(target, tcp).await?;
                    Ok(Transport::Wss(Box::new(websocket(target, t).await?)))
                }
            }
        };
        match tokio::time::timeout_at(deadline, opening).await {
            Ok(r) => r,
            Err(_) => Err(fail("no answer before the deadline".into())),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Tcp(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Transport::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Transport::Ws(ws) => ws
                .send(Message::Binary(bytes.to_vec()))
                .await
                .map_err(ws_error),
            Transport::Wss(ws) => ws
                .send(Message::Binary(bytes.to_vec()))
                .await
                .map_err(ws_error),
        }
    }

    /// Writes `bytes` as one WebSocket text frame (MQTT-6.0.0-1 forbids
    /// them: scenarios send one on purpose). They must be UTF-8, and the
    /// transport a WebSocket.
    async fn write_text(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the bytes are not UTF-8, so no WebSocket text frame can carry them",
            )
        })?;
        match self {
            Transport::Ws(ws) => ws.send(Message::Text(text)).await.map_err(ws_error),
            Transport::Wss(ws) => ws.send(Message::Text(text)).await.map_err(ws_error),
            Transport::Tcp(_) | Transport::Tls(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a text frame needs a WebSocket connection (ws:// or wss://)",
            )),
        }
    }

    /// Reads what is there into `buf`; `Ok(0)` when the peer closed.
    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.read_buf(buf).await,
            Transport::Tls(s) => s.read_buf(buf).await,
            Transport::Ws(ws) => read_frames(ws, buf).await,
            Transport::Wss(ws) => read_frames(ws, buf).await,
        }
    }

    async fn shutdown(&mut self) {
        match self {
            Transport::Tcp(s) => {
                let _ = s.shutdown().await;
            }
            Transport::Tls(s) => {
                let _ = s.shutdown().await;
            }
            Transport::Ws(ws) => {
                let _ = ws.close(None).await;
            }
            Transport::Wss(ws) => {
                let _ = ws.close(None).await;
            }
        }
    }
}

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The payload of the next binary frame(s); a close is `Ok(0)`. MQTT over
/// WebSocket uses binary frames only (MQTT-6.0.0-1).
async fn read_frames<S>(ws: &mut WebSocketStream<S>, buf: &mut BytesMut) -> std::io::Result<usize>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(0),
            Some(Ok(Message::Binary(data))) if !data.is_empty() => {
                buf.extend_from_slice(&data);
                return Ok(data.len());
            }
            Some(Ok(Message::Text(_))) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the broker sent a text frame; MQTT travels in binary frames [MQTT-6.0.0-1]",
                ))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ws_error(e)),
        }
    }
}

/// How a connection error begins when the WebSocket handshake selected no
/// subprotocol `mqtt` (MQTT-6.0.0-4): the case fails on that statement.
pub const SUBPROTOCOL_REFUSED: &str = "no MQTT subprotocol";

async fn websocket<S>(target: &Target, stream: S) -> Result<WebSocketStream<S>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let url = target.to_string();
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("`{url}` is not a WebSocket URL: {e}"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| match e {
            // The server answered the upgrade but not with the subprotocol
            // offered: a verdict on the server, not a failure to connect.
            WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(why)) => format!(
                "{SUBPROTOCOL_REFUSED}: the WebSocket handshake of {target} did not select the subprotocol \"mqtt\" the client offered ({why}) [MQTT-6.0.0-4]"
            ),
            e => format!("cannot connect to {target}: the WebSocket handshake failed: {e}"),
        })?;
    Ok(ws)
}

async fn tls(target: &Target, tcp: TcpStream) -> Result<TlsStream, String> {
    let config = tls_config(&target.tls)?;
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| format!("`{}` cannot name a TLS server: {e}", target.host))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("cannot connect to {target}: the TLS handshake failed: {e}"))
}

/// A rustls client configuration from the options.
pub fn tls_config(o: &TlsOptions) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    if o.insecure {
        return client_auth(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
            o,
        );
    }
    let Some(ca) = &o.ca else {
        return Err("a TLS target needs --ca FILE (the PEM of the authority that signed the broker's certificate), or --insecure to skip verification".into());
    };
    let pem =
        std::fs::read(ca).map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: not a PEM certificate: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: unusable certificate: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no PEM certificate", ca.display()));
    }
    client_auth(builder.with_root_certificates(roots), o)
}

/// Finishes a client configuration with the client certificate, if any.
fn client_auth(
    b: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    o: &TlsOptions,
) -> Result<rustls::ClientConfig, String> {
    let Some((cert, key)) = &o.client_cert else {
        return Ok(b.with_no_client_auth());
    };
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let key_der = rustls::pki_types::PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
    b.with_client_auth_cert(chain, key_der)
        .map_err(|e| format!("the client certificate and key do not form a usable pair: {e}"))
}

/// `--insecure`: any certificate is accepted, but the handshake signatures
/// are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn other_version(p: Protocol) -> Protocol {
    if p.is_v5() {
        Protocol::V3_1_1
    } else {
        Protocol::V5
    }
}

/// Which way a logged packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// One line of the exchange log.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// When it happened (orders the logs of several clients).
    pub at: Instant,
    pub client: String,
    pub direction: Direction,
    /// The packet as JSON (`None` for bytes that do not decode).
    pub packet: Option<Value>,
    pub hex: String,
    /// A remark: a decode error, the connection closing, noise skipped…
    pub note: Option<String>,
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::Sent => "->",
            Direction::Received => "<-",
        };
        write!(f, "{} {arrow}", self.client)?;
        if let Some(p) = &self.packet {
            write!(f, " {p}")?;
        }
        if !self.hex.is_empty() {
            write!(f, " [{}]", self.hex)?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// What a read produced.
#[derive(Debug, Clone)]
pub enum Event {
    /// A packet and its bytes.
    Packet(Packet, Bytes),
    /// The peer closed the connection (or reset it).
    Closed(Option<String>),
    /// The peer sent bytes the codec refuses.
    Malformed(DecodeError, Bytes),
    /// Nothing before the deadline.
    Timeout,
}

/// Log entries kept per connection.
pub const LOG_LIMIT: usize = 2000;

/// One test connection.
#[derive(Debug)]
pub struct Connection {
    pub name: String,
    transport: Option<Transport>,
    decoder: Decoder,
    buf: BytesMut,
    pub protocol: Protocol,
    /// A CONNACK accepting the connection has arrived.
    pub connected: bool,
    /// Everything sent and received, in order.
    pub log: Vec<Exchange>,
}

impl Connection {
    /// Opens a connection for the client called `name`.
    pub async fn open(
        name: &str,
        target: &Target,
        protocol: Protocol,
        deadline: Instant,
    ) -> Result<Connection, String> {
        let transport = Transport::connect(target, deadline).await?;
        Ok(Connection {
            name: name.to_string(),
            transport: Some(transport),
            decoder: Decoder::new(DecodeOptions::new(protocol, Sender::Server)),
            buf: BytesMut::with_capacity(4096),
            protocol,
            connected: false,
            log: Vec::new(),
        })
    }

    pub fn is_open(&self) -> bool {
        self.transport.is_some()
    }

    /// Writes bytes in one WebSocket text frame, and logs them with a note.
    pub async fn send_text(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), String> {
        self.record(Exchange {
            at: Instant::now(),
            client: self.name.clone(),
            direction: Direction::Sent,
            packet: None,
            hex: hex::spaced(bytes),
            note: Some("in a WebSocket text frame".into()),
        });
        let Some(t) = self.transport.as_mut() else {
            return Err(format!("client `{}` is not connected", self.name));
        };
        match tokio::time::timeout(timeout, t.write_text(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Err(format!("client `{}`: {e}", self.name))
            }
            Ok(Err(e)) => Err(format!("client `{}`: writing failed: {e}", self.name)),
            Err(_) => Err(format!(
                "client `{}`: the broker did not take the bytes in time",
                self.name
            )),
        }
    }

    /// Writes bytes and logs them (decoded as the client's packet when they are one).
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), String> {
        let packet = {
            let b = Bytes::copy_from_slice(bytes);
            let opts = DecodeOptions::new(self.protocol, Sender::Client);
            match mqtt_codec::decode_bytes(&b, &opts) {
                Ok(mqtt_codec::Decoded::Packet { packet, .. }) => {
                    Some(packet::packet_to_json(&packet, self.protocol))
                }
                _ => None,
            }
        };
        self.record(Exchange {
            at: Instant::now(),
            client: self.name.clone(),
            direction: Direction::Sent,
            packet,
            hex: hex::spaced(bytes),
            note: None,
        });
        let Some(t) = self.transport.as_mut() else {
            return Err(format!("client `{}` is not connected", self.name));
        };
        match tokio::time::timeout(timeout, t.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("client `{}`: writing failed: {e}", self.name)),
            Err(_) => Err(format!(
                "client `{}`: the broker did not take the bytes in time",
                self.name
            )),
        }
    }

    /// Sets the protocol the received bytes are decoded in (after a CONNECT).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
        self.decoder.options.protocol = protocol;
    }

    /// The next packet, close or decode failure, or `Timeout` at `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> Event {
        loop {
            // A whole packet already buffered?
            if !self.buf.is_empty() {
                let raw_len = frame_len(&self.buf)
                    .unwrap_or(self.buf.len())
                    .min(self.buf.len());
                let raw = Bytes::copy_from_slice(self.buf.get(..raw_len).unwrap_or(&[]));
                match self.decoder.decode(&mut self.buf) {
                    Ok(Some(p)) => {
                        if matches!(&p, Packet::ConnAck(a) if a.code == 0) {
                            self.connected = true;
                        }
                        self.record(Exchange {
                            at: Instant::now(),
                            client: self.name.clone(),
                            direction: Direction::Received,
                            packet: Some(packet::packet_to_json(&p, self.protocol)),
                            hex: hex::spaced(&raw),
                            note: None,
                        });
                        return Event::Packet(p, raw);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // A server that did not recognise the CONNECT's version may
                        // answer in the other format: a CONNACK is tried in both.
                        if let Some(p) = self.connack_other_version(&raw) {
                            self.buf.clear();
                            self.record(Exchange {
                                at: Instant::now(),
                                client: self.name.clone(),
                                direction: Direction::Received,
                                packet: Some(packet::packet_to_json(&p, self.protocol)),
                                hex: hex::spaced(&raw),
                                note: Some(format!(
                                    "decoded as an MQTT {} CONNACK",
                                    other_version(self.protocol)
                                )),
                            });
                            return Event::Packet(p, raw);
                        }
                        self.record(Exchange {
                            at: Instant::now(),
                            client: self.name.clone(),
                            direction: Direction::Received,
                            packet: None,
                            hex: hex::spaced(&raw),
                            note: Some(format!("does not decode: {e}")),
                        });
                        self.buf.clear();
                        return Event::Malformed(e, raw);
                    }
                }
            }
            let Some(t) = self.transport.as_mut() else {
                return Event::Closed(Some("the connection was already closed".into()));
            };
            match tokio::time::timeout_at(deadline, t.read_buf(&mut self.buf)).await {
                Err(_) => return Event::Timeout,
                Ok(Ok(0)) => {
                    let note = if self.buf.is_empty() {
                        None
                    } else {
                        Some(format!(
                            "closed inside a packet: {} bytes pending",
                            self.buf.len()
                        ))
                    };
                    self.closed(note.clone());
                    return Event::Closed(note);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    let note = Some(format!("{e}"));
                    self.closed(note.clone());
                    return Event::Closed(note);
                }
            }
        }
    }

    fn connack_other_version(&self, raw: &Bytes) -> Option<Packet> {
        if self.connected || raw.first().map(|b| b >> 4) != Some(2) {
            return None;
        }
        let opts = DecodeOptions::new(other_version(self.protocol), Sender::Server);
        match mqtt_codec::decode_bytes(raw, &opts) {
            Ok(mqtt_codec::Decoded::Packet { packet, len }) if len == raw.len() => Some(packet),
            _ => None,
        }
    }

    fn closed(&mut self, note: Option<String>) {
        self.transport = None;
        self.record(Exchange {
            at: Instant::now(),
            client: self.name.clone(),
            direction: Direction::Received,
            packet: None,
            hex: String::new(),
            note: Some(match note {
                Some(n) => format!("connection closed: {n}"),
                None => "connection closed".into(),
            }),
        });
    }

    /// Appends to the log, which keeps the first [`LOG_LIMIT`] entries (a
    /// `#` subscription on a busy broker must not fill memory).
    fn record(&mut self, e: Exchange) {
        match self.log.len() {
            n if n < LOG_LIMIT => self.log.push(e),
            n if n == LOG_LIMIT => self.log.push(Exchange {
                packet: None,
                hex: String::new(),
                note: Some(format!("(log truncated after {LOG_LIMIT} entries)")),
                ..e
            }),
            _ => {}
        }
    }

    /// Notes something in the log (a skipped noise packet…).
    pub fn note(&mut self, note: String) {
        if let Some(last) = self.log.last_mut() {
            last.note = Some(note);
        }
    }

    /// Closes the socket without a DISCONNECT.
    pub async fn drop_connection(&mut self) {
        if let Some(mut t) = self.transport.take() {
            t.shutdown().await;
            self.record(Exchange {
                at: Instant::now(),
                client: self.name.clone(),
                direction: Direction::Sent,
                packet: None,
                hex: String::new(),
                note: Some("closed the socket".into()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("mqtt://localhost:1884").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port),
            (Scheme::Mqtt, "localhost", 1884)
        );
        let t = Target::parse("ws://example.com/mqtt").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.path.as_str()),
            (Scheme::Ws, 80, "/mqtt")
        );
        let t = Target::parse("127.0.0.1:1883").unwrap();
        assert_eq!(t.to_string(), "mqtt://127.0.0.1:1883");
        let t = Target::parse("mqtts://[::1]:8883").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8883));
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("mqtt://x:99999").is_err());
    }
}
