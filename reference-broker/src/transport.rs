//! The broker's listeners: TCP, TLS, WebSocket and secure WebSocket
//! (subprotocol `mqtt`), each accepted connection made a byte stream by
//! [`mqtt_net::Acceptor`] and served by [`server::handle_connection_from`].
//! The transports themselves live in `mqtt-net`, shared with the harness,
//! so the broker and the client that tests it read WebSocket frames and
//! check the subprotocol the same way.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

pub use mqtt_net::Acceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::server::{self, Shared};

/// A TLS acceptor from a PEM certificate chain and a PEM private key.
pub fn tls_acceptor(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<tokio_rustls::TlsAcceptor, mqtt_net::TlsConfigError> {
    mqtt_net::tls::acceptor(cert_pem, key_pem)
}

/// A whole broker on one listener of any transport (as `server::run` is
/// for TCP): its timers, the accept loop until `shutdown`, then every
/// connection closed and what persists written.
pub async fn run(
    listener: TcpListener,
    acceptor: Acceptor,
    config: crate::Config,
    shutdown: impl Future,
) -> io::Result<()> {
    let shared = Shared::open(config).map_err(io::Error::other)?;
    let timers = tokio::spawn(server::run_timers(shared.clone()));
    let result = serve(listener, acceptor, shared.clone(), shutdown).await;
    if !shared.close_all(Duration::from_secs(5)).await {
        tracing::warn!("connections still open after the shutdown deadline");
    }
    timers.abort();
    shared.release_persistence();
    result
}

/// Serves connections accepted on `listener` through `acceptor` until
/// `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    acceptor: Acceptor,
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
                let acceptor = acceptor.clone();
                tokio::spawn(async move { accept(stream, acceptor, shared).await });
            }
        }
    }
}

async fn accept(tcp: TcpStream, acceptor: Acceptor, shared: Arc<Shared>) {
    // The handshakes count against the time allowed before CONNECT: one
    // deadline from the accept, for TLS, WebSocket and CONNECT together.
    let accepted = Instant::now();
    let deadline = accepted + shared.connect_timeout();
    let faults = shared.ws_faults();
    let stream = match acceptor.accept_with(tcp, deadline, faults).await {
        Ok(stream) => stream,
        Err(e) => {
            let scheme = acceptor.scheme().as_str();
            tracing::debug!(error = %e, scheme, "handshake failed");
            return;
        }
    };
    // Served outside the `match` and with the acceptor gone, so that the
    // task of an idle connection keeps neither the handshake's result nor
    // the acceptor beside the connection's own state.
    drop(acceptor);
    server::handle_connection_from(shared, stream, accepted).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each connection's task is allocated at the size of its future: the
    /// accept and the handshakes add to it only a few words beyond what
    /// serving the stream takes (the handshake state, the acceptor and the
    /// handshake's result are boxed or gone by then).
    #[tokio::test]
    async fn accepting_adds_little_to_a_connection_task() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (tcp, _) = listener.accept().await.expect("accept");
        let shared = Shared::new(crate::Config::default());
        let serving = std::mem::size_of_val(&server::handle_connection_from(
            shared.clone(),
            mqtt_net::Stream::from(TcpStream::connect(addr).await.expect("connect")),
            Instant::now(),
        ));
        let task = std::mem::size_of_val(&accept(tcp, Acceptor::Tcp, shared));
        assert!(task <= serving + 128, "{task} bytes to serve in {serving}");
    }
}
