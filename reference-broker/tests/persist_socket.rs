//! `--persist DIR` over real sockets: what a broker acknowledged is on disk
//! before the acknowledgement arrives, and a new broker on the same directory
//! serves it; a corrupt or oversized state file stops start-up with a clear
//! error. Every wait has a deadline; nothing sleeps.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Running};
use mqtt_codec::{
    Connect, Disconnect, Packet, Properties, Property, Protocol, PubResponse, Publish, QoS,
};
use reference_broker::server::{self, persist, Shared};
use reference_broker::Config;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::time::timeout;

const PROMPT: Duration = Duration::from_secs(10);

async fn start(dir: &Path) -> Running {
    let config = Config {
        persist_dir: Some(dir.to_path_buf()),
        ..Config::default()
    };
    let shared: Arc<Shared> = Shared::open(config).expect("open the persisted broker");
    Running::serve(shared).await
}

/// Opens a connection with `c`; expects a successful CONNACK and returns its
/// session-present flag.
async fn connect(addr: SocketAddr, c: Connect) -> (Client, bool) {
    let (client, code, session_present) = Client::handshake(addr, c, PROMPT).await;
    assert_eq!(code, 0, "expected a successful CONNACK");
    (client, session_present)
}

impl Client {
    /// Ends the connection the normal way and waits for the broker to close it.
    async fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect {
            reason_code: 0,
            properties: Properties::new(),
        }))
        .await;
        let mut rest = Vec::new();
        let _ = timeout(PROMPT, self.stream.read_to_end(&mut rest)).await;
    }
}

fn persistent_v5(id: &str) -> Connect {
    let mut c = Connect {
        clean_start: false,
        keep_alive: 0,
        ..Connect::new(Protocol::V5, id)
    };
    c.properties.push(Property::SessionExpiryInterval(3600));
    c
}

fn publish(topic: &str, payload: &'static [u8], retain: bool, id: u16) -> Packet {
    Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        retain,
        topic: topic.into(),
        packet_id: id,
        payload: Bytes::from_static(payload),
        ..Publish::default()
    })
}

#[tokio::test]
async fn acknowledged_messages_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = start(dir.path()).await;

    let (mut sub, present) = connect(a.addr, persistent_v5("offline-sub")).await;
    assert!(!present);
    sub.subscribe("persist/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let (mut publ, _) = connect(a.addr, Connect::new(Protocol::V3_1_1, "publisher")).await;
    publ.send(&publish("persist/retained", b"kept", true, 1))
        .await;
    assert_eq!(publ.recv().await, Packet::PubAck(PubResponse::new(1)));
    publ.send(&publish("persist/queued", b"waiting", false, 2))
        .await;
    assert_eq!(publ.recv().await, Packet::PubAck(PubResponse::new(2)));
    // By the time PUBACK arrived, the message was on disk.
    let on_disk = persist::load(dir.path())
        .expect("readable")
        .expect("a state file");
    let queued = &on_disk
        .sessions
        .iter()
        .find(|s| s.client_id == "offline-sub")
        .expect("the session is on disk")
        .queue;
    assert_eq!(
        queued.len(),
        2,
        "both acknowledged messages are on disk before their PUBACK"
    );
    assert_eq!(on_disk.retained.len(), 1);
    publ.disconnect().await;
    a.stop_within(PROMPT).await;

    // A new broker on the same directory.
    let b = start(dir.path()).await;
    let (mut sub, present) = connect(b.addr, persistent_v5("offline-sub")).await;
    assert!(present, "the session survived the restart");
    let mut got = Vec::new();
    for _ in 0..2 {
        match sub.recv().await {
            Packet::Publish(p) => {
                assert_eq!(p.qos, QoS::AtLeastOnce);
                sub.send(&Packet::PubAck(PubResponse::new(p.packet_id)))
                    .await;
                got.push((p.topic.to_string(), p.payload));
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            ("persist/retained".to_string(), Bytes::from_static(b"kept")),
            ("persist/queued".to_string(), Bytes::from_static(b"waiting")),
        ]
    );
    // The retained message too.
    let (mut late, _) = connect(b.addr, Connect::new(Protocol::V5, "late")).await;
    late.subscribe("persist/retained", QoS::AtLeastOnce).await;
    match late.recv().await {
        Packet::Publish(p) => {
            assert!(p.retain);
            assert_eq!(&p.payload[..], b"kept");
        }
        other => panic!("expected the retained PUBLISH, got {other:?}"),
    }
    b.stop_within(PROMPT).await;
}

#[tokio::test]
async fn in_flight_message_redelivered_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = start(dir.path()).await;
    let (mut sub, _) = connect(a.addr, persistent_v5("slow-sub")).await;
    sub.subscribe("inflight/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = connect(a.addr, Connect::new(Protocol::V5, "pub")).await;
    publ.send(&publish("inflight/x", b"unacked", false, 5))
        .await;
    assert!(matches!(publ.recv().await, Packet::PubAck(r) if r.packet_id == 5));
    let first = match sub.recv().await {
        Packet::Publish(p) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    // The subscriber never acknowledges; the broker goes down.
    drop(sub);
    publ.disconnect().await;
    a.stop_within(PROMPT).await;

    let b = start(dir.path()).await;
    let (mut sub, present) = connect(b.addr, persistent_v5("slow-sub")).await;
    assert!(present);
    match sub.recv().await {
        Packet::Publish(p) => {
            assert!(p.dup, "re-sent with DUP");
            assert_eq!(p.packet_id, first.packet_id, "same packet identifier");
            assert_eq!(&p.payload[..], b"unacked");
        }
        other => panic!("expected the re-sent PUBLISH, got {other:?}"),
    }
    b.stop_within(PROMPT).await;
}

#[tokio::test]
async fn corrupt_or_oversized_state_file_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(persist::FILE);
    std::fs::write(&file, b"{\"format\":1,\"sessions\":[{\"client_id\":").expect("write");
    let config = Config {
        persist_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let e = Shared::open(config.clone())
        .err()
        .expect("a corrupt file is refused");
    assert!(
        e.contains(&file.display().to_string()) && e.contains("not a valid snapshot"),
        "{e}"
    );

    // server::run reports it as an error instead of serving.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let err = timeout(
        PROMPT,
        server::run(listener, config.clone(), std::future::pending::<()>()),
    )
    .await
    .expect("run returns at once")
    .expect_err("run refuses to start");
    assert!(err.to_string().contains("not a valid snapshot"), "{err}");

    // Larger than allowed: refused before anything is read (a sparse file).
    let f = std::fs::File::create(&file).expect("create");
    f.set_len(persist::MAX_FILE + 1).expect("set_len");
    let e = Shared::open(config.clone())
        .err()
        .expect("an oversized file is refused");
    assert!(e.contains("more than"), "{e}");

    // Valid JSON, wrong contents: the entry is named.
    std::fs::write(
        &file,
        br#"{"format":1,"next_assigned":1,"sessions":[{"client_id":"x","protocol":9,"expiry":10,"expires_at_ms":null,"user":null,"subscriptions":[],"inflight":[],"queue":[],"incoming_qos2":[],"next_packet_id":1}],"retained":[]}"#,
    )
    .expect("write");
    let e = Shared::open(config).err().expect("refused");
    assert!(
        e.contains("session \"x\"") && e.contains("protocol level 9"),
        "{e}"
    );
}

/// One broker per directory: a second one refuses to start while the first
/// holds the lock, and starts once the first is gone.
#[tokio::test]
async fn a_directory_serves_one_broker_at_a_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        persist_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let first = Shared::open(config.clone()).expect("the first broker starts");
    let e = Shared::open(config.clone())
        .err()
        .expect("a second broker on the same directory is refused");
    assert!(
        e.contains("in use by another broker") && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
    drop(first);
    let again = Shared::open(config).expect("starts once the first is gone");
    drop(again);

    // Serving lets go of the directory when it stops, though tasks of the
    // connections it closed may still hold the core for a moment.
    let a = start(dir.path()).await;
    let (mut open_client, _) = connect(a.addr, persistent_v5("stays")).await;
    a.stop_within(PROMPT).await;
    let b = start(dir.path()).await;
    assert_eq!(
        open_client.until_closed(PROMPT).await.len(),
        1,
        "DISCONNECT 0x8B"
    );
    b.stop_within(PROMPT).await;
}

/// The names of the journal files in `dir`.
fn journals(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read the directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("journal."))
        .collect()
}

#[tokio::test]
async fn the_journal_is_compacted_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        persist_dir: Some(dir.path().to_path_buf()),
        persist_compact_bytes: 4096,
        ..Config::default()
    };
    let a = Running::serve(Shared::open(config).expect("open")).await;
    // Start-up wrote a snapshot and began journal 1.
    assert_eq!(journals(dir.path()), ["journal.1"]);
    let (mut sub, _) = connect(a.addr, persistent_v5("compacted")).await;
    sub.subscribe("compact/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let (mut publ, _) = connect(a.addr, Connect::new(Protocol::V5, "pub")).await;
    for id in 1..=300u16 {
        publ.send(&publish("compact/x", b"a message to keep", false, id))
            .await;
        assert_eq!(publ.recv().await, Packet::PubAck(PubResponse::new(id)));
    }
    // Compacted on the way: a later journal, and only it.
    let names = journals(dir.path());
    let generation: u64 = match &names[..] {
        [one] => one["journal.".len()..].parse().expect("a number"),
        more => panic!("one journal expected, found {more:?}"),
    };
    assert!(generation > 1, "never compacted: {names:?}");
    // What a crash now would leave: the snapshot and its journal hold all 300.
    let on_disk = persist::load(dir.path())
        .expect("readable")
        .expect("a state file");
    let session = on_disk
        .sessions
        .iter()
        .find(|s| s.client_id == "compacted")
        .expect("the session is on disk");
    assert_eq!(session.queue.len(), 300);
    publ.disconnect().await;
    a.stop_within(PROMPT).await;
}

/// With the disk "behind" after every batch (a limit of one byte), no
/// connection is read until each write is done, and reading resumes after
/// it: a stream of QoS 1 messages still flows, every one acknowledged and
/// delivered.
#[tokio::test]
async fn connections_wait_while_the_disk_is_behind_and_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        persist_dir: Some(dir.path().to_path_buf()),
        persist_max_pending_bytes: 1,
        ..Config::default()
    };
    let a = Running::serve(Shared::open(config).expect("open")).await;
    let (mut sub, _) = connect(a.addr, persistent_v5("behind-sub")).await;
    sub.subscribe("behind/#", QoS::AtLeastOnce).await;
    let (mut publ, _) = connect(a.addr, Connect::new(Protocol::V5, "pub")).await;
    for id in 1..=50u16 {
        publ.send(&publish("behind/x", b"slowly", false, id)).await;
        assert_eq!(publ.recv().await, Packet::PubAck(PubResponse::new(id)));
        match sub.recv().await {
            Packet::Publish(p) => {
                sub.send(&Packet::PubAck(PubResponse::new(p.packet_id)))
                    .await
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    // The subscriber's task stopped reading while the last write was under
    // way and gets nothing more to send: only the catching up wakes it.
    sub.send(&Packet::PingReq).await;
    assert_eq!(sub.recv().await, Packet::PingResp);
    publ.disconnect().await;
    sub.disconnect().await;
    a.stop_within(PROMPT).await;
}
