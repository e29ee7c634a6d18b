//! Differential decoding: our decoder against rumqttc's (`mqttbytes::v4`,
//! `v5::mqttbytes::v5`) and mqttrs's, on the same bytes.
//!
//! The first byte selects the version and sender as in the other targets
//! ([`mqtt_codec::fuzzing::select`]; 3.1 is read as 3.1.1, which the peers
//! speak); the rest is cut to the first whole frame by its remaining length
//! (inputs with no whole frame are skipped: the decoders report an
//! incomplete packet at different points). Each decoder then reads that frame
//! to an [`Outcome`]: a packet, as a list of the fields all of them carry
//! (properties are not compared), or a refusal. Every difference is a
//! [`Disagreement`], classified by [`classify`]:
//! - we refuse what a peer accepts: our refusal names the statement it
//!   enforces, so the spec sides with us and the peer is lenient (a row of
//!   the leniency table);
//! - a peer refuses what we accept, or both accept and read a field
//!   differently: known cases are classified below by hand, with the side the
//!   spec supports; anything else is [`Side::Unknown`].
//!
//! [`check`] (the `differential` target) panics on a disagreement where the
//! spec sides with the peer (a bug of ours) or that nobody has classified.

use bytes::BytesMut;
use mqtt_codec::{
    decode_bytes, fuzzing::select, DecodeOptions, Decoded, ErrorKind, Packet, Protocol, Sender,
};
use rumqttc::mqttbytes::v4 as rv4;
use rumqttc::v5::mqttbytes::v5 as rv5;

/// What one decoder made of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The packet's type and fields, in a common form.
    Packet(Vec<(&'static str, String)>),
    /// Refused, with the decoder's reason.
    Refused(String),
}

/// Whom the spec supports in a disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// Ours: the peer is lenient (accepts what the spec forbids) or wrong.
    Ours,
    /// The peer: we are wrong.
    Peer,
    /// The spec lets decoders differ here (a version or direction a peer
    /// does not speak, a limit of its own).
    Either,
    /// Not classified yet.
    Unknown,
}

/// One difference between our decoder and a peer on one frame.
#[derive(Debug, Clone)]
pub struct Disagreement {
    pub peer: &'static str,
    /// A short name for the kind of difference (the leniency table's row).
    pub class: String,
    pub side: Side,
    pub ours: Outcome,
    pub theirs: Outcome,
}

/// The target: panics on a disagreement that the spec decides for the
/// peer, or that is not classified.
pub fn check(data: &[u8]) {
    for d in compare(data) {
        if matches!(d.side, Side::Peer | Side::Unknown) {
            panic!(
                // ok: this is how libFuzzer learns of a finding
                "{} disagrees ({:?}): {}\nours:   {:?}\ntheirs: {:?}\nbytes: {:02x?}",
                d.peer, d.side, d.class, d.ours, d.theirs, data
            );
        }
    }
}

/// Every disagreement on `data` (see the module's documentation).
pub fn compare(data: &[u8]) -> Vec<Disagreement> {
    let Some((&first, rest)) = data.split_first() else {
        return Vec::new();
    };
    let (protocol, from) = select(first);
    let protocol = if protocol == Protocol::V3_1 {
        Protocol::V3_1_1
    } else {
        protocol
    };
    let Some(frame) = whole_frame(rest) else {
        return Vec::new();
    };
    let (ours, err) = ours(frame, protocol, from);
    // Direction is not the peers' business: they read either side's packets.
    if matches!(&err, Some(ErrorKind::WrongDirection)) {
        return Vec::new();
    }
    let peers: Vec<(&'static str, Outcome)> = if protocol.is_v5() {
        vec![("rumqttc-v5", guarded(|| rumqttc_v5(frame)))]
    } else {
        vec![
            ("rumqttc-v4", guarded(|| rumqttc_v4(frame))),
            ("mqttrs", guarded(|| mqttrs(frame))),
        ]
    };
    let mut out = Vec::new();
    for (peer, theirs) in peers {
        let differ = match (&ours, &theirs) {
            (Outcome::Refused(_), Outcome::Refused(_)) => false,
            (a, b) => a != b,
        };
        if differ {
            let (class, side) = classify(peer, &ours, err.as_ref(), &theirs, frame);
            out.push(Disagreement {
                peer,
                class,
                side,
                ours: ours.clone(),
                theirs,
            });
        }
    }
    out
}

thread_local! {
    /// Set while a peer decodes: its panic is an outcome, not a finding.
    static IN_PEER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a peer's decoder; a panic in it becomes `Refused("panicked: …")`.
/// libFuzzer's panic hook aborts the process, so the first call wraps it
/// with one that stays quiet (and lets the panic unwind to here) while a
/// peer runs, and otherwise does what it did.
fn guarded(decode: impl FnOnce() -> Outcome) -> Outcome {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_PEER.with(|p| p.get()) {
                previous(info);
            }
        }));
    });
    IN_PEER.with(|p| p.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    IN_PEER.with(|p| p.set(false));
    result.unwrap_or_else(|e| {
        let what = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        // The message without its numbers, so that one bug is one row.
        let what: String = what.chars().filter(|c| !c.is_ascii_digit()).collect();
        Outcome::Refused(format!("panicked: {what}"))
    })
}

/// The first frame of `input`, by its remaining length (up to four bytes,
/// minimal or not), if it is all there.
fn whole_frame(input: &[u8]) -> Option<&[u8]> {
    let mut len: usize = 0;
    for i in 0..4 {
        let b = *input.get(1 + i)?;
        len |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return input.get(..2 + i + len);
        }
    }
    None
}

fn ours(frame: &[u8], protocol: Protocol, from: Sender) -> (Outcome, Option<ErrorKind>) {
    let opts = DecodeOptions::new(protocol, from).with_max_packet_size(u32::MAX);
    match decode_bytes(&bytes::Bytes::copy_from_slice(frame), &opts) {
        Ok(Decoded::Packet { packet, .. }) => {
            let mut fields = fields_ours(&packet);
            // 5.0 CONNACK codes compare as success or failure (see rumqttc_v5).
            if let (Packet::ConnAck(a), true) = (&packet, protocol.is_v5()) {
                if let Some(code) = fields.iter_mut().find(|(k, _)| *k == "code") {
                    code.1 = if a.code == 0 { "0" } else { "failure" }.to_string();
                }
            }
            (Outcome::Packet(fields), None)
        }
        Ok(Decoded::Incomplete { .. }) => (Outcome::Refused("incomplete".into()), None),
        Err(e) => {
            let why = format!(
                "{} ({})",
                kind_name(&e.kind),
                e.statement().unwrap_or("no statement")
            );
            (Outcome::Refused(why), Some(e.kind))
        }
    }
}

/// `PacketIdZero`, `InvalidUtf8`, …: the variant, without its fields.
fn kind_name(kind: &ErrorKind) -> String {
    let debug = format!("{kind:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_string()
}

/// User name and password, each only when not empty: rumqttc cannot tell an
/// empty one from one left out (its login holds two strings).
fn push_login(f: &mut Vec<(&'static str, String)>, user: Option<&str>, password: Option<&[u8]>) {
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        f.push(("username", u.to_string()));
    }
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        f.push(("password", hex(p)));
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fields_ours(p: &Packet) -> Vec<(&'static str, String)> {
    let mut f = vec![("type", p.packet_type().name().to_lowercase())];
    match p {
        Packet::Connect(c) => {
            f.push(("client_id", c.client_id.to_string()));
            f.push(("clean", c.clean_start.to_string()));
            f.push(("keep_alive", c.keep_alive.to_string()));
            if let Some(w) = &c.will {
                f.push(("will_topic", w.topic.to_string()));
                f.push(("will_payload", hex(&w.payload)));
                f.push(("will_qos", w.qos.as_u8().to_string()));
                f.push(("will_retain", w.retain.to_string()));
            }
            push_login(&mut f, c.username.as_deref(), c.password.as_deref());
        }
        Packet::ConnAck(a) => {
            f.push(("session_present", a.session_present.to_string()));
            f.push(("code", a.code.to_string()));
        }
        Packet::Publish(p) => {
            f.push(("dup", p.dup.to_string()));
            f.push(("qos", p.qos.as_u8().to_string()));
            f.push(("retain", p.retain.to_string()));
            f.push(("topic", p.topic.to_string()));
            f.push(("pkid", p.packet_id.to_string()));
            f.push(("payload", hex(&p.payload)));
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            f.push(("pkid", r.packet_id.to_string()));
        }
        Packet::Subscribe(s) => {
            f.push(("pkid", s.packet_id.to_string()));
            for x in &s.filters {
                f.push(("filter", format!("{}:{}", x.filter, x.options.qos.as_u8())));
            }
        }
        Packet::SubAck(s) => {
            f.push(("pkid", s.packet_id.to_string()));
            // Success codes are the granted QoS; the peers keep failures
            // apart by name or not at all, so every failure is one value.
            for &c in &s.reason_codes {
                let code = if c >= 0x80 { 0x80 } else { c };
                f.push(("code", code.to_string()));
            }
        }
        Packet::Unsubscribe(u) => {
            f.push(("pkid", u.packet_id.to_string()));
            for x in &u.filters {
                f.push(("filter", x.to_string()));
            }
        }
        Packet::UnsubAck(u) => f.push(("pkid", u.packet_id.to_string())),
        _ => {}
    }
    f
}

fn rumqttc_v4(frame: &[u8]) -> Outcome {
    let mut buf = BytesMut::from(frame);
    let p = match rv4::read(&mut buf, usize::MAX) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(format!("{e:?}")),
    };
    let mut f: Vec<(&'static str, String)> = Vec::new();
    let ty = |t: &str| ("type", t.to_string());
    match p {
        rv4::Packet::Connect(c) => {
            f.push(ty("connect"));
            f.push(("client_id", c.client_id));
            f.push(("clean", c.clean_session.to_string()));
            f.push(("keep_alive", c.keep_alive.to_string()));
            if let Some(w) = c.last_will {
                f.push(("will_topic", w.topic));
                f.push(("will_payload", hex(&w.message)));
                f.push(("will_qos", (w.qos as u8).to_string()));
                f.push(("will_retain", w.retain.to_string()));
            }
            if let Some(l) = c.login {
                push_login(&mut f, Some(&l.username), Some(l.password.as_bytes()));
            }
        }
        rv4::Packet::ConnAck(a) => {
            f.push(ty("connack"));
            f.push(("session_present", a.session_present.to_string()));
            f.push(("code", (a.code as u8).to_string()));
        }
        rv4::Packet::Publish(p) => {
            f.push(ty("publish"));
            f.push(("dup", p.dup.to_string()));
            f.push(("qos", (p.qos as u8).to_string()));
            f.push(("retain", p.retain.to_string()));
            f.push(("topic", p.topic));
            f.push(("pkid", p.pkid.to_string()));
            f.push(("payload", hex(&p.payload)));
        }
        rv4::Packet::PubAck(r) => f.extend([ty("puback"), ("pkid", r.pkid.to_string())]),
        rv4::Packet::PubRec(r) => f.extend([ty("pubrec"), ("pkid", r.pkid.to_string())]),
        rv4::Packet::PubRel(r) => f.extend([ty("pubrel"), ("pkid", r.pkid.to_string())]),
        rv4::Packet::PubComp(r) => f.extend([ty("pubcomp"), ("pkid", r.pkid.to_string())]),
        rv4::Packet::Subscribe(s) => {
            f.push(ty("subscribe"));
            f.push(("pkid", s.pkid.to_string()));
            for x in s.filters {
                f.push(("filter", format!("{}:{}", x.path, x.qos as u8)));
            }
        }
        rv4::Packet::SubAck(s) => {
            f.push(ty("suback"));
            f.push(("pkid", s.pkid.to_string()));
            for c in s.return_codes {
                let code = match c {
                    rv4::SubscribeReasonCode::Success(q) => q as u8,
                    rv4::SubscribeReasonCode::Failure => 0x80,
                };
                f.push(("code", code.to_string()));
            }
        }
        rv4::Packet::Unsubscribe(u) => {
            f.push(ty("unsubscribe"));
            f.push(("pkid", u.pkid.to_string()));
            for x in u.topics {
                f.push(("filter", x));
            }
        }
        rv4::Packet::UnsubAck(u) => f.extend([ty("unsuback"), ("pkid", u.pkid.to_string())]),
        rv4::Packet::PingReq => f.push(ty("pingreq")),
        rv4::Packet::PingResp => f.push(ty("pingresp")),
        rv4::Packet::Disconnect => f.push(ty("disconnect")),
    }
    Outcome::Packet(f)
}

fn rumqttc_v5(frame: &[u8]) -> Outcome {
    let mut buf = BytesMut::from(frame);
    let p = match rv5::Packet::read(&mut buf, None) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(format!("{e:?}")),
    };
    let mut f: Vec<(&'static str, String)> = Vec::new();
    let ty = |t: &str| ("type", t.to_string());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match p {
        rv5::Packet::Connect(c, will, login) => {
            f.push(ty("connect"));
            f.push(("client_id", c.client_id));
            f.push(("clean", c.clean_start.to_string()));
            f.push(("keep_alive", c.keep_alive.to_string()));
            if let Some(w) = will {
                f.push(("will_topic", text(&w.topic)));
                f.push(("will_payload", hex(&w.message)));
                f.push(("will_qos", (w.qos as u8).to_string()));
                f.push(("will_retain", w.retain.to_string()));
            }
            if let Some(l) = login {
                push_login(&mut f, Some(&l.username), Some(l.password.as_bytes()));
            }
        }
        rv5::Packet::ConnAck(a) => {
            f.push(ty("connack"));
            f.push(("session_present", a.session_present.to_string()));
            // Its reason codes are named, not numbered: success or failure.
            let ok = matches!(a.code, rv5::ConnectReturnCode::Success);
            f.push(("code", if ok { "0" } else { "failure" }.to_string()));
        }
        rv5::Packet::Publish(p) => {
            f.push(ty("publish"));
            f.push(("dup", p.dup.to_string()));
            f.push(("qos", (p.qos as u8).to_string()));
            f.push(("retain", p.retain.to_string()));
            f.push(("topic", text(&p.topic)));
            f.push(("pkid", p.pkid.to_string()));
            f.push(("payload", hex(&p.payload)));
        }
        rv5::Packet::PubAck(r) => f.extend([ty("puback"), ("pkid", r.pkid.to_string())]),
        rv5::Packet::PubRec(r) => f.extend([ty("pubrec"), ("pkid", r.pkid.to_string())]),
        rv5::Packet::PubRel(r) => f.extend([ty("pubrel"), ("pkid", r.pkid.to_string())]),
        rv5::Packet::PubComp(r) => f.extend([ty("pubcomp"), ("pkid", r.pkid.to_string())]),
        rv5::Packet::Subscribe(s) => {
            f.push(ty("subscribe"));
            f.push(("pkid", s.pkid.to_string()));
            for x in s.filters {
                f.push(("filter", format!("{}:{}", x.path, x.qos as u8)));
            }
        }
        rv5::Packet::SubAck(s) => {
            f.push(ty("suback"));
            f.push(("pkid", s.pkid.to_string()));
            for c in s.return_codes {
                let code = match c {
                    rv5::SubscribeReasonCode::Success(q) => q as u8,
                    _ => 0x80, // a failure, whichever
                };
                f.push(("code", code.to_string()));
            }
        }
        rv5::Packet::Unsubscribe(u) => {
            f.push(ty("unsubscribe"));
            f.push(("pkid", u.pkid.to_string()));
            for x in u.filters {
                f.push(("filter", x));
            }
        }
        rv5::Packet::UnsubAck(u) => f.extend([ty("unsuback"), ("pkid", u.pkid.to_string())]),
        rv5::Packet::PingReq(_) => f.push(ty("pingreq")),
        rv5::Packet::PingResp(_) => f.push(ty("pingresp")),
        rv5::Packet::Disconnect(_) => f.push(ty("disconnect")),
    }
    Outcome::Packet(f)
}

fn mqttrs(frame: &[u8]) -> Outcome {
    use mqttrs::{Packet as P, QoS, QosPid, SubscribeReturnCodes};
    let p = match mqttrs::decode_slice(frame) {
        Ok(Some(p)) => p,
        Ok(None) => return Outcome::Refused("incomplete".into()),
        Err(e) => return Outcome::Refused(format!("{e:?}")),
    };
    let q = |q: QoS| match q {
        QoS::AtMostOnce => 0u8,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    };
    let mut f: Vec<(&'static str, String)> = Vec::new();
    let ty = |t: &str| ("type", t.to_string());
    match p {
        P::Connect(c) => {
            f.push(ty("connect"));
            f.push(("client_id", c.client_id.to_string()));
            f.push(("clean", c.clean_session.to_string()));
            f.push(("keep_alive", c.keep_alive.to_string()));
            if let Some(w) = c.last_will {
                f.push(("will_topic", w.topic.to_string()));
                f.push(("will_payload", hex(w.message)));
                f.push(("will_qos", q(w.qos).to_string()));
                f.push(("will_retain", w.retain.to_string()));
            }
            push_login(&mut f, c.username, c.password);
        }
        P::Connack(a) => {
            f.push(ty("connack"));
            f.push(("session_present", a.session_present.to_string()));
            f.push(("code", (a.code as u8).to_string()));
        }
        P::Publish(p) => {
            let (qos, pkid) = match p.qospid {
                QosPid::AtMostOnce => (0, 0),
                QosPid::AtLeastOnce(pid) => (1, pid.get()),
                QosPid::ExactlyOnce(pid) => (2, pid.get()),
            };
            f.push(ty("publish"));
            f.push(("dup", p.dup.to_string()));
            f.push(("qos", qos.to_string()));
            f.push(("retain", p.retain.to_string()));
            f.push(("topic", p.topic_name.to_string()));
            f.push(("pkid", pkid.to_string()));
            f.push(("payload", hex(p.payload)));
        }
        P::Puback(pid) => f.extend([ty("puback"), ("pkid", pid.get().to_string())]),
        P::Pubrec(pid) => f.extend([ty("pubrec"), ("pkid", pid.get().to_string())]),
        P::Pubrel(pid) => f.extend([ty("pubrel"), ("pkid", pid.get().to_string())]),
        P::Pubcomp(pid) => f.extend([ty("pubcomp"), ("pkid", pid.get().to_string())]),
        P::Subscribe(s) => {
            f.push(ty("subscribe"));
            f.push(("pkid", s.pid.get().to_string()));
            for x in s.topics.iter() {
                f.push(("filter", format!("{}:{}", x.topic_path, q(x.qos))));
            }
        }
        P::Suback(s) => {
            f.push(ty("suback"));
            f.push(("pkid", s.pid.get().to_string()));
            for c in s.return_codes.iter() {
                let code = match c {
                    SubscribeReturnCodes::Success(x) => q(*x),
                    SubscribeReturnCodes::Failure => 0x80,
                };
                f.push(("code", code.to_string()));
            }
        }
        P::Unsubscribe(u) => {
            f.push(ty("unsubscribe"));
            f.push(("pkid", u.pid.get().to_string()));
            for x in u.topics.iter() {
                f.push(("filter", x.to_string()));
            }
        }
        P::Unsuback(pid) => f.extend([ty("unsuback"), ("pkid", pid.get().to_string())]),
        P::Pingreq => f.push(ty("pingreq")),
        P::Pingresp => f.push(ty("pingresp")),
        P::Disconnect => f.push(ty("disconnect")),
    }
    Outcome::Packet(f)
}

/// The kind of a disagreement, and whom the spec supports in it.
pub fn classify(
    peer: &str,
    ours: &Outcome,
    our_error: Option<&ErrorKind>,
    theirs: &Outcome,
    frame: &[u8],
) -> (String, Side) {
    match (ours, theirs) {
        // We refuse, citing the rule: the peer is lenient.
        (Outcome::Refused(why), Outcome::Packet(p)) => {
            let ty = p.first().map_or("?", |(_, t)| t.as_str());
            let side = match our_error {
                Some(_) => Side::Ours,
                None => Side::Unknown,
            };
            (format!("accepts a {ty} we refuse: {why}"), side)
        }
        (Outcome::Packet(p), Outcome::Refused(why)) => {
            let ty = p.first().map_or("?", |(_, t)| t.as_str());
            let binary_password = p.iter().any(|(k, v)| {
                *k == "password" && unhex(v).is_some_and(|b| std::str::from_utf8(&b).is_err())
            });
            peer_refuses(peer, ty, why, frame, binary_password)
        }
        (Outcome::Packet(a), Outcome::Packet(b)) => {
            let field = a
                .iter()
                .zip(b)
                .find(|(x, y)| x != y)
                .map_or("number of fields", |((name, _), _)| name);
            let ty = a.first().map_or("?", |(_, t)| t.as_str());
            both_accept(peer, ty, field, frame)
        }
        (Outcome::Refused(_), Outcome::Refused(_)) => ("both refuse".into(), Side::Either),
    }
}

/// The protocol level a CONNECT frame announces, if it gets that far.
fn connect_level(frame: &[u8]) -> Option<u8> {
    let header = 1 + frame.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    let name_len = usize::from(u16::from_be_bytes([
        *frame.get(header)?,
        *frame.get(header + 1)?,
    ]));
    frame.get(header + 2 + name_len).copied()
}

/// A peer refuses a packet we accept: the known reasons, found by running
/// the target (the README's table lists them with an input each).
fn peer_refuses(
    peer: &str,
    ty: &str,
    why: &str,
    frame: &[u8],
    binary_password: bool,
) -> (String, Side) {
    if why.starts_with("panicked") {
        // No input may crash a decoder.
        return (format!("crashes on a {ty}: {why}"), Side::Ours);
    }
    let v5 = peer == "rumqttc-v5";
    // The peer's error without its numbers, so that one reason is one row.
    let why = why.split('(').next().unwrap_or(why);
    match ty {
        // Each peer speaks one version; the CONNECT announced another.
        "connect" if connect_level(frame) != Some(if v5 { 5 } else { 4 }) => (
            format!("refuses a CONNECT of another version ({why})"),
            Side::Either,
        ),
        // 3.1.1 and 5.0 say a SUBACK's codes answer the SUBSCRIBE's filters
        // one for one, but set no minimum for a decoder to check.
        "suback" | "unsuback" if frame_body_len(frame) == Some(if v5 { 3 } else { 2 }) => (
            format!("refuses a {} with no codes ({why})", ty.to_uppercase()),
            Side::Either,
        ),
        // The password is Binary Data (3.1.3.5 in 3.1.1, 3.1.3.6 in 5.0).
        "connect" if binary_password => (
            format!("refuses a CONNECT whose password is not UTF-8 ({why})"),
            Side::Ours,
        ),
        // rumqttc's 5.0 codec has no AUTH packet.
        "auth" if v5 => ("does not implement AUTH".into(), Side::Either),
        // 5.0 lets DISCONNECT (3.14.2.1) and the acks (3.4.2.1, …) leave out
        // a 0x00 reason code and empty properties: the short forms are valid.
        "disconnect" | "puback" | "pubrec" | "pubrel" | "pubcomp" if v5 => (
            format!("refuses the short form of a {ty} ({why})"),
            Side::Ours,
        ),
        _ => (format!("refuses a {ty} we accept: {why}"), Side::Unknown),
    }
}

/// Both decoders accept the frame but read `field` differently: the known
/// reasons.
fn both_accept(peer: &str, ty: &str, field: &str, frame: &[u8]) -> (String, Side) {
    match (ty, field) {
        // A 3.1.1 decoder reading a 5.0 CONNECT's properties as its payload.
        ("connect", _) if peer != "rumqttc-v5" && connect_level(frame) != Some(4) => (
            "reads a CONNECT of another version as 3.1.1".into(),
            Side::Ours,
        ),
        // The payload is what follows the properties, whose length is given
        // (2.2.2.1); a different payload means the peer counted them wrongly.
        ("publish", "payload") if peer == "rumqttc-v5" => (
            "miscounts a PUBLISH's properties, and reads some as payload".into(),
            Side::Ours,
        ),
        _ => (format!("reads a {ty}'s {field} differently"), Side::Unknown),
    }
}

/// The remaining length of a frame, read as [`whole_frame`] does.
fn frame_body_len(frame: &[u8]) -> Option<usize> {
    let header = 1 + frame.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    frame.len().checked_sub(header)
}
