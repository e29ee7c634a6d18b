//! What the spec says about a packet on the wire: the statements of the
//! catalogue that govern it ([`statements`]), and a checker that follows a
//! conversation and flags what either side does against the spec
//! ([`Checker`]). `pub`/`sub --trace` and `proxy` print both beside every
//! packet, so a reader sees which rules each packet is bound by, and a client
//! library is held to the spec as well as a broker.
//!
//! The statements of a packet are those of its packet type's section (3.3
//! for PUBLISH…) and those that its fields bring in ([`crate::field_rules`]:
//! a packet identifier on a QoS 1 PUBLISH, a Topic Alias, a will…).

use mqtt_codec::catalogue::{self, Statement};
use mqtt_codec::{Packet, PacketType, Protocol, QoS, Sender};

mod checker;
pub mod text;

pub use checker::{Checker, Violation};

/// The statements that govern one packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// The section of its packet type, e.g. `3.3`.
    pub section: String,
    /// Ids that a field of this packet brings in, with the field, in wire order.
    pub fields: Vec<(&'static str, &'static str)>,
    /// Ids of the packet type's section (in catalogue order), without those of `fields`.
    pub section_ids: Vec<&'static str>,
}

impl Annotation {
    /// Every id, field ones first, each once.
    pub fn ids(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for id in self
            .fields
            .iter()
            .map(|(_, id)| *id)
            .chain(self.section_ids.iter().copied())
        {
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }
}

/// The section of the spec that defines a packet type: 3.1 for CONNECT …
/// 3.15 for AUTH (the type's number).
pub fn section_of(ty: PacketType) -> String {
    format!("3.{}", ty as u8)
}

/// The statements of `protocol`'s catalogue in `section` and its subsections.
pub fn section_statements(protocol: Protocol, section: &str) -> Vec<&'static Statement> {
    let prefix = format!("{section}.");
    catalogue::statements(protocol)
        .iter()
        .filter(|s| s.section == section || s.section.starts_with(&prefix))
        .collect()
}

/// The field names of `packet` that [`crate::field_rules`] knows, in wire order.
fn field_names(packet: &Packet, protocol: Protocol) -> Vec<&'static str> {
    let mut names = vec!["fixed_header"];
    if protocol.is_v5() {
        names.push("remaining_length");
    }
    match packet {
        Packet::Connect(c) => {
            names.extend([
                "protocol_name",
                "protocol_level",
                "connect_flags",
                "keep_alive",
            ]);
            names.push("client_id");
            if c.will.is_some() {
                names.extend(["will_topic", "will_payload"]);
            }
            if c.username.is_some() {
                names.push("username");
            }
            if c.password.is_some() {
                names.push("password");
            }
        }
        Packet::ConnAck(_) => names.extend(["acknowledge_flags", "reason_code"]),
        Packet::Publish(p) => {
            names.push("topic");
            if p.qos != QoS::AtMostOnce {
                names.push("packet_id");
            }
        }
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
            names.extend(["packet_id", "reason_code"]);
        }
        Packet::Subscribe(_) => names.extend(["packet_id", "topic_filter", "subscription_options"]),
        Packet::SubAck(_) | Packet::UnsubAck(_) => names.extend(["packet_id", "reason_code"]),
        Packet::Unsubscribe(_) => names.extend(["packet_id", "topic_filter"]),
        Packet::Disconnect(_) | Packet::Auth(_) => names.push("reason_code"),
        Packet::PingReq | Packet::PingResp => {}
    }
    if protocol.is_v5() {
        let mut props: Vec<&mqtt_codec::Properties> = packet.properties().into_iter().collect();
        if let Packet::Connect(c) = packet {
            if let Some(w) = &c.will {
                props.push(&w.properties);
            }
        }
        for p in props.into_iter().flat_map(|p| p.iter()) {
            let name = mqtt_codec::props::info(p.id()).map_or("", |i| i.name);
            if name == "user_property" {
                names.extend(["user_property.name", "user_property.value"]);
            } else if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

/// The statements that govern `packet`, sent by `from` in `protocol`.
pub fn statements(packet: &Packet, protocol: Protocol, from: Sender) -> Annotation {
    let protocol = match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol,
    };
    let ty = packet.packet_type();
    let mut fields: Vec<(&'static str, &'static str)> = Vec::new();
    for name in field_names(packet, protocol) {
        for id in crate::field_rules::statements(name, ty, protocol, from) {
            if !fields.iter().any(|(_, x)| x == id) {
                fields.push((name, id));
            }
        }
    }
    let section = section_of(ty);
    let section_ids = section_statements(protocol, &section)
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !fields.iter().any(|(_, x)| x == id))
        .collect();
    Annotation {
        section,
        fields,
        section_ids,
    }
}

#[cfg(test)]
mod tests;
