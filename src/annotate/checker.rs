//! A conversation's rules that no single packet shows: the order of CONNECT
//! and CONNACK, packet identifiers in use, acknowledgements of identifiers
//! nobody sent, Receive Maximum, Topic Alias Maximum, Maximum QoS, packets
//! after a DISCONNECT. The checker watches both directions of one
//! connection and names the side that broke each statement.

use std::collections::HashMap;
use std::fmt;

use mqtt_codec::{DecodeError, Packet, Property, Protocol, QoS, Sender};

/// One thing a side did against the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Who did it.
    pub by: Sender,
    /// The statement it breaks, where the spec numbers one.
    pub statement: Option<&'static str>,
    /// What happened, for people.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.statement {
            Some(id) => write!(f, "{} broke {id}: {}", self.by.as_str(), self.message),
            None => write!(f, "{}: {}", self.by.as_str(), self.message),
        }
    }
}

/// Where a QoS 1 or 2 message that a side sent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// QoS 1, awaiting its PUBACK.
    Ack,
    /// QoS 2, awaiting its PUBREC.
    Rec,
    /// QoS 2 after PUBREC, awaiting its PUBCOMP.
    Comp,
}

/// What one side has under way, and what it announced.
#[derive(Debug, Default)]
struct Side {
    /// QoS 1/2 PUBLISHes this side sent, by packet identifier.
    publishing: HashMap<u16, Flow>,
    /// SUBSCRIBEs (the client's) awaiting their SUBACK: id → filters.
    subscribing: HashMap<u16, usize>,
    /// UNSUBSCRIBEs awaiting their UNSUBACK: id → filters.
    unsubscribing: HashMap<u16, usize>,
    /// The Receive Maximum this side announced (how many QoS 1/2 messages
    /// the other side may have unacknowledged).
    receive_maximum: Option<u16>,
    /// The Topic Alias Maximum this side announced (0: none).
    topic_alias_maximum: u16,
    disconnected: bool,
}

/// Follows one connection, both ways.
#[derive(Debug)]
pub struct Checker {
    protocol: Protocol,
    connect_seen: bool,
    connack_seen: bool,
    connack_ok: bool,
    session_present: bool,
    /// The CONNECT asked to resume a session (Clean Start 0).
    resuming: bool,
    maximum_qos: u8,
    retain_available: bool,
    client: Side,
    server: Side,
}

fn v(p: Protocol, v311: &'static str, v5: &'static str) -> Option<&'static str> {
    Some(if p.is_v5() { v5 } else { v311 })
}

impl Checker {
    /// A checker for a connection whose packets are decoded in `protocol`
    /// until a CONNECT names its own.
    pub fn new(protocol: Protocol) -> Checker {
        Checker {
            protocol,
            connect_seen: false,
            connack_seen: false,
            connack_ok: false,
            session_present: false,
            resuming: false,
            maximum_qos: 2,
            retain_available: true,
            client: Side::default(),
            server: Side::default(),
        }
    }

    /// The version the conversation speaks (its CONNECT's).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Bytes from `by` that the codec refused: the statement the decoder enforced.
    pub fn malformed(&mut self, by: Sender, e: &DecodeError) -> Violation {
        Violation {
            by,
            statement: e.statement(),
            message: format!("sent bytes that do not decode: {}", e.message()),
        }
    }

    fn sides(&mut self, by: Sender) -> (&mut Side, &mut Side) {
        match by {
            Sender::Client => (&mut self.client, &mut self.server),
            Sender::Server => (&mut self.server, &mut self.client),
        }
    }

    /// A packet `by` sent; what it breaks of the conversation's rules.
    pub fn packet(&mut self, by: Sender, packet: &Packet) -> Vec<Violation> {
        let mut out = Vec::new();
        let p = self.protocol;
        let mut flag = |statement: Option<&'static str>, message: String| {
            out.push(Violation {
                by,
                statement,
                message,
            })
        };
        let name = packet.packet_type().name();
        let (own, _) = self.sides(by);
        if own.disconnected {
            let id = match by {
                Sender::Client => v(p, "MQTT-3.14.4-2", "MQTT-3.14.4-1"),
                Sender::Server => p.is_v5().then_some("MQTT-3.14.4-1"),
            };
            flag(id, format!("sent {name} after its own DISCONNECT"));
        }
        match by {
            Sender::Client => self.order_client(packet, &mut flag),
            Sender::Server => self.order_server(packet, &mut flag),
        }
        self.flows(by, packet, &mut flag);
        if let Packet::Disconnect(_) = packet {
            self.sides(by).0.disconnected = true;
        }
        out
    }

    /// CONNECT first, and once.
    fn order_client(
        &mut self,
        packet: &Packet,
        flag: &mut impl FnMut(Option<&'static str>, String),
    ) {
        match packet {
            Packet::Connect(_) if self.connect_seen => flag(
                Some("MQTT-3.1.0-2"),
                "sent a second CONNECT on the connection: a protocol violation the server must close the connection for".into(),
            ),
            Packet::Connect(c) => {
                self.connect_seen = true;
                self.protocol = c.protocol;
                self.resuming = !c.clean_start;
                announce(&mut self.client, &c.properties);
            }
            other if !self.connect_seen => {
                self.connect_seen = true;
                flag(
                    Some("MQTT-3.1.0-1"),
                    format!("sent {} before CONNECT: the first packet must be CONNECT", other.packet_type().name()),
                );
            }
            _ => {}
        }
    }

    /// CONNACK first (AUTH aside in 5.0), and once.
    fn order_server(
        &mut self,
        packet: &Packet,
        flag: &mut impl FnMut(Option<&'static str>, String),
    ) {
        let p = self.protocol;
        match packet {
            Packet::ConnAck(_) if self.connack_seen => flag(
                v(p, "MQTT-3.2.0-1", "MQTT-3.2.0-2"),
                "sent a second CONNACK on the connection".into(),
            ),
            Packet::ConnAck(a) => {
                self.connack_seen = true;
                self.connack_ok = a.code == 0;
                self.session_present = a.session_present;
                announce(&mut self.server, &a.properties);
                for prop in a.properties.iter() {
                    match prop {
                        Property::MaximumQoS(q) => self.maximum_qos = *q,
                        Property::RetainAvailable(r) => self.retain_available = *r != 0,
                        _ => {}
                    }
                }
            }
            Packet::Auth(_) if p.is_v5() => {}
            Packet::Disconnect(_) if p.is_v5() && !self.connack_ok => flag(
                Some("MQTT-3.14.0-1"),
                "sent DISCONNECT before a successful CONNACK".into(),
            ),
            other if !self.connack_seen => flag(
                Some("MQTT-3.2.0-1"),
                format!(
                    "sent {} before CONNACK: its first packet must be CONNACK",
                    other.packet_type().name()
                ),
            ),
            _ => {}
        }
    }

    /// Packet identifiers, acknowledgements and the limits the peer announced.
    fn flows(
        &mut self,
        by: Sender,
        packet: &Packet,
        flag: &mut impl FnMut(Option<&'static str>, String),
    ) {
        let p = self.protocol;
        // A resumed session may finish exchanges this connection never saw;
        // until the CONNACK says, a CONNECT asking to resume may have one.
        let resumed = self.session_present || (self.resuming && !self.connack_seen);
        let reuse = match by {
            Sender::Client => v(p, "MQTT-2.3.1-2", "MQTT-2.2.1-3"),
            Sender::Server => v(p, "MQTT-2.3.1-4", "MQTT-2.2.1-4"),
        };
        let echo = v(p, "MQTT-2.3.1-6", "MQTT-2.2.1-5");
        let (maximum_qos, retain_available) = (self.maximum_qos, self.retain_available);
        let (own, peer) = self.sides(by);
        let in_use = |s: &Side, id: u16| {
            s.publishing.contains_key(&id)
                || s.subscribing.contains_key(&id)
                || s.unsubscribing.contains_key(&id)
        };
        match packet {
            Packet::Publish(x) => {
                if p.is_v5() {
                    for prop in x.properties.iter() {
                        if let Property::TopicAlias(a) = prop {
                            if *a > peer.topic_alias_maximum {
                                let id = match by {
                                    Sender::Client => "MQTT-3.3.2-9",
                                    Sender::Server => "MQTT-3.3.2-11",
                                };
                                flag(Some(id), format!("used topic alias {a}, above the Topic Alias Maximum {} the other side announced", peer.topic_alias_maximum));
                            }
                        }
                    }
                    if by == Sender::Client && x.qos.as_u8() > maximum_qos {
                        flag(Some("MQTT-3.2.2-11"), format!("published at QoS {} above the server's Maximum QoS {maximum_qos}", x.qos.as_u8()));
                    }
                    if by == Sender::Client && x.retain && !retain_available {
                        flag(Some("MQTT-3.2.2-14"), "published with RETAIN after the server said Retain Available 0".into());
                    }
                }
                if x.qos == QoS::AtMostOnce {
                    return;
                }
                let id = x.packet_id;
                let flow = if x.qos == QoS::AtLeastOnce { Flow::Ack } else { Flow::Rec };
                match own.publishing.get(&id).copied() {
                    Some(Flow::Comp) if x.dup => flag(
                        v(p, "MQTT-4.3.3-1", "MQTT-4.3.3-6"),
                        format!("sent PUBLISH {id} again after its PUBREL"),
                    ),
                    Some(f) if x.dup && f == flow => {}
                    _ if in_use(own, id) => flag(
                        reuse,
                        format!("sent a new PUBLISH with packet identifier {id}, which is still in use"),
                    ),
                    _ => {}
                }
                let before = own.publishing.len();
                own.publishing.insert(id, flow);
                if let Some(max) = peer.receive_maximum {
                    if p.is_v5() && own.publishing.len() > before && own.publishing.len() > usize::from(max) {
                        let sid = match by {
                            Sender::Client => "MQTT-3.3.4-7",
                            Sender::Server => "MQTT-3.3.4-9",
                        };
                        flag(Some(sid), format!("has {} QoS 1/2 messages unacknowledged, above the Receive Maximum {max} the other side announced", own.publishing.len()));
                    }
                }
            }
            Packet::PubAck(r) => match peer.publishing.get(&r.packet_id) {
                Some(Flow::Ack) => {
                    peer.publishing.remove(&r.packet_id);
                }
                _ if !resumed => flag(echo, format!("sent PUBACK {} for no QoS 1 PUBLISH in flight with that identifier", r.packet_id)),
                _ => {}
            },
            Packet::PubRec(r) => match peer.publishing.get(&r.packet_id) {
                Some(Flow::Rec | Flow::Comp) if r.reason_code >= 0x80 => {
                    peer.publishing.remove(&r.packet_id);
                }
                Some(Flow::Rec | Flow::Comp) => {
                    peer.publishing.insert(r.packet_id, Flow::Comp);
                }
                _ if !resumed => flag(echo, format!("sent PUBREC {} for no QoS 2 PUBLISH in flight with that identifier", r.packet_id)),
                _ => {}
            },
            Packet::PubRel(r) => match own.publishing.get(&r.packet_id) {
                Some(Flow::Comp) => {}
                _ if !resumed => flag(echo, format!("sent PUBREL {} for no QoS 2 PUBLISH of its own that was answered by PUBREC", r.packet_id)),
                _ => {}
            },
            Packet::PubComp(r) => match peer.publishing.get(&r.packet_id) {
                Some(Flow::Comp) => {
                    peer.publishing.remove(&r.packet_id);
                }
                _ if !resumed => flag(echo, format!("sent PUBCOMP {} for no PUBREL in flight with that identifier", r.packet_id)),
                _ => {}
            },
            Packet::Subscribe(s) => {
                if in_use(own, s.packet_id) {
                    flag(reuse, format!("sent SUBSCRIBE with packet identifier {}, which is still in use", s.packet_id));
                }
                own.subscribing.insert(s.packet_id, s.filters.len());
            }
            Packet::Unsubscribe(s) => {
                if in_use(own, s.packet_id) {
                    flag(reuse, format!("sent UNSUBSCRIBE with packet identifier {}, which is still in use", s.packet_id));
                }
                own.unsubscribing.insert(s.packet_id, s.filters.len());
            }
            Packet::SubAck(a) => match peer.subscribing.remove(&a.packet_id) {
                None => flag(Some("MQTT-3.8.4-2"), format!("sent SUBACK {} for no SUBSCRIBE awaiting one", a.packet_id)),
                Some(n) if n != a.reason_codes.len() => flag(
                    v(p, "MQTT-3.8.4-5", "MQTT-3.9.3-2"),
                    format!("sent SUBACK {} with {} codes for {n} filters", a.packet_id, a.reason_codes.len()),
                ),
                Some(_) => {}
            },
            Packet::UnsubAck(a) => match peer.unsubscribing.remove(&a.packet_id) {
                None => flag(v(p, "MQTT-3.10.4-4", "MQTT-3.10.4-5"), format!("sent UNSUBACK {} for no UNSUBSCRIBE awaiting one", a.packet_id)),
                Some(n) if p.is_v5() && n != a.reason_codes.len() => flag(
                    Some("MQTT-3.11.3-2"),
                    format!("sent UNSUBACK {} with {} codes for {n} filters", a.packet_id, a.reason_codes.len()),
                ),
                Some(_) => {}
            },
            _ => {}
        }
    }
}

/// Records the limits a CONNECT or CONNACK announces for the other side.
fn announce(side: &mut Side, props: &mqtt_codec::Properties) {
    for prop in props.iter() {
        match prop {
            Property::ReceiveMaximum(m) => side.receive_maximum = Some(*m),
            Property::TopicAliasMaximum(m) => side.topic_alias_maximum = *m,
            _ => {}
        }
    }
}
