//! mqtt-net: the one network layer of mqtt-harness and its reference broker.
//!
//! Every tool that opens or accepts MQTT connections (the scenario runner,
//! probe, pub/sub, the proxy, the broker's listeners) goes through here, so
//! that the four transports behave the same everywhere and are tested once.
//! No MQTT is parsed here: packets go through `mqtt_codec`.
//!
//! The layers, from the socket up:
//!
//! - [`Target`]: where to connect (`mqtt://`, `mqtts://`, `ws://…/mqtt`,
//!   `wss://`) and how to trust a TLS server ([`TlsOptions`]);
//! - [`tls`]: rustls configurations for both sides;
//! - [`Stream`]: one `AsyncRead + AsyncWrite` byte stream whatever the
//!   transport; WebSocket is an adapter ([`ws::WsStream`]) that hides frames;
//! - [`connect`] opens a [`Stream`] to a target; an [`Acceptor`] makes one of
//!   an accepted TCP connection (TLS handshake, WebSocket upgrade);
//! - [`Connection`]: packets over a stream through the codec, each wait
//!   bounded by a deadline, with a typed log ([`LogEntry`]).
#![forbid(unsafe_code)]

mod accept;
mod connection;
mod stream;
mod target;
pub mod tls;
pub mod ws;

pub use accept::{AcceptError, Acceptor};
pub use connection::{Connection, Direction, Event, LogEntry, SendError, LOG_LIMIT};
pub use stream::{connect, ConnectError, Stream, TlsStream};
pub use target::{Scheme, Target, TlsOptions};
pub use tls::TlsConfigError;
