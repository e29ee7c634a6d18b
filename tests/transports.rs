//! The runner over each transport the reference broker serves: TLS (with a
//! CA file, and with `insecure`), WebSocket and secure WebSocket; and a TLS
//! target whose certificate is not trusted is an error, not a failure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mqtt_harness::net::{Target, TlsOptions};
use mqtt_harness::results::{RunReport, Status};
use mqtt_harness::run::{self as runner, RunOptions};
use mqtt_harness::scenario::{self, Scenario};
use reference_broker::server::{self, Shared};
use reference_broker::transport::{self, Acceptor};
use tokio::sync::oneshot;

fn ping() -> Vec<Scenario> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let s = scenario::load_paths(&[root.join("scenarios/shared/3.12-pingreq/pingresp.yaml")])
        .expect("the scenario parses");
    assert_eq!(s.len(), 1);
    s
}

struct Broker {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn broker(acceptor: Acceptor) -> Broker {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shared: Arc<Shared> = Shared::new(reference_broker::Config::default());
    tokio::spawn(server::run_timers(shared.clone()));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(transport::serve(listener, acceptor, shared, async move {
        let _ = rx.await;
    }));
    Broker {
        port,
        stop: Some(tx),
    }
}

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

async fn run_against(url: &str, tls: TlsOptions) -> RunReport {
    let mut target = Target::parse(url).expect("a target");
    target.tls = tls;
    let opts = RunOptions {
        step_timeout: Duration::from_secs(3),
        ..RunOptions::new(target)
    };
    runner::run(ping(), &opts, |_| {}).await
}

fn statuses(r: &RunReport) -> Vec<(String, Status, String)> {
    r.cases
        .iter()
        .map(|c| {
            (
                c.protocol.to_string(),
                c.status,
                c.message.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn all_pass(r: &RunReport) {
    assert_eq!(r.cases.len(), 3);
    assert!(
        r.cases.iter().all(|c| c.status == Status::Pass),
        "{:?}",
        statuses(r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtts_with_a_ca_file_and_with_insecure() {
    let (cert, key) = certificate();
    let acceptor = transport::tls_acceptor(cert.as_bytes(), key.as_bytes()).expect("an acceptor");
    let b = broker(Acceptor::Tls(acceptor)).await;
    let ca = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ca-{}.pem", b.port));
    std::fs::write(&ca, &cert).expect("write the CA file");
    let url = format!("mqtts://localhost:{}", b.port);

    all_pass(
        &run_against(
            &url,
            TlsOptions {
                ca: Some(ca),
                insecure: false,
                ..TlsOptions::default()
            },
        )
        .await,
    );
    all_pass(
        &run_against(
            &url,
            TlsOptions {
                ca: None,
                insecure: true,
                ..TlsOptions::default()
            },
        )
        .await,
    );

    // Another certificate as the CA: the broker's is not trusted.
    let (other, _) = certificate();
    let wrong = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("other-{}.pem", b.port));
    std::fs::write(&wrong, other).expect("write the CA file");
    let r = run_against(
        &url,
        TlsOptions {
            ca: Some(wrong),
            insecure: false,
            ..TlsOptions::default()
        },
    )
    .await;
    for (p, status, message) in statuses(&r) {
        assert_eq!(status, Status::Error, "{p}: {message}");
        assert!(message.contains("TLS handshake failed"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ws_and_wss() {
    let b = broker(Acceptor::Ws).await;
    all_pass(
        &run_against(
            &format!("ws://127.0.0.1:{}/mqtt", b.port),
            TlsOptions::default(),
        )
        .await,
    );

    let (cert, key) = certificate();
    let acceptor = transport::tls_acceptor(cert.as_bytes(), key.as_bytes()).expect("an acceptor");
    let b = broker(Acceptor::Wss(acceptor)).await;
    let tls = TlsOptions {
        ca: None,
        insecure: true,
        ..TlsOptions::default()
    };
    all_pass(&run_against(&format!("wss://localhost:{}/mqtt", b.port), tls).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtts_with_a_client_certificate() {
    use std::sync::Arc as A;
    // A CA, a client certificate it signs, and a broker listener that
    // refuses clients without one.
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("the CA");
    let client_key = rcgen::KeyPair::generate().expect("a key");
    let client = rcgen::CertificateParams::new(vec!["harness".to_string()])
        .expect("params")
        .signed_by(&client_key, &ca, &ca_key)
        .expect("the client certificate");
    let (server_cert, server_key) = certificate();

    let provider = A::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).expect("the CA as a root");
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        A::new(roots),
        provider.clone(),
    )
    .build()
    .expect("a client verifier");
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(server_cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("the server chain");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(server_key.as_bytes())
        .expect("the server key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("a server config");
    let b = broker(Acceptor::Tls(tokio_rustls::TlsAcceptor::from(A::new(
        config,
    ))))
    .await;
    let url = format!("mqtts://localhost:{}", b.port);

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cert_path = dir.join(format!("client-{}.pem", b.port));
    let key_path = dir.join(format!("client-{}.key", b.port));
    std::fs::write(&cert_path, client.pem()).expect("write the client certificate");
    std::fs::write(&key_path, client_key.serialize_pem()).expect("write the client key");

    // With the certificate: every case passes.
    all_pass(
        &run_against(
            &url,
            TlsOptions {
                insecure: true,
                client_cert: Some((cert_path, key_path)),
                ..TlsOptions::default()
            },
        )
        .await,
    );
    // Without it the broker refuses the handshake: no verdict, an error.
    let r = run_against(
        &url,
        TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        },
    )
    .await;
    for (p, status, message) in statuses(&r) {
        assert_eq!(status, Status::Error, "{p}: {message}");
    }
}
