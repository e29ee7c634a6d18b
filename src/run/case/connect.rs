//! Connecting: a client's CONNECT and its CONNACK, what the first CONNACK
//! tells of the broker, and the probes that tell whether a target that
//! refused, closed on or ignored a CONNECT simply does not speak its version
//! (module docs of [`crate::run`]).

use std::time::Duration;

use mqtt_codec::{Packet, PacketType, Protocol};
use serde_json::{Map, Value};

use super::super::verdict::{refuses_version, Capabilities, CaseError, Stop};
use super::Logic;
use crate::client::Event;
use crate::packet;
use crate::profile::Profile;
use crate::scenario::Matcher;

impl Logic {
    /// Opens a connection, sends CONNECT (the client's fields, then `extra`)
    /// and expects a CONNACK matching `connack` (default: code 0).
    pub(super) async fn connect(
        &mut self,
        name: &str,
        extra: &Map<String, Value>,
        connack: Option<&Matcher>,
        expect_connack: bool,
    ) -> Result<(), Stop> {
        self.close(name).await;
        self.open(name).await?;
        let mut fields = self
            .scenario
            .client(name)
            .map(|c| c.fields.clone())
            .unwrap_or_default();
        fields.extend(extra.clone());
        for (key, value) in [
            ("username", &self.opts.username),
            ("password", &self.opts.password),
        ] {
            if let Some(v) = value {
                fields.entry(key).or_insert_with(|| Value::from(v.as_str()));
            }
        }
        fields.insert("type".into(), Value::from("CONNECT"));
        self.send_packet(name, fields).await?;
        if !expect_connack {
            return Ok(());
        }
        let first = self.caps.is_none();
        let timeout = self.timeout(None);
        let ev = self.next(name, self.now() + timeout).await?;
        if first {
            if let Some(stop) = self.first_answer(name, &ev, connack.is_none()).await {
                return Err(stop);
            }
        }
        let default = Matcher {
            ty: PacketType::ConnAck,
            fields: [("reason_code".to_string(), Value::from(0))]
                .into_iter()
                .collect(),
        };
        let m = connack.unwrap_or(&default);
        match self.check_event(name, &ev, m, timeout) {
            Ok(()) => Ok(()),
            // The broker answered the CONNECT with bytes that do not decode,
            // or with another packet than CONNACK (or AUTH): a verdict on the broker.
            Err(Stop::Fail(f))
                if connack.is_none()
                    && self.step == 0
                    && matches!(&ev, Event::Malformed(..) | Event::Packet(..))
                    // 5.0 lets AUTH come before the CONNACK.
                    && !matches!(&ev, Event::Packet(Packet::ConnAck(_) | Packet::Auth(_), _)) =>
            {
                // MQTT-3.2.0-1: the server's first packet is a CONNACK.
                let id = match &ev {
                    Event::Malformed(e, _) => e.statement(),
                    _ => Some("MQTT-3.2.0-1"),
                };
                let known = id.and_then(|id| mqtt_codec::catalogue::lookup(self.protocol, id));
                self.broken = Some(known.map(|st| st.id.to_string()).into_iter().collect());
                Err(Stop::Fail(f))
            }
            // Refused, closed or silent: no verdict could be had.
            Err(Stop::Fail(f)) if connack.is_none() && self.step == 0 => {
                Err(Stop::Error(CaseError::NotConnected {
                    client: name.to_string(),
                    why: format!("expected {}; got {}", f.expected, f.got),
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// What the answer to the case's first CONNECT says before it is
    /// matched: a version the target does not speak (skip), a feature it
    /// lacks (skip), a profile it contradicts (error). `default`: the step
    /// expects the usual CONNACK 0, so a refusal is not what it tests.
    async fn first_answer(&mut self, name: &str, ev: &Event, default: bool) -> Option<Stop> {
        match ev {
            Event::Packet(Packet::ConnAck(ack), _) => {
                // A broker that refuses the version is not failing this scenario.
                if refuses_version(self.protocol, ack.code) && default {
                    return Some(Stop::Skip(format!(
                        "the target does not speak MQTT {}: it refused the CONNECT with CONNACK 0x{:02X}",
                        self.protocol, ack.code
                    )));
                }
                if ack.code == 0 {
                    // The first CONNACK tells what the broker offers.
                    let caps = Capabilities::from_connack(&ack.properties, self.protocol);
                    if let Some(why) = self.scenario.requires.iter().find_map(|r| caps.missing(*r))
                    {
                        return Some(Stop::Skip(why));
                    }
                    self.caps = Some(caps);
                }
                None
            }
            // Closed on the CONNECT, no CONNACK: a broker that does not
            // speak the version may do just that.
            Event::Closed(_) if default => {
                if let Some(p) = self.profile_listing_version() {
                    return Some(Stop::Error(CaseError::NotConnected {
                        client: name.to_string(),
                        why: format!(
                            "the target closed the connection on an MQTT {} CONNECT without a CONNACK, though {p} lists MQTT {}",
                            self.protocol, self.protocol
                        ),
                    }));
                }
                // It accepts a minimal CONNECT of this version: it speaks it,
                // and closed on something else in this one.
                if self.probe_connect(self.protocol).await == Some(0) {
                    return None;
                }
                let other = self.speaks_another_version().await?;
                Some(Stop::Skip(format!(
                    "the target does not speak MQTT {}: it closed the connection on the CONNECT without a CONNACK, and answers an MQTT {other} CONNECT",
                    self.protocol
                )))
            }
            Event::Timeout if default => self.not_spoken_after_silence().await.map(Stop::Skip),
            _ => None,
        }
    }

    /// The run's profile, when it lists the case's version (the target then
    /// speaks it, whatever it does to a CONNECT).
    fn profile_listing_version(&self) -> Option<&Profile> {
        self.opts
            .profile
            .as_deref()
            .filter(|p| p.protocols.contains(&self.protocol))
    }

    /// After the target closed the connection on this case's first CONNECT
    /// without a CONNACK: does it answer a CONNECT of another version? Then
    /// it does not speak this one (a 3.1.1-only broker closes on a 5.0 or a
    /// 3.1 CONNECT, as MQTT-3.1.2-2 lets it).
    pub(super) async fn speaks_another_version(&mut self) -> Option<Protocol> {
        let other = match self.protocol {
            Protocol::V3_1 => Protocol::V3_1_1,
            Protocol::V3_1_1 => Protocol::V5,
            Protocol::V5 => Protocol::V3_1_1,
        };
        self.probe_connect(other).await.map(|_| other)
    }

    /// The target said nothing to this case's first CONNECT: is it a version
    /// it does not speak? Yes when it refuses a minimal CONNECT of the version
    /// (CONNACK 0x01, or 0x84 in 5.0), or answers none of that version but
    /// one of another (a broker that reads a 5.0 CONNECT's properties as
    /// 3.1.1 fields waits for bytes that never come). Not when a profile
    /// lists the version.
    async fn not_spoken_after_silence(&mut self) -> Option<String> {
        if self.profile_listing_version().is_some() {
            return None;
        }
        match self.probe_connect(self.protocol).await {
            Some(code) if refuses_version(self.protocol, code) => Some(format!(
                "the target does not speak MQTT {}: it did not answer the CONNECT, and refuses a minimal one with CONNACK 0x{code:02X}",
                self.protocol
            )),
            Some(_) => None,
            None => {
                let other = self.speaks_another_version().await?;
                Some(format!(
                    "the target does not speak MQTT {}: it answers no CONNECT of that version, and answers an MQTT {other} one",
                    self.protocol
                ))
            }
        }
    }

    /// The code of the CONNACK with which the target answers a valid CONNECT
    /// of `version`, on a connection of its own with a client id of its own;
    /// `None` when nothing answers.
    pub(super) async fn probe_connect(&mut self, version: Protocol) -> Option<u8> {
        self.probes += 1;
        // Not a usable client name: never one of the scenario's.
        let name = format!("#probe{}", self.probes);
        self.open_as(&name, None, version).await.ok()?;
        let answered = self.probe_on(&name, version).await;
        if answered.is_some() && self.conns.get(&name).is_some_and(|c| c.open && c.connected) {
            let d = Packet::Disconnect(Default::default());
            if let Ok(bytes) = mqtt_codec::encode_bytes(&d, version) {
                let deadline = self.now() + Duration::from_millis(500);
                let _ = self
                    .io
                    .call(super::Request::Send {
                        client: name.clone(),
                        bytes,
                        packet: Some(d),
                        deadline,
                    })
                    .await;
            }
        }
        self.close(&name).await;
        self.conns.remove(&name);
        answered
    }

    async fn probe_on(&mut self, name: &str, version: Protocol) -> Option<u8> {
        let connect = serde_json::json!({
            "type": "CONNECT",
            "protocol": version.as_str(),
            "client_id": format!("{}-probe", self.vars.case),
        });
        let (packet, _) = packet::packet_from_value(&connect, version).ok()?;
        let bytes = mqtt_codec::encode_bytes(&packet, version).ok()?;
        let deadline = self.now() + self.opts.step_timeout;
        let sent = self
            .io
            .call(super::Request::Send {
                client: name.to_string(),
                bytes,
                packet: Some(packet),
                deadline,
            })
            .await;
        if !matches!(sent, super::Reply::Sent(super::SendOutcome::Written)) {
            return None;
        }
        match self.read(name, deadline).await {
            Event::Packet(Packet::ConnAck(ack), _) => Some(ack.code),
            _ => None,
        }
    }

    /// After a step's CONNECT announcing the case's version, with no
    /// connection of the case accepted yet: the target refused it as a
    /// version it does not speak (CONNACK 0x01, or 0x84 in 5.0) — at once
    /// for a well-formed CONNECT, after a probe showing that it does not
    /// accept a valid one either for a deliberately bad one — or closed on it
    /// and answers a CONNECT of another version. Then the case does not
    /// apply, as when the automatic CONNECT meets the same.
    pub(super) async fn version_not_spoken(&mut self, client: &str) -> Option<String> {
        let (plain, Some(ev)) = self.step_connect.get(client).cloned()? else {
            return None;
        };
        if self.conns.values().any(|c| c.connected) {
            return None;
        }
        match ev {
            Event::Packet(Packet::ConnAck(ack), _) => {
                if !refuses_version(self.protocol, ack.code)
                    || (!plain && self.probe_connect(self.protocol).await == Some(0))
                {
                    return None;
                }
                Some(format!(
                    "the target does not speak MQTT {}: it refused a CONNECT of that version with CONNACK 0x{:02X}",
                    self.protocol, ack.code
                ))
            }
            Event::Timeout => self.not_spoken_after_silence().await,
            Event::Closed(_) if plain => {
                // A target that accepts a minimal CONNECT of the version
                // speaks it: it closed on what this CONNECT asked for (an
                // authentication method it does not offer…).
                if self.profile_listing_version().is_some()
                    || self.probe_connect(self.protocol).await == Some(0)
                {
                    return None;
                }
                let other = self.speaks_another_version().await?;
                Some(format!(
                    "the target does not speak MQTT {}: it closed the connection on a well-formed CONNECT without a CONNACK, and answers an MQTT {other} CONNECT",
                    self.protocol
                ))
            }
            _ => None,
        }
    }
}
