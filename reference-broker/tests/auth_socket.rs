//! Authentication over real sockets: a password file and an ACL file written
//! to a temporary directory and loaded as `--password-file` / `--acl-file`
//! would be, raw MQTT clients, and `mosquitto_pub -u -P` (mosquitto-clients,
//! installed by CI). Every wait has a deadline; nothing sleeps.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::{tool, Client};
use mqtt_codec::reason;
use mqtt_codec::{Connect, Packet, Protocol, QoS};
use reference_broker::auth::{hash_line, Auth};
use reference_broker::{server, Config};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::time::timeout;

const PROMPT: Duration = Duration::from_secs(10);

/// CONNECT with credentials; returns the client and the CONNACK code.
async fn login(
    addr: SocketAddr,
    protocol: Protocol,
    id: &str,
    user: Option<&str>,
    pw: Option<&str>,
) -> (Client, u8) {
    let connect = Connect {
        username: user.map(Into::into),
        password: pw.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        ..Connect::new(protocol, id)
    };
    let (c, code, _) = Client::handshake(addr, connect, PROMPT).await;
    (c, code)
}

/// Writes the files, loads them as the CLI does, and serves on port 0.
async fn start(dir: &std::path::Path) -> (SocketAddr, oneshot::Sender<()>) {
    let passwords = dir.join("passwords");
    let acl = dir.join("acl");
    let lines = [
        "# made with reference-broker --hash-password".to_string(),
        hash_line("alice", b"wonderland", 4096, b"0123456789abcdef"),
        hash_line("bob", b"builder", 4096, b"fedcba9876543210"),
    ];
    std::fs::write(&passwords, lines.join("\n") + "\n").expect("write the password file");
    std::fs::write(
        &acl,
        "user alice\ntopic readwrite alice/#\nuser bob\ntopic read alice/#\n",
    )
    .expect("write the ACL file");
    let auth = Auth::load(passwords.to_str(), acl.to_str(), None).expect("load the files");
    let config = Config {
        auth,
        ..Config::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server::run(listener, config, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

#[tokio::test]
async fn password_file_over_tcp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (addr, _stop) = start(dir.path()).await;
    let (_, code) = login(addr, Protocol::V5, "a", Some("alice"), Some("wonderland")).await;
    assert_eq!(code, 0);
    let (_, code) = login(addr, Protocol::V5, "a", Some("alice"), Some("nope")).await;
    assert_eq!(code, reason::BAD_USER_NAME_OR_PASSWORD);
    let (_, code) = login(addr, Protocol::V3_1_1, "a", Some("alice"), Some("nope")).await;
    assert_eq!(code, reason::v3::BAD_USER_NAME_OR_PASSWORD);
    // A password file without allow_anonymous refuses anonymous clients.
    let (_, code) = login(addr, Protocol::V5, "anon", None, None).await;
    assert_eq!(code, reason::NOT_AUTHORIZED);
    let (_, code) = login(addr, Protocol::V3_1_1, "anon", None, None).await;
    assert_eq!(code, reason::v3::NOT_AUTHORIZED);
}

#[tokio::test]
async fn load_errors_name_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pw");
    std::fs::write(&path, "alice:$pbkdf2-sha256$4096$c2FsdA==$c2FsdA==\n").expect("write");
    let e = Auth::load(path.to_str(), None, None).unwrap_err();
    assert!(
        e.contains(&format!("{}:1: ", path.display())) && e.contains("32 bytes"),
        "{e}"
    );
    let e = Auth::load(Some("/nonexistent/pw"), None, None).unwrap_err();
    assert!(e.contains("/nonexistent/pw"), "{e}");
}

#[tokio::test]
async fn mosquitto_pub_with_user_and_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (addr, _stop) = start(dir.path()).await;
    // bob may read alice/#: he watches what mosquitto_pub sends as alice.
    let (mut bob, code) = login(addr, Protocol::V5, "bob", Some("bob"), Some("builder")).await;
    assert_eq!(code, 0);
    bob.subscribe("alice/#", QoS::AtLeastOnce).await;

    let run = |version: &'static str, password: &'static str, topic: String| {
        let mut cmd = Command::new(tool("mosquitto_pub"));
        cmd.args([
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-V",
            version,
        ])
        .args([
            "-i",
            &format!("pub-{version}"),
            "-u",
            "alice",
            "-P",
            password,
        ])
        .args(["-t", &topic, "-m", version, "-q", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        async move {
            timeout(PROMPT, cmd.output())
                .await
                .expect("mosquitto_pub finishes")
                .expect("run mosquitto_pub")
        }
    };
    for version in ["mqttv311", "mqttv5"] {
        let out = run(version, "wonderland", format!("alice/{version}")).await;
        assert!(
            out.status.success(),
            "{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        match bob.recv().await {
            Packet::Publish(p) => {
                assert_eq!(&*p.topic, format!("alice/{version}"));
                assert_eq!(&p.payload[..], version.as_bytes());
                if p.qos != QoS::AtMostOnce {
                    bob.send(&Packet::PubAck(mqtt_codec::PubResponse::new(p.packet_id)))
                        .await;
                }
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
        let out = run(version, "wrong", format!("alice/{version}")).await;
        assert!(
            !out.status.success(),
            "{version}: a wrong password must fail"
        );
    }
}
