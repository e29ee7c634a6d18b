//! In-memory tests of authentication and authorisation in the broker core:
//! every refusal code, a full SCRAM-SHA-256 exchange driven by a small SCRAM
//! client written here (independently of the broker's), re-authentication,
//! and topic ACLs on SUBSCRIBE, PUBLISH and delivery.

mod common;

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use common::Net;
use hmac::{Hmac, Mac};
use mqtt_codec::reason;
use mqtt_codec::{
    Auth as AuthPacket, ByteString, Connect, Packet, Properties, Property, Protocol, PubResponse,
    Publish, QoS, Subscribe, Subscription, SubscriptionOptions,
};
use reference_broker::auth::{hash_line, Acl, Auth, PasswordFile};
use reference_broker::{Config, ConnId};
use sha2::{Digest, Sha256};

const V311: Protocol = Protocol::V3_1_1;
const V5: Protocol = Protocol::V5;
const ITERATIONS: u32 = 4096;
const SCRAM: &str = "SCRAM-SHA-256";

impl Net {
    fn with_auth(auth: Auth) -> Net {
        Net::with(Config {
            auth,
            ..Config::default()
        })
    }

    /// `auth` and one deliberate violation.
    fn violating(auth: Auth, id: &str) -> Net {
        let mut config = Config {
            auth,
            ..Config::default()
        };
        config.violations.add(id).expect("a known violation");
        Net::with(config)
    }

    /// A connection that must be accepted.
    fn client(&mut self, connect: Connect) -> ConnId {
        let (conn, ack) = self.connect_with(connect);
        assert_eq!(ack.code, 0, "{ack:?}");
        conn
    }

    fn subscribe(&mut self, conn: ConnId, filter: &str, qos: QoS) -> u8 {
        self.send(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                properties: Properties::new(),
                filters: vec![Subscription {
                    filter: ByteString::from(filter),
                    options: SubscriptionOptions::qos(qos),
                }],
            }),
        );
        let mut code = None;
        let mut rest = VecDeque::new();
        for p in self.recv(conn) {
            match p {
                Packet::SubAck(ack) if code.is_none() => code = ack.reason_codes.first().copied(),
                other => rest.push_back(other),
            }
        }
        self.inbox.insert(conn, rest);
        code.expect("a SUBACK with one code")
    }

    fn topics(&mut self, conn: ConnId) -> Vec<String> {
        self.recv(conn)
            .into_iter()
            .map(|p| match p {
                Packet::Publish(p) => p.topic.to_string(),
                other => panic!("expected only PUBLISH, got {other:?}"),
            })
            .collect()
    }
}

fn login(protocol: Protocol, id: &str, user: Option<&str>, password: Option<&str>) -> Connect {
    Connect {
        keep_alive: 0,
        username: user.map(ByteString::from),
        password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        ..Connect::new(protocol, id)
    }
}

fn passwords() -> PasswordFile {
    let text = [
        hash_line("alice", b"wonderland", ITERATIONS, b"alice-salt"),
        hash_line("bob", b"builder", ITERATIONS, b"bob-salt-16bytes"),
    ]
    .join("\n");
    PasswordFile::parse("passwords", &text).expect("valid password file")
}

fn auth(allow_anonymous: bool, acl: Option<&str>) -> Auth {
    let acl = acl.map(|t| Acl::parse("acl", t).expect("valid ACL"));
    Auth::new(Some(passwords()), acl, allow_anonymous).expect("auth")
}

fn publish(topic: &str, qos: QoS, packet_id: u16) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id,
        payload: Bytes::from_static(b"x"),
        ..Publish::default()
    })
}

// ------------------------------------------------------------ user name / password

#[test]
fn good_password_accepted() {
    let mut net = Net::with_auth(auth(false, None));
    net.client(login(V5, "a5", Some("alice"), Some("wonderland")));
    net.client(login(V311, "a3", Some("bob"), Some("builder")));
}

#[test]
fn bad_password_refused_0x86_and_0x04() {
    let mut net = Net::with_auth(auth(false, None));
    for (protocol, code) in [
        (V5, reason::BAD_USER_NAME_OR_PASSWORD),
        (V311, reason::v3::BAD_USER_NAME_OR_PASSWORD),
        (Protocol::V3_1, reason::v3::BAD_USER_NAME_OR_PASSWORD),
    ] {
        for (user, pw) in [
            (Some("alice"), Some("Wonderland")),
            (Some("mallory"), Some("wonderland")),
            (Some("alice"), None),
        ] {
            let (conn, ack) = net.connect_with(login(protocol, "c", user, pw));
            assert_eq!(ack.code, code, "{protocol:?} {user:?} {pw:?}");
            assert!(net.is_closed(conn));
        }
    }
    // 5.0 allows a password without a user name; it matches no entry.
    let (_, ack) = net.connect_with(login(V5, "c", None, Some("wonderland")));
    assert_eq!(ack.code, reason::BAD_USER_NAME_OR_PASSWORD);
}

#[test]
fn anonymous_refused_0x87_and_0x05_unless_allowed() {
    let mut net = Net::with_auth(auth(false, None));
    let (conn, ack) = net.connect_with(login(V5, "anon", None, None));
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert!(net.is_closed(conn));
    let (_, ack) = net.connect_with(login(V311, "anon", None, None));
    assert_eq!(ack.code, reason::v3::NOT_AUTHORIZED);

    let mut net = Net::with_auth(auth(true, None));
    net.client(login(V5, "anon", None, None));
    net.client(login(V311, "anon3", None, None));
    // Allowing anonymous clients does not let a wrong password through.
    let (_, ack) = net.connect_with(login(V311, "c", Some("alice"), Some("nope")));
    assert_eq!(ack.code, reason::v3::BAD_USER_NAME_OR_PASSWORD);
}

#[test]
fn unsupported_method_refused_0x8c() {
    let mut net = Net::with_auth(auth(false, None));
    let mut c = login(V5, "m", None, None);
    c.properties
        .push(Property::AuthenticationMethod("KERBEROS".into()));
    let (conn, ack) = net.connect_with(c);
    assert_eq!(ack.code, reason::BAD_AUTHENTICATION_METHOD);
    assert!(net.is_closed(conn));
    // Without a password file no method is offered at all.
    let mut net = Net::with_auth(Auth::default());
    let mut c = login(V5, "m", None, None);
    c.properties
        .push(Property::AuthenticationMethod(SCRAM.into()));
    assert_eq!(
        net.connect_with(c).1.code,
        reason::BAD_AUTHENTICATION_METHOD
    );
}

#[test]
fn auth_without_method_is_a_protocol_error() {
    let mut net = Net::with_auth(auth(false, None));
    let conn = net.client(login(V5, "p", Some("alice"), Some("wonderland")));
    net.send(
        conn,
        Packet::Auth(AuthPacket {
            reason_code: reason::REAUTHENTICATE,
            properties: Properties::new().with(Property::AuthenticationMethod(SCRAM.into())),
        }),
    );
    match net.one(conn) {
        Packet::Disconnect(d) => assert_eq!(d.reason_code, reason::PROTOCOL_ERROR),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert!(net.is_closed(conn));
}

#[test]
fn password_file_errors_name_file_and_line() {
    let e = PasswordFile::parse("pw.txt", "alice:$pbkdf2-sha256$4096$!!$AA==\n").unwrap_err();
    assert!(e.starts_with("pw.txt:1: ") && e.contains("salt"), "{e}");
    let e = Acl::parse("acl.txt", "user a\ntopic sometimes a/b\n").unwrap_err();
    assert!(e.starts_with("acl.txt:2: "), "{e}");
    assert!(
        Auth::new(None, None, false).is_err(),
        "allow_anonymous: false needs a password file"
    );
}

// ------------------------------------------------------------ SCRAM-SHA-256

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A SCRAM-SHA-256 client (RFC 5802 / 7677), without channel binding.
struct ScramClient {
    user: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Vec<u8>,
}

impl ScramClient {
    fn new(user: &str, password: &str, nonce: &str) -> ScramClient {
        ScramClient {
            user: user.into(),
            password: password.into(),
            nonce: nonce.into(),
            client_first_bare: format!(
                "n={},r={nonce}",
                user.replace('=', "=3D").replace(',', "=2C")
            ),
            server_signature: Vec::new(),
        }
    }

    fn first(&self) -> Bytes {
        Bytes::from(format!("n,,{}", self.client_first_bare))
    }

    fn final_message(&mut self, server_first: &[u8]) -> Bytes {
        let server_first = std::str::from_utf8(server_first).expect("UTF-8 server-first");
        let mut r = None;
        let mut s = None;
        let mut i = None;
        for attr in server_first.split(',') {
            match attr.split_at(2) {
                ("r=", v) => r = Some(v.to_string()),
                ("s=", v) => s = Some(B64.decode(v).expect("base64 salt")),
                ("i=", v) => i = Some(v.parse::<u32>().expect("iteration count")),
                _ => {}
            }
        }
        let (r, s, i) = (r.expect("r="), s.expect("s="), i.expect("i="));
        assert!(
            r.starts_with(&self.nonce) && r.len() > self.nonce.len(),
            "the server nonce extends ours: {r}"
        );
        assert!(i >= 4096, "RFC 7677: at least 4096 iterations, got {i}");
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), &s, i, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c={},r={r}", B64.encode("n,,"));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.server_signature = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
        let _ = &self.user;
        Bytes::from(format!("{without_proof},p={}", B64.encode(proof)))
    }

    fn verify_server_final(&self, server_final: &[u8]) {
        let expected = format!("v={}", B64.encode(&self.server_signature));
        assert_eq!(
            std::str::from_utf8(server_final).ok(),
            Some(expected.as_str()),
            "server signature"
        );
    }
}

fn scram_connect(id: &str, data: Bytes) -> Connect {
    let mut c = login(V5, id, None, None);
    c.properties
        .push(Property::AuthenticationMethod(SCRAM.into()));
    c.properties.push(Property::AuthenticationData(data));
    c
}

fn auth_packet(code: u8, method: &str, data: Bytes) -> Packet {
    Packet::Auth(AuthPacket {
        reason_code: code,
        properties: Properties::new()
            .with(Property::AuthenticationMethod(method.into()))
            .with(Property::AuthenticationData(data)),
    })
}

/// Runs CONNECT + AUTH; returns the connection, the client and the answer to client-final.
fn scram_login(
    net: &mut Net,
    id: &str,
    user: &str,
    password: &str,
) -> (ConnId, ScramClient, Packet) {
    let mut client = ScramClient::new(user, password, "fyko+d2lbbFgONRv9qkxdawL");
    let (conn, first) = net.connect(scram_connect(id, client.first()));
    let Packet::Auth(a) = first else {
        panic!("expected AUTH, got {first:?}")
    };
    assert_eq!(a.reason_code, reason::CONTINUE_AUTHENTICATION);
    assert_eq!(a.properties.authentication_method().as_deref(), Some(SCRAM));
    let server_first = a
        .properties
        .authentication_data()
        .expect("server-first in AUTH");
    let final_msg = client.final_message(&server_first);
    net.send(
        conn,
        auth_packet(reason::CONTINUE_AUTHENTICATION, SCRAM, final_msg),
    );
    let answer = net
        .inbox
        .get_mut(&conn)
        .and_then(|q| q.pop_front())
        .expect("an answer to AUTH");
    (conn, client, answer)
}

#[test]
fn scram_exchange_succeeds() {
    let mut net = Net::with_auth(auth(false, Some("user alice\ntopic alice/#\n")));
    let (conn, client, answer) = scram_login(&mut net, "scram", "alice", "wonderland");
    let Packet::ConnAck(ack) = answer else {
        panic!("expected CONNACK, got {answer:?}")
    };
    assert_eq!(ack.code, 0, "{ack:?}");
    assert_eq!(
        ack.properties.authentication_method().as_deref(),
        Some(SCRAM)
    );
    client.verify_server_final(
        &ack.properties
            .authentication_data()
            .expect("server-final in CONNACK"),
    );
    // The SCRAM identity is the user the ACL sees.
    assert_eq!(net.subscribe(conn, "alice/x", QoS::AtMostOnce), 0);
    assert_eq!(
        net.subscribe(conn, "bob/x", QoS::AtMostOnce),
        reason::NOT_AUTHORIZED
    );
}

#[test]
fn scram_wrong_password_or_unknown_user_refused_0x86() {
    let mut net = Net::with_auth(auth(false, None));
    for (user, pw) in [("alice", "wrong"), ("nobody", "wonderland")] {
        let (conn, _, answer) = scram_login(&mut net, "s", user, pw);
        let Packet::ConnAck(ack) = answer else {
            panic!("expected CONNACK, got {answer:?}")
        };
        assert_eq!(ack.code, reason::BAD_USER_NAME_OR_PASSWORD, "{user}");
        assert!(net.is_closed(conn));
    }
}

#[test]
fn scram_malformed_client_first_refused_0x87() {
    let mut net = Net::with_auth(auth(false, None));
    let (conn, first) = net.connect(scram_connect(
        "s",
        Bytes::from_static(b"p=tls-unique,,n=alice,r=abc"),
    ));
    let Packet::ConnAck(ack) = first else {
        panic!("expected CONNACK, got {first:?}")
    };
    assert_eq!(ack.code, reason::NOT_AUTHORIZED);
    assert!(net.is_closed(conn));
}

#[test]
fn scram_auth_with_another_method_is_a_protocol_error() {
    // MQTT-4.12.0-5: every AUTH carries the method of CONNECT.
    let mut net = Net::with_auth(auth(false, None));
    let client = ScramClient::new("alice", "wonderland", "abcdef");
    let (conn, first) = net.connect(scram_connect("s", client.first()));
    assert!(matches!(first, Packet::Auth(_)), "{first:?}");
    net.send(
        conn,
        auth_packet(
            reason::CONTINUE_AUTHENTICATION,
            "SCRAM-SHA-1",
            Bytes::from_static(b"c=biws"),
        ),
    );
    match net.one(conn) {
        Packet::ConnAck(ack) => assert_eq!(ack.code, reason::PROTOCOL_ERROR),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert!(net.is_closed(conn));
}

#[test]
fn scram_connect_held_until_exchange_ends() {
    // Nothing but AUTH may come while the exchange runs.
    let mut net = Net::with_auth(auth(false, None));
    let client = ScramClient::new("alice", "wonderland", "abcdef");
    let (conn, _) = net.connect(scram_connect("s", client.first()));
    net.send(conn, Packet::PingReq);
    assert!(net.recv(conn).is_empty());
    assert!(net.is_closed(conn));
}

/// Starts a SCRAM re-authentication (AUTH 0x19 with `client`'s first
/// message) and answers the server-first AUTH with the client-final message;
/// returns the server-first AUTH's reason code.
fn reauthenticate(net: &mut Net, conn: ConnId, client: &mut ScramClient) -> u8 {
    net.send(
        conn,
        auth_packet(reason::REAUTHENTICATE, SCRAM, client.first()),
    );
    let Packet::Auth(a) = net.one(conn) else {
        panic!("expected AUTH")
    };
    let final_msg =
        client.final_message(&a.properties.authentication_data().expect("server-first"));
    net.send(
        conn,
        auth_packet(reason::CONTINUE_AUTHENTICATION, SCRAM, final_msg),
    );
    a.reason_code
}

#[test]
fn reauthentication() {
    let mut net = Net::with_auth(auth(false, None));
    let (conn, _, answer) = scram_login(&mut net, "re", "alice", "wonderland");
    assert!(
        matches!(answer, Packet::ConnAck(ref a) if a.code == 0),
        "{answer:?}"
    );
    // AUTH 0x19 → AUTH 0x18 → AUTH 0x18 → AUTH 0x00.
    let mut client = ScramClient::new("alice", "wonderland", "second-nonce");
    let code = reauthenticate(&mut net, conn, &mut client);
    assert_eq!(code, reason::CONTINUE_AUTHENTICATION);
    let Packet::Auth(a) = net.one(conn) else {
        panic!("expected AUTH")
    };
    assert_eq!(a.reason_code, reason::SUCCESS);
    client.verify_server_final(&a.properties.authentication_data().expect("server-final"));
    assert!(!net.is_closed(conn));

    // A failed re-authentication ends the connection (MQTT-4.12.1-2).
    let mut client = ScramClient::new("alice", "not-the-password", "third");
    reauthenticate(&mut net, conn, &mut client);
    match net.one(conn) {
        Packet::Disconnect(d) => assert_eq!(d.reason_code, reason::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert!(net.is_closed(conn));
}

#[test]
fn reauthentication_with_another_method_or_user_refused() {
    let mut net = Net::with_auth(auth(false, None));
    let (conn, _, _) = scram_login(&mut net, "re1", "alice", "wonderland");
    net.send(
        conn,
        auth_packet(reason::REAUTHENTICATE, "PLAIN", Bytes::new()),
    );
    assert!(
        matches!(net.one(conn), Packet::Disconnect(d) if d.reason_code == reason::PROTOCOL_ERROR)
    );

    let (conn, _, _) = scram_login(&mut net, "re2", "alice", "wonderland");
    let client = ScramClient::new("bob", "builder", "n");
    net.send(
        conn,
        auth_packet(reason::REAUTHENTICATE, SCRAM, client.first()),
    );
    assert!(
        matches!(net.one(conn), Packet::Disconnect(d) if d.reason_code == reason::NOT_AUTHORIZED)
    );
}

// ------------------------------------------------------------ ACLs

const ACL: &str = "\
topic read public/#
user alice
topic readwrite alice/#
topic read shared/#
user bob
topic write shared/#
topic read bob/#
pattern read devices/%c/#
pattern readwrite users/%u/#
";

#[test]
fn subscribe_refused_0x87_and_0x80() {
    let mut net = Net::with_auth(auth(true, Some(ACL)));
    let a5 = net.client(login(V5, "a5", Some("alice"), Some("wonderland")));
    assert_eq!(net.subscribe(a5, "alice/#", QoS::AtLeastOnce), 1);
    assert_eq!(
        net.subscribe(a5, "bob/#", QoS::AtLeastOnce),
        reason::NOT_AUTHORIZED
    );
    assert_eq!(
        net.subscribe(a5, "$share/g/bob/x", QoS::AtLeastOnce),
        reason::NOT_AUTHORIZED
    );
    assert_eq!(net.subscribe(a5, "devices/a5/+", QoS::AtLeastOnce), 1);
    assert_eq!(
        net.subscribe(a5, "devices/other/+", QoS::AtLeastOnce),
        reason::NOT_AUTHORIZED
    );
    let a3 = net.client(login(V311, "a3", Some("alice"), Some("wonderland")));
    assert_eq!(
        net.subscribe(a3, "bob/#", QoS::AtLeastOnce),
        reason::v3::SUBACK_FAILURE
    );
    assert_eq!(net.subscribe(a3, "users/alice/inbox", QoS::AtLeastOnce), 1);
    // Anonymous clients get the rules before the first `user` line.
    let anon = net.client(login(V311, "anon", None, None));
    assert_eq!(net.subscribe(anon, "public/news", QoS::AtMostOnce), 0);
    assert_eq!(
        net.subscribe(anon, "alice/x", QoS::AtMostOnce),
        reason::v3::SUBACK_FAILURE
    );
}

#[test]
fn publish_refused_v5_with_0x87() {
    let mut net = Net::with_auth(auth(true, Some(ACL)));
    let watcher = net.client(login(V5, "w", Some("alice"), Some("wonderland")));
    assert_eq!(net.subscribe(watcher, "alice/#", QoS::ExactlyOnce), 2);
    let bob = net.client(login(V5, "b5", Some("bob"), Some("builder")));
    net.send(bob, publish("alice/x", QoS::AtLeastOnce, 1));
    assert_eq!(
        net.one(bob),
        Packet::PubAck(PubResponse {
            reason_code: reason::NOT_AUTHORIZED,
            ..PubResponse::new(1)
        })
    );
    net.send(bob, publish("alice/x", QoS::ExactlyOnce, 2));
    assert_eq!(
        net.one(bob),
        Packet::PubRec(PubResponse {
            reason_code: reason::NOT_AUTHORIZED,
            ..PubResponse::new(2)
        })
    );
    // A PUBREC failure ends the exchange: the id is free, PUBREL is unknown.
    net.send(bob, Packet::PubRel(PubResponse::new(2)));
    assert_eq!(
        net.one(bob),
        Packet::PubComp(PubResponse {
            reason_code: reason::PACKET_IDENTIFIER_NOT_FOUND,
            ..PubResponse::new(2)
        })
    );
    net.send(bob, publish("alice/x", QoS::AtMostOnce, 0));
    assert!(net.recv(bob).is_empty(), "QoS 0: dropped without an answer");
    assert!(!net.is_closed(bob));
    assert!(
        net.topics(watcher).is_empty(),
        "nothing refused is forwarded"
    );
    // Retained messages refused are not stored either.
    let mut p = Publish {
        retain: true,
        ..Publish::default()
    };
    p.topic = "alice/r".into();
    p.payload = Bytes::from_static(b"r");
    net.send(bob, Packet::Publish(p));
    assert_eq!(net.broker.retained_count(), 0);
    // What bob may write goes through.
    net.send(bob, publish("shared/x", QoS::AtLeastOnce, 3));
    assert!(
        matches!(net.one(bob), Packet::PubAck(r) if r.reason_code == reason::NO_MATCHING_SUBSCRIBERS)
    );
}

#[test]
fn publish_refused_v311_acknowledged_not_forwarded() {
    // MQTT-3.3.5-2: 3.1.1 has no negative acknowledgement.
    let mut net = Net::with_auth(auth(true, Some(ACL)));
    let watcher = net.client(login(V5, "w", Some("alice"), Some("wonderland")));
    assert_eq!(net.subscribe(watcher, "alice/#", QoS::ExactlyOnce), 2);
    let bob = net.client(login(V311, "b3", Some("bob"), Some("builder")));
    net.send(bob, publish("alice/x", QoS::AtLeastOnce, 1));
    assert_eq!(net.one(bob), Packet::PubAck(PubResponse::new(1)));
    net.send(bob, publish("alice/x", QoS::ExactlyOnce, 2));
    assert_eq!(net.one(bob), Packet::PubRec(PubResponse::new(2)));
    net.send(bob, Packet::PubRel(PubResponse::new(2)));
    assert_eq!(net.one(bob), Packet::PubComp(PubResponse::new(2)));
    assert!(net.topics(watcher).is_empty());
}

#[test]
fn delivery_needs_read_access_even_through_a_wildcard() {
    // Without a password file user names are unchecked identities for the ACL.
    let acl = Acl::parse("acl", &format!("{ACL}user carol\ntopic write #\n")).expect("valid ACL");
    let mut net = Net::with_auth(Auth::new(None, Some(acl), true).expect("auth"));
    // bob may subscribe to `#` (he can read bob/#) but only gets what he may read.
    let bob = net.client(login(V5, "bob-dev", Some("bob"), None));
    assert_eq!(net.subscribe(bob, "#", QoS::AtLeastOnce), 1);
    let carol = net.client(login(V5, "c", Some("carol"), None));
    for (i, t) in [
        "alice/secret",
        "bob/inbox",
        "devices/bob-dev/t",
        "devices/x/t",
        "users/bob/y",
        "users/carol/z",
        "public/p",
    ]
    .into_iter()
    .enumerate()
    {
        net.send(carol, publish(t, QoS::AtLeastOnce, i as u16 + 1));
    }
    assert_eq!(
        net.topics(bob),
        ["bob/inbox", "devices/bob-dev/t", "users/bob/y"]
    );
    // Retained messages sent on subscription are filtered the same way.
    let mut r = Publish {
        retain: true,
        ..Publish::default()
    };
    for t in ["alice/kept", "bob/kept"] {
        r.topic = t.into();
        r.payload = Bytes::from_static(b"r");
        net.send(carol, Packet::Publish(r.clone()));
    }
    let anon = net.client(login(V5, "watch", Some("bob"), None));
    assert_eq!(net.subscribe(anon, "+/kept", QoS::AtMostOnce), 0);
    assert_eq!(net.topics(anon), ["bob/kept"]);
}

// ------------------------------------------------------------ deliberate violations

#[test]
fn violation_unsupported_method_accepted() {
    let mut c = login(V5, "m", None, None);
    c.properties
        .push(Property::AuthenticationMethod("KERBEROS".into()));
    let mut net = Net::violating(Auth::default(), "MQTT-4.12.0-1");
    assert_eq!(net.connect_with(c.clone()).1.code, 0);
    let mut net = Net::with_auth(Auth::default());
    assert_eq!(
        net.connect_with(c).1.code,
        reason::BAD_AUTHENTICATION_METHOD
    );
}

#[test]
fn violation_connack_without_method_after_scram() {
    let mut net = Net::violating(auth(false, None), "MQTT-4.12.0-5");
    let (_, _, answer) = scram_login(&mut net, "v", "alice", "wonderland");
    let Packet::ConnAck(ack) = answer else {
        panic!("expected CONNACK, got {answer:?}")
    };
    assert_eq!(ack.code, 0);
    assert_eq!(ack.properties.authentication_method(), None);
}

#[test]
fn violation_method_in_connack_without_one_in_connect() {
    let mut net = Net::violating(Auth::default(), "MQTT-4.12.0-6");
    let (_, ack) = net.connect_with(login(V5, "v", None, None));
    assert_eq!(
        ack.properties.authentication_method().as_deref(),
        Some(SCRAM)
    );
    let mut net = Net::with_auth(Auth::default());
    let (_, ack) = net.connect_with(login(V5, "v", None, None));
    assert_eq!(ack.properties.authentication_method(), None);
}

#[test]
fn violation_failed_reauthentication_keeps_connection() {
    let mut net = Net::violating(auth(false, None), "MQTT-4.12.1-2");
    let (conn, _, _) = scram_login(&mut net, "v", "alice", "wonderland");
    let mut client = ScramClient::new("alice", "wrong", "n2");
    reauthenticate(&mut net, conn, &mut client);
    assert!(matches!(net.one(conn), Packet::Auth(a) if a.reason_code == reason::SUCCESS));
    assert!(!net.is_closed(conn));
}

#[test]
fn violation_unauthorized_v311_publish_unacknowledged() {
    let mut net = Net::violating(auth(true, Some(ACL)), "MQTT-3.3.5-2");
    let bob = net.client(login(V311, "b", Some("bob"), Some("builder")));
    net.send(bob, publish("alice/x", QoS::AtLeastOnce, 1));
    assert!(net.recv(bob).is_empty());
    assert!(!net.is_closed(bob));
}

#[test]
fn another_user_does_not_resume_a_session() {
    let mut net = Net::with_auth(auth(false, Some(ACL)));
    let mut c = login(V311, "shared-id", Some("alice"), Some("wonderland"));
    c.clean_start = false;
    let alice = net.client(c.clone());
    assert_eq!(net.subscribe(alice, "alice/#", QoS::AtLeastOnce), 1);
    net.send(alice, Packet::Disconnect(Default::default()));
    let publisher = net.client(login(V5, "p", Some("alice"), Some("wonderland")));
    net.send(publisher, publish("alice/private", QoS::AtLeastOnce, 1));
    // bob, with alice's client id: a fresh session, none of alice's messages.
    let mut b = login(V311, "shared-id", Some("bob"), Some("builder"));
    b.clean_start = false;
    let (bob, ack) = net.connect_with(b);
    assert_eq!(ack.code, 0);
    assert!(!ack.session_present);
    assert!(net.recv(bob).is_empty());
    // alice herself comes back to an empty session too: bob's replaced hers.
    let (alice, ack) = net.connect_with(c);
    assert!(!ack.session_present);
    assert!(net.recv(alice).is_empty());
}

#[test]
fn will_topic_needs_write_access() {
    let mut net = Net::with_auth(auth(true, Some(ACL)));
    let will = |topic: &str| mqtt_codec::Will {
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::new(),
        topic: topic.into(),
        payload: Bytes::from_static(b"bye"),
    };
    for (protocol, code) in [
        (V5, reason::NOT_AUTHORIZED),
        (V311, reason::v3::NOT_AUTHORIZED),
    ] {
        let mut c = login(protocol, "w", Some("bob"), Some("builder"));
        c.will = Some(will("alice/x"));
        let (conn, ack) = net.connect_with(c);
        assert_eq!(ack.code, code, "{protocol:?}");
        assert!(net.is_closed(conn));
    }
    let mut c = login(V5, "w", Some("bob"), Some("builder"));
    c.will = Some(will("shared/bob-left"));
    net.client(c);
}

#[test]
fn shared_subscription_goes_to_members_that_may_read() {
    let acl = Acl::parse(
        "acl",
        "user reader\ntopic read jobs/#\nuser other\ntopic read jobs/public\nuser writer\ntopic write jobs/#\n",
    )
    .expect("valid ACL");
    let mut net = Net::with_auth(Auth::new(None, Some(acl), true).expect("auth"));
    let reader = net.client(login(V5, "r", Some("reader"), None));
    let other = net.client(login(V5, "o", Some("other"), None));
    assert_eq!(net.subscribe(reader, "$share/g/jobs/#", QoS::AtMostOnce), 0);
    assert_eq!(net.subscribe(other, "$share/g/jobs/#", QoS::AtMostOnce), 0);
    let writer = net.client(login(V5, "w", Some("writer"), None));
    for _ in 0..4 {
        net.send(writer, publish("jobs/secret", QoS::AtMostOnce, 0));
    }
    // Every one reaches the member that may read it; none is lost to the other.
    assert_eq!(net.topics(reader).len(), 4);
    assert!(net.topics(other).is_empty());
}

#[test]
fn violation_auth_continue_code() {
    for (mut net, compliant) in [
        (Net::with_auth(auth(false, None)), true),
        (Net::violating(auth(false, None), "MQTT-4.12.0-2"), false),
    ] {
        let client = ScramClient::new("alice", "wonderland", "fyko+d2lbbFgONRv9qkxdawL");
        let (_, first) = net.connect(scram_connect("scram", client.first()));
        let Packet::Auth(a) = first else {
            panic!("expected AUTH, got {first:?}")
        };
        assert_eq!(
            a.reason_code == reason::CONTINUE_AUTHENTICATION,
            compliant,
            "{a:?}"
        );
    }
}
