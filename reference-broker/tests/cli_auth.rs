//! The `reference-broker` binary: `--hash-password`, `--password-file`,
//! `--acl-file`, `--persist` and the matching config-file keys.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{Connect, Protocol};
use reference_broker::auth::{Auth, PasswordFile, Start};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(15);

fn broker() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reference-broker"));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

async fn run(mut cmd: Command, stdin: &[u8]) -> std::process::Output {
    let mut child = cmd.spawn().expect("start reference-broker");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("reference-broker exits in time")
        .expect("wait")
}

/// Starts the binary with `--listen 127.0.0.1:0 <flag> <path>` and expects it
/// to stop with exit code 2; returns what it wrote to stderr.
async fn refused_start(flag: &str, path: &Path) -> String {
    let mut cmd = broker();
    cmd.args(["--listen", "127.0.0.1:0", flag]).arg(path);
    let out = run(cmd, b"").await;
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first line `child` prints on stdout, and the rest of its stdout (kept
/// open so that the child can go on writing).
async fn first_line(child: &mut Child) -> (String, Lines<BufReader<ChildStdout>>) {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = timeout(DEADLINE, lines.next_line())
        .await
        .expect("a line in time")
        .expect("read")
        .unwrap_or_default();
    (line, lines)
}

#[tokio::test]
async fn hash_password_makes_a_working_line() {
    let mut cmd = broker();
    cmd.args(["--hash-password", "alice", "--iterations", "4096"]);
    let out = run(cmd, b"s3cret\n").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(line.starts_with("alice:$pbkdf2-sha256$4096$"), "{line}");
    let file = PasswordFile::parse("out", &line).expect("the line parses");
    let auth = Auth::new(Some(file), None, false).expect("auth");
    let login = |pw: &'static str| Connect {
        username: Some("alice".into()),
        password: Some(Bytes::from_static(pw.as_bytes())),
        ..Connect::new(Protocol::V5, "c")
    };
    assert!(matches!(auth.start(&login("s3cret")), Start::Accept { .. }));
    assert!(matches!(
        auth.start(&login("s3cret\n")),
        Start::Refuse { .. }
    ));

    let mut cmd = broker();
    cmd.args(["--hash-password", "alice"]);
    let out = run(cmd, b"").await;
    assert_eq!(out.status.code(), Some(2), "an empty password is refused");
}

#[tokio::test]
async fn bad_files_stop_start_up_with_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "# users\nalice:secret\n").expect("write");
    let err = refused_start("--password-file", &pw).await;
    assert!(err.contains(&format!("{}:2: ", pw.display())), "{err}");

    let acl = dir.path().join("acl");
    std::fs::write(&acl, "user a\ntopic read\n").expect("write");
    let err = refused_start("--acl-file", &acl).await;
    assert!(err.contains(&format!("{}:2: ", acl.display())), "{err}");

    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    std::fs::write(state.join("state.json"), "not json").expect("write");
    let err = refused_start("--persist", &state).await;
    assert!(
        err.contains("state.json") && err.contains("not a valid snapshot"),
        "{err}"
    );
}

#[tokio::test]
async fn config_file_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = dir.path().join("pw");
    std::fs::write(
        &pw,
        reference_broker::auth::hash_line("u", b"p", 4096, b"salt1234"),
    )
    .expect("write");
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "pattern readwrite %u/#\n").expect("write");
    let state = dir.path().join("state");
    let config = dir.path().join("broker.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners: [{{ address: \"127.0.0.1:0\" }}]\npassword_file: {:?}\nacl_file: {:?}\nallow_anonymous: true\npersist_dir: {:?}\n",
            pw.display().to_string(),
            acl.display().to_string(),
            state.display().to_string()
        ),
    )
    .expect("write");
    let mut cmd = broker();
    cmd.arg("--config").arg(&config);
    let mut child = cmd.spawn().expect("start");
    let (line, _stdout) = first_line(&mut child).await;
    assert!(line.contains("listening on mqtt://"), "{line}");
    // The persistence directory was made and written at start-up.
    assert!(state.join("state.json").is_file());
    child.kill().await.expect("kill");

    std::fs::write(&config, "allow_anonymous: false\n").expect("write");
    let mut cmd = broker();
    cmd.arg("--config").arg(&config);
    let out = run(cmd, b"").await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "allow_anonymous: false needs a password file"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("password"));
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_writes_what_was_not_yet_persisted() {
    use bytes::BytesMut;
    use mqtt_codec::{DecodeOptions, Decoder, Packet, Publish, Sender};
    use tokio::io::AsyncReadExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = broker();
    cmd.args(["--listen", "127.0.0.1:0", "--persist"])
        .arg(dir.path());
    let mut child = cmd.spawn().expect("start");
    let (line, _stdout) = first_line(&mut child).await;
    let addr = line
        .rsplit("mqtt://")
        .next()
        .expect("an address")
        .to_string();

    // A retained QoS 0 message: nothing acknowledges it, so only the
    // periodic flush or the one at shutdown writes it.
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut out = BytesMut::new();
    for p in [
        Packet::Connect(Box::new(Connect::new(Protocol::V3_1_1, "c"))),
        Packet::Publish(Publish {
            retain: true,
            topic: "kept/qos0".into(),
            payload: Bytes::from_static(b"x"),
            ..Publish::default()
        }),
        Packet::PingReq,
    ] {
        mqtt_codec::encode(&p, Protocol::V3_1_1, &mut out).expect("encode");
    }
    stream.write_all(&out).await.expect("write");
    let mut decoder = Decoder::new(DecodeOptions::new(Protocol::V3_1_1, Sender::Server));
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    while got.len() < 2 {
        timeout(DEADLINE, stream.read_buf(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        while let Some(p) = decoder.decode(&mut buf).expect("decodable") {
            got.push(p);
        }
    }
    assert!(
        matches!(got[1], Packet::PingResp),
        "the PUBLISH was handled before PINGRESP"
    );

    let pid = child.id().expect("running").to_string();
    // The shell's own `kill`: present wherever `sh` is.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .await
        .expect("kill");
    assert!(status.success());
    let status = timeout(DEADLINE, child.wait())
        .await
        .expect("exits in time")
        .expect("wait");
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(dir.path().join("state.json")).expect("state file");
    let snapshot = reference_broker::broker::Snapshot::from_json(text.as_bytes()).expect("valid");
    assert_eq!(snapshot.retained.len(), 1);
}
