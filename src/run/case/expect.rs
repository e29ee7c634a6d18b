//! Expect steps: what a step waits for, matched against what came — one
//! packet, one of several outcomes, several packets in any order, or the
//! connection closing — and how a mismatch becomes a failure (or a skip,
//! where it shows a missing feature).

use std::time::Duration;

use mqtt_codec::{Packet, PacketType};
use serde_json::Value;

use super::super::matching::{self, Mismatch};
use super::super::verdict::{fail, Stop};
use super::Logic;
use crate::net::Event;
use crate::scenario::{Choice, CloseSpec, Matcher};

impl Logic {
    /// An expected packet as a failure shows it: placeholders filled in,
    /// captures made so far by their value, captures still to make as `$x`.
    pub(super) fn describe(&self, m: &Matcher, client: &str) -> String {
        let fields = self
            .vars
            .to_expect(&Value::Object(m.fields.clone()), client);
        match matching::with_captures(&fields, &self.captures) {
            Value::Object(f) if !f.is_empty() => format!("{} {}", m.ty.name(), Value::Object(f)),
            _ => m.ty.name().to_string(),
        }
    }

    /// Whether packet `p` on `client` matches `m`; captures on success.
    pub(super) fn matches(
        &mut self,
        p: &Packet,
        m: &Matcher,
        client: &str,
    ) -> Result<(), Mismatch> {
        let Value::Object(want) = self
            .vars
            .to_expect(&Value::Object(m.fields.clone()), client)
        else {
            return Err(Mismatch::Missing {
                field: "fields".into(),
            });
        };
        matching::match_packet(p, m, &want, self.protocol, &mut self.captures)
    }

    /// Checks that `ev` is a packet matching `m`.
    pub(super) fn check_event(
        &mut self,
        client: &str,
        ev: &Event,
        m: &Matcher,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let expected = self.describe(m, client);
        let Event::Packet(p, _) = ev else {
            return Err(fail(expected, ev, self.protocol, timeout));
        };
        match self.matches(p, m, client) {
            Ok(()) => Ok(()),
            Err(why) => {
                if let Some(skip) = self.granted_below_required(p) {
                    return Err(Stop::Skip(skip));
                }
                if let Some(skip) = self.qos2_downgraded(p, &[m]) {
                    return Err(skip);
                }
                if self.only_dup_missing(p, m, client) {
                    self.broken = Some(vec!["MQTT-3.3.1-1".to_string()]);
                }
                let mut f = fail(expected, ev, self.protocol, timeout);
                if let Stop::Fail(x) = &mut f {
                    x.got = format!("{} ({why})", x.got);
                }
                Err(f)
            }
        }
    }

    /// MQTT-3.3.1-1: a re-delivered PUBLISH carries DUP 1. Where the awaited
    /// re-delivery came and differs only in its DUP flag, that statement is
    /// the one broken, not the step's (which are about the re-delivery
    /// itself).
    fn only_dup_missing(&mut self, p: &Packet, m: &Matcher, client: &str) -> bool {
        if m.ty != PacketType::Publish || m.fields.get("dup") != Some(&Value::Bool(true)) {
            return false;
        }
        let mut without = m.clone();
        without.fields.remove("dup");
        self.matches(p, &without, client).is_ok()
    }

    /// A 3.x broker without QoS 2 answers a QoS 2 PUBLISH as QoS 1 (a
    /// PUBACK where a PUBREC was awaited): what needs QoS 2 does not apply
    /// to it. (A 5.0 broker says so in CONNACK, and must refuse QoS 2.)
    fn qos2_downgraded(&self, p: &Packet, awaited: &[&Matcher]) -> Option<Stop> {
        let puback_for_pubrec =
            matches!(p, Packet::PubAck(_)) && awaited.iter().any(|m| m.ty == PacketType::PubRec);
        (puback_for_pubrec && !self.protocol.is_v5()).then(|| {
            Stop::Skip(
                "requires qos2: the broker answered a QoS 2 PUBLISH with PUBACK, as for QoS 1"
                    .into(),
            )
        })
    }

    /// A SUBACK granting less than the QoS a scenario requires tells that the
    /// broker does not offer it (3.1.1 has no Maximum QoS in CONNACK).
    fn granted_below_required(&self, p: &Packet) -> Option<String> {
        use crate::scenario::Capability;
        let Packet::SubAck(ack) = p else {
            return None;
        };
        let granted = ack.reason_codes.iter().copied().filter(|c| *c <= 2).max()?;
        self.scenario.requires.iter().find_map(|c| {
            let needed = match c {
                Capability::Qos2 if granted < 2 => 2,
                Capability::Qos1 if granted < 1 => 1,
                _ => return None,
            };
            Some(format!(
                "requires {}: the broker granted at most QoS {granted} where QoS {needed} was asked",
                c.as_str()
            ))
        })
    }

    /// One of `choices`; where none comes and the scenario lists a skip
    /// outcome, the case is that skip (unless what came broke a statement
    /// of its own, as a DISCONNECT before any CONNACK does).
    pub(super) async fn expect_one_of(
        &mut self,
        client: &str,
        choices: &[Choice],
        timeout: Duration,
    ) -> Result<(), Stop> {
        let skip = choices.iter().find_map(|c| match c {
            Choice::Skip(why) => Some(why.clone()),
            _ => None,
        });
        match self.one_of(client, choices, timeout).await {
            Err(Stop::Fail(_)) if skip.is_some() && self.broken.is_none() => {
                Err(Stop::Skip(skip.unwrap_or_default()))
            }
            other => other,
        }
    }

    async fn one_of(
        &mut self,
        client: &str,
        choices: &[Choice],
        timeout: Duration,
    ) -> Result<(), Stop> {
        let deadline = self.now() + timeout;
        let listed: Vec<String> = choices
            .iter()
            .map(|c| match c {
                Choice::Packet(m) => self.describe(m, client),
                Choice::Close(c) => c.to_string(),
                Choice::Skip(why) => format!("else a skip ({why})"),
                Choice::SkipOn(m, why) => format!("{} (a skip: {why})", self.describe(m, client)),
            })
            .collect();
        let expected = format!("one of: {}", listed.join(" | "));
        let ev = self.next(client, deadline).await?;
        let p = match &ev {
            Event::Packet(p, _) => p,
            Event::Closed(_) if choices.iter().any(|c| matches!(c, Choice::Close(_))) => {
                return Ok(())
            }
            _ => return Err(fail(expected, &ev, self.protocol, timeout)),
        };
        for c in choices {
            match c {
                Choice::Packet(m) if self.matches(p, m, client).is_ok() => return Ok(()),
                Choice::SkipOn(m, why) if self.matches(p, m, client).is_ok() => {
                    return Err(Stop::Skip(why.clone()))
                }
                _ => {}
            }
        }
        // A DISCONNECT that a listed DISCONNECT outcome refused is not let
        // through by a close outcome: the scenario said which it takes.
        let disconnect_listed = choices
            .iter()
            .any(|c| matches!(c, Choice::Packet(m) if m.ty == PacketType::Disconnect));
        if let (Packet::Disconnect(d), false) = (p, disconnect_listed) {
            if let Some(stop) = self.early_disconnect(client, &ev, &expected, timeout) {
                return Err(stop);
            }
            let accepts = choices.iter().any(|c| match c {
                Choice::Close(spec) => {
                    spec.disconnect.is_empty() || spec.disconnect.contains(&d.reason_code)
                }
                Choice::Packet(_) | Choice::Skip(_) | Choice::SkipOn(..) => false,
            });
            if accepts {
                return match self.next(client, deadline).await? {
                    Event::Closed(_) => Ok(()),
                    other => Err(fail(
                        format!("{expected} (the connection to close after the DISCONNECT)"),
                        &other,
                        self.protocol,
                        timeout,
                    )),
                };
            }
        }
        Err(fail(expected, &ev, self.protocol, timeout))
    }

    pub(super) async fn expect_unordered(
        &mut self,
        client: &str,
        matchers: &[Matcher],
        timeout: Duration,
    ) -> Result<(), Stop> {
        let deadline = self.now() + timeout;
        let mut left: Vec<&Matcher> = matchers.iter().collect();
        while !left.is_empty() {
            let listed: Vec<String> = left.iter().map(|m| self.describe(m, client)).collect();
            let expected = format!("in any order: {}", listed.join(" | "));
            let ev = self.next(client, deadline).await?;
            let Event::Packet(p, _) = &ev else {
                return Err(fail(expected, &ev, self.protocol, timeout));
            };
            let found = (0..left.len()).find(|&i| {
                left.get(i)
                    .is_some_and(|m| self.matches(p, m, client).is_ok())
            });
            match found {
                Some(i) => {
                    left.remove(i);
                }
                None => {
                    if let Some(skip) = self.qos2_downgraded(p, &left) {
                        return Err(skip);
                    }
                    return Err(fail(expected, &ev, self.protocol, timeout));
                }
            }
        }
        Ok(())
    }

    /// MQTT-3.14.0-1: a 5.0 server sends DISCONNECT only after a CONNACK
    /// that accepted the connection. A close outcome that would take such a
    /// DISCONNECT fails on that statement instead.
    fn early_disconnect(
        &mut self,
        client: &str,
        ev: &Event,
        expected: &str,
        timeout: Duration,
    ) -> Option<Stop> {
        let Event::Packet(Packet::Disconnect(_), _) = ev else {
            return None;
        };
        if !self.protocol.is_v5() || self.conns.get(client).is_some_and(|c| c.connected) {
            return None;
        }
        self.broken = Some(vec!["MQTT-3.14.0-1".to_string()]);
        Some(fail(
            format!(
                "{expected}; not a DISCONNECT, which a server sends only after a CONNACK that accepted the connection"
            ),
            ev,
            self.protocol,
            timeout,
        ))
    }

    pub(super) async fn expect_close(
        &mut self,
        client: &str,
        spec: &CloseSpec,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let deadline = self.now() + timeout;
        loop {
            let ev = self.next(client, deadline).await?;
            match &ev {
                Event::Closed(_) => return Ok(()),
                Event::Packet(Packet::Disconnect(d), _)
                    if spec.disconnect.is_empty() || spec.disconnect.contains(&d.reason_code) =>
                {
                    if let Some(stop) =
                        self.early_disconnect(client, &ev, &spec.to_string(), timeout)
                    {
                        return Err(stop);
                    }
                }
                _ => return Err(fail(spec.to_string(), &ev, self.protocol, timeout)),
            }
        }
    }
}
