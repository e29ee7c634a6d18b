//! What the case keeps track of to judge fairly: the subscriptions its
//! clients hold (a PUBLISH matching none of them is a finding of its own,
//! not a failure of the step that met it), bytes that do not decode (charged
//! to the statement they break), evidence that the target speaks the case's
//! version, and the retained messages to clear when a case stops early.

use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, Publish};
use serde_json::Value;

use super::super::verdict::{fail, refuses_version, CaseError, Stop};
use super::Logic;
use crate::net::Event;
use crate::packet;

impl Logic {
    /// Notes what a packet this case sends changes: the client's
    /// subscriptions, the retained messages the case leaves.
    pub(super) fn track_sent(&mut self, client: &str, packet: &Packet, protocol: Protocol) {
        match packet {
            Packet::Connect(c) => {
                // A new connection: no UNSUBSCRIBE of it is outstanding.
                self.unsubscribes.remove(client);
                let own = self.vars.client_ids.get(client).map(String::as_str);
                if own != Some(&*c.client_id) {
                    // Another id: another session, whose filters it cannot know.
                    self.subscriptions.insert(client.to_string(), None);
                } else if c.clean_start {
                    self.subscriptions
                        .insert(client.to_string(), Some(Vec::new()));
                } else {
                    self.subscriptions
                        .entry(client.to_string())
                        .or_insert_with(|| Some(Vec::new()));
                }
            }
            Packet::Subscribe(s) => {
                let held = self.ever_subscribed.entry(client.to_string()).or_default();
                for f in &s.filters {
                    let filter = match mqtt_codec::topic::split_shared(&f.filter) {
                        Some(Ok((_, inner))) => inner.to_string(),
                        _ => f.filter.to_string(),
                    };
                    held.push(filter.clone());
                    if let Some(Some(filters)) = self.subscriptions.get_mut(client) {
                        filters.push(filter);
                    }
                }
            }
            Packet::Unsubscribe(u) => {
                let (open, answered) = self.unsubscribes.entry(client.to_string()).or_default();
                open.push(u.packet_id);
                answered.retain(|id| *id != u.packet_id);
                if let Some(Some(filters)) = self.subscriptions.get_mut(client) {
                    filters.retain(|f| !u.filters.iter().any(|x| &**x == f));
                }
            }
            Packet::Publish(p) if p.retain => {
                let topic = p.topic.to_string();
                self.retained.retain(|(t, _)| *t != topic);
                if !p.payload.is_empty() {
                    self.retained.push((topic, protocol));
                }
            }
            _ => {}
        }
    }

    /// An event as a step gets it. A PUBLISH on a topic that matches none of
    /// the client's subscriptions is a finding on its own statement
    /// (MQTT-3.3.2-3; MQTT-4.7.2-1 where only a wildcard filter would match a
    /// `$` topic), whatever the step waited for.
    pub(super) fn judge_arrival(&mut self, client: &str, ev: Event) -> Result<Event, Stop> {
        if let Event::Malformed(e, _) = &ev {
            // An acknowledgement with packet identifier 0 echoes a packet of
            // the case's that had 0 (a deliberately bad one): what it breaks
            // is what the step checks (closing on the bad packet), not the
            // echo rule the decoder names.
            if e.kind == mqtt_codec::ErrorKind::PacketIdZero {
                return Ok(ev);
            }
            self.malformed = Some(
                e.statement()
                    .and_then(|id| mqtt_codec::catalogue::lookup(self.protocol, id))
                    .map(|st| st.id.to_string()),
            );
            return Ok(ev);
        }
        if let Event::Packet(Packet::UnsubAck(a), _) = &ev {
            return self.judge_unsuback(client, a.packet_id, ev);
        }
        let Event::Packet(Packet::Publish(p), _) = &ev else {
            return Ok(ev);
        };
        let Some(Some(filters)) = self.subscriptions.get(client) else {
            return Ok(ev);
        };
        // A 5.0 PUBLISH may name its topic by an alias only.
        if p.topic.is_empty()
            || filters
                .iter()
                .any(|f| mqtt_codec::topic::matches(f, &p.topic))
        {
            return Ok(ev);
        }
        // A subscription the client held earlier in the case (before an
        // UNSUBSCRIBE, a clean start): whether it should still deliver is
        // what the step checks, under its own statements.
        let held_once = self
            .ever_subscribed
            .get(client)
            .is_some_and(|fs| fs.iter().any(|f| mqtt_codec::topic::matches(f, &p.topic)));
        if held_once {
            return Ok(ev);
        }
        let statement = if wildcard_on_dollar(filters, p) {
            "MQTT-4.7.2-1"
        } else {
            "MQTT-3.3.2-3"
        };
        let mut broken = vec![statement.to_string()];
        // A step that names its own statements says what it checks: a
        // delivery it must not see breaks those too.
        let own = self
            .scenario
            .steps
            .get(self.step.wrapping_sub(1))
            .and_then(|s| s.own_statements(self.protocol))
            .unwrap_or(&[]);
        broken.extend(own.iter().filter(|id| id.as_str() != statement).cloned());
        self.broken = Some(broken);
        let shown: Vec<Value> = filters.iter().map(|f| Value::from(f.as_str())).collect();
        Err(fail(
            format!(
                "no PUBLISH on a topic that matches none of client `{client}`'s subscriptions ({})",
                Value::Array(shown)
            ),
            &ev,
            self.protocol,
            Duration::ZERO,
        ))
    }

    /// MQTT-3.10.4-6: one UNSUBSCRIBE, however many filters, gets one
    /// UNSUBACK. A second UNSUBACK for an UNSUBSCRIBE already answered (and
    /// not sent again) is a finding on that statement, wherever it comes.
    fn judge_unsuback(&mut self, client: &str, id: u16, ev: Event) -> Result<Event, Stop> {
        let Some((open, answered)) = self.unsubscribes.get_mut(client) else {
            return Ok(ev);
        };
        if let Some(i) = open.iter().position(|x| *x == id) {
            open.remove(i);
            answered.push(id);
            return Ok(ev);
        }
        if !answered.contains(&id) {
            return Ok(ev);
        }
        self.broken = Some(vec!["MQTT-3.10.4-6".to_string()]);
        Err(fail(
            format!(
                "no second UNSUBACK for the UNSUBSCRIBE {id}, which one UNSUBACK answered already"
            ),
            &ev,
            self.protocol,
            Duration::ZERO,
        ))
    }

    /// No connection of the case was accepted: is there evidence that the
    /// target speaks the case's version? A profile that lists it, or a
    /// minimal CONNECT of it answered in it. Otherwise the verdict (pass or
    /// fail) would be about a version the target does not speak: a skip,
    /// or an error when the target answers no CONNECT at all.
    pub(super) async fn version_evidence(&mut self) -> Option<Stop> {
        if self
            .opts
            .profile
            .as_deref()
            .is_some_and(|p| p.protocols.contains(&self.protocol))
        {
            return None;
        }
        let v = self.protocol;
        match self.probe_connect(v).await {
            Some(code) if refuses_version(v, code) => Some(Stop::Skip(format!(
                "the target does not speak MQTT {v}: it refuses a minimal CONNECT of that version with CONNACK 0x{code:02X}"
            ))),
            Some(_) => None,
            None => match self.speaks_another_version().await {
                Some(other) => Some(Stop::Skip(format!(
                    "the target does not speak MQTT {v}: it answers no CONNECT of that version, and answers an MQTT {other} one"
                ))),
                None => Some(Stop::Error(CaseError::NoAnswer {
                    expected: format!("a CONNACK to a valid MQTT {v} CONNECT, as evidence that the target speaks it"),
                    got: "no CONNACK to a CONNECT of any version".into(),
                })),
            },
        }
    }

    /// Clears the retained messages this case published (an empty retained
    /// PUBLISH on each topic), on a connection of its own: a case that
    /// stopped early never ran its own clean-up steps, and what it left
    /// would reach the next run's subscribers.
    pub(super) async fn clear_retained(&mut self) {
        let retained = std::mem::take(&mut self.retained);
        let Some((_, protocol)) = retained.first().cloned() else {
            return;
        };
        // Not a usable client name: never one of the scenario's.
        let name = "#cleanup".to_string();
        if self.open_as(&name, None, protocol).await.is_err() {
            return;
        }
        let connect = serde_json::json!({
            "type": "CONNECT",
            "protocol": protocol.as_str(),
            "client_id": format!("{}-clean", self.vars.case),
        });
        let mut packets: Vec<Packet> = Vec::new();
        if let Ok((p, _)) = packet::packet_from_value(&connect, protocol) {
            packets.push(p);
        }
        for (topic, _) in &retained {
            packets.push(Packet::Publish(Publish {
                retain: true,
                topic: topic.as_str().into(),
                payload: Bytes::new(),
                ..Default::default()
            }));
        }
        packets.push(Packet::Disconnect(Default::default()));
        let timeout = self.opts.step_timeout;
        let deadline = self.now() + timeout;
        for (i, p) in packets.into_iter().enumerate() {
            if !self.send_plain(&name, p, protocol, timeout).await {
                break;
            }
            // After the CONNECT: publish only once it is accepted.
            if i == 0
                && !matches!(self.read(&name, deadline).await, Event::Packet(Packet::ConnAck(a), _) if a.code == 0)
            {
                break;
            }
        }
        self.close(&name).await;
        self.conns.remove(&name);
    }
}

/// Whether a `$` topic would match one of `filters` but for MQTT-4.7.2-1.
fn wildcard_on_dollar(filters: &[String], p: &Publish) -> bool {
    let Some(rest) = p.topic.strip_prefix('$') else {
        return false;
    };
    let plain = format!("x{rest}");
    filters
        .iter()
        .any(|f| f.starts_with(['+', '#']) && mqtt_codec::topic::matches(f, &plain))
}
