//! The one table of packet fields: for every packet type, the keys that
//! describe it, in wire order, with their accepted aliases, the kind of value
//! each takes, whether a `send` (and `encode`) may set it and an `expect` may
//! match it, the protocol versions it exists in, and a line saying what it is.
//! The deliberate-fault keys, valid on any packet, close the table.
//!
//! Everything that names packet fields reads them from here: the field reader
//! behind `encode` and scenario `send` steps ([`super::reader`]), the keys
//! [`super::packet_to_json`] prints (which `decode --json` shows and `expect`
//! steps match; a test holds it to the table), the scenario parser's checks
//! of `send` and `expect` keys, the engine's aliasing ([`canonical`]),
//! `mqtt-harness fields`, and the generated page `docs/fields.md`.

use std::fmt;

use mqtt_codec::{PacketType, Protocol};

/// A set of protocol versions: those a field or a packet type exists in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Versions {
    v3_1: bool,
    v3_1_1: bool,
    v5: bool,
}

impl Versions {
    /// 3.1, 3.1.1 and 5.0.
    pub const ALL: Versions = Versions {
        v3_1: true,
        v3_1_1: true,
        v5: true,
    };
    /// 3.1.1 and 5.0 (3.1 lacks it).
    pub const FROM_3_1_1: Versions = Versions {
        v3_1: false,
        v3_1_1: true,
        v5: true,
    };
    /// 5.0 only.
    pub const V5: Versions = Versions {
        v3_1: false,
        v3_1_1: false,
        v5: true,
    };

    pub fn contains(self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::V3_1 => self.v3_1,
            Protocol::V3_1_1 => self.v3_1_1,
            Protocol::V5 => self.v5,
        }
    }

    /// The versions in the set, oldest first.
    pub fn protocols(self) -> impl Iterator<Item = Protocol> {
        Protocol::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    pub fn is_all(self) -> bool {
        self == Versions::ALL
    }
}

/// `3.1.1 and 5.0`, `5.0`, `3.1, 3.1.1 and 5.0`.
impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.protocols().map(Protocol::as_str).collect();
        match names.split_last() {
            None => f.write_str("no version"),
            Some((last, [])) => f.write_str(last),
            Some((last, rest)) => write!(f, "{} and {last}", rest.join(", ")),
        }
    }
}

/// The kind of value a key takes: what the reader accepts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A packet type's name (`PUBLISH`).
    Type,
    /// A protocol version.
    Protocol,
    Bool,
    /// An integer from 0 to 65535.
    U16,
    /// 0, 1 or 2.
    Qos,
    /// UTF-8 text.
    Text,
    /// Text (its UTF-8 bytes) or `{hex: …}`.
    Binary,
    /// A reason or return code: a number or its name.
    ReasonCode,
    /// The name of a reason or return code.
    ReasonName,
    /// A list of reason codes.
    ReasonCodes,
    /// A list of reason code names.
    ReasonNames,
    /// A list of 5.0 properties.
    Properties,
    /// A list of 5.0 property names.
    PropertyNames,
    /// A mapping with the keys listed as the field's `sub`.
    Will,
    /// A list of topic filters, each a string or a mapping of `sub` keys.
    Subscriptions,
    /// A list of topic filters (strings).
    TopicFilters,
    /// The two Retain Handling bits: 0 to 3.
    RetainHandling,
    /// A byte.
    Byte,
    /// The four flag bits of the first byte.
    Nibble,
    /// Remaining-length bytes.
    RemainingLength,
    /// A mapping from wire field names to bytes.
    RawFields,
    /// Bytes in hex.
    Hex,
    /// A number of bytes.
    Count,
}

impl Kind {
    /// What a value of this kind looks like, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Type => "a packet type: CONNECT, PUBLISH, …",
            Kind::Protocol => "\"3.1\", \"3.1.1\" or \"5.0\"",
            Kind::Bool => "true or false",
            Kind::U16 => "0 to 65535",
            Kind::Qos => "0, 1 or 2",
            Kind::Text => "text",
            Kind::Binary => "text, or bytes as {hex: \"00 ff\"}",
            Kind::ReasonCode => "a number (0x87) or the code's name (Not authorized)",
            Kind::ReasonName => "the name of a reason code",
            Kind::ReasonCodes => "a list of reason codes (numbers or names)",
            Kind::ReasonNames => "a list of reason code names",
            Kind::Properties => "[{name: topic_alias, value: 3}] or [{topic_alias: 3}]",
            Kind::PropertyNames => "a list of property names",
            Kind::Will => "a mapping",
            Kind::Subscriptions => "a list: a/b, or {filter: a/b, qos: 1, …}",
            Kind::TopicFilters => "a list of topic filters",
            Kind::RetainHandling => "0, 1 or 2 (3 on purpose)",
            Kind::Byte => "0 to 255, or \"0x36\", \"0b0011_0110\"",
            Kind::Nibble => "0 to 0xF",
            Kind::RemainingLength => "hex bytes written as given, or a number",
            Kind::RawFields => "{field: \"hex bytes\"}",
            Kind::Hex => "hex bytes: \"00 ff\"",
            Kind::Count => "a number of bytes",
        }
    }
}

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A field of the packet: `decode --json` prints it.
    Field,
    /// A deliberate fault: the bytes are written wrong on purpose (send only).
    Fault,
    /// A word of the matcher, not a field (expect only): `no_properties`.
    Matcher,
}

/// One key of the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The canonical name: what `decode --json` prints.
    pub name: &'static str,
    /// Other spellings the reader and the matcher accept for it.
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub role: Role,
    /// The versions in which the field exists.
    pub versions: Versions,
    /// A `send` step (and `encode`) may set it.
    pub send: bool,
    /// An `expect` step may match it.
    pub expect: bool,
    /// One line: what it is, and its default when not given.
    pub description: &'static str,
    /// The codec's names for the bytes it is written to (the names `decode`
    /// shows, `raw` replaces and [`crate::field_rules`] knows).
    pub wire: &'static [&'static str],
    /// The keys of its mapping (`will`), or of each mapping in its list (`filters`).
    pub sub: &'static [Field],
}

impl Field {
    /// Whether `key` names this field.
    pub fn is_named(&self, key: &str) -> bool {
        self.name == key || self.aliases.contains(&key)
    }

    /// Whether it exists in any of `protocols`.
    pub fn exists_in_any(&self, protocols: &[Protocol]) -> bool {
        protocols.iter().any(|p| self.versions.contains(*p))
    }
}

/// A field of the packet, in every version, for send and expect.
const fn field(name: &'static str, kind: Kind, description: &'static str) -> Field {
    Field {
        name,
        aliases: &[],
        kind,
        role: Role::Field,
        versions: Versions::ALL,
        send: true,
        expect: true,
        description,
        wire: &[],
        sub: &[],
    }
}

impl Field {
    const fn aliases(self, aliases: &'static [&'static str]) -> Field {
        Field { aliases, ..self }
    }
    const fn versions(self, versions: Versions) -> Field {
        Field { versions, ..self }
    }
    const fn wire(self, wire: &'static [&'static str]) -> Field {
        Field { wire, ..self }
    }
    const fn sub(self, sub: &'static [Field]) -> Field {
        Field { sub, ..self }
    }
    const fn fault(self) -> Field {
        Field {
            role: Role::Fault,
            expect: false,
            ..self
        }
    }
    const fn matcher(self) -> Field {
        Field {
            role: Role::Matcher,
            send: false,
            ..self
        }
    }
}

/// The `type` key of a packet mapping (a scenario step writes it as `send: TYPE` / `expect: TYPE`).
pub const TYPE: Field = field(
    "type",
    Kind::Type,
    "which packet: the spec's upper-case name (required)",
)
.wire(&["fixed_header"]);

const ID: Field = field("id", Kind::U16, "the packet identifier (required)").wire(&["packet_id"]);
const PROPERTIES: Field = field(
    "properties",
    Kind::Properties,
    "the properties, in order (default: none)",
)
.versions(Versions::V5)
.wire(&["property_length", "properties"]);
/// The expect key listing properties that must be absent.
pub const NO_PROPERTIES: &str = "no_properties";

const NO_PROPERTIES_FIELD: Field = field(
    NO_PROPERTIES,
    Kind::PropertyNames,
    "properties that must be absent",
)
.versions(Versions::V5)
.matcher();
/// The expect key bounding the packet's size: a Maximum Packet Size that
/// a packet with some properties must keep.
pub const MAX_SIZE: &str = "max_size";

const MAX_SIZE_FIELD: Field = field(
    MAX_SIZE,
    Kind::Count,
    "the packet's size in bytes, fixed header included, is at most this",
)
.versions(Versions::V5)
.matcher();
/// A one-byte reason code (5.0 only: 3.x acknowledgements carry none).
const REASON_CODE: Field = field(
    "reason_code",
    Kind::ReasonCode,
    "the reason code (default 0, success)",
)
.aliases(&["code"])
.versions(Versions::V5)
.wire(&["reason_code"]);
const REASON: Field = field(
    "reason",
    Kind::ReasonName,
    "the reason code's name; beside `reason_code` it must agree with it",
)
.versions(Versions::V5);

const CONNECT: &[Field] = &[
    field(
        "protocol",
        Kind::Protocol,
        "the version the CONNECT announces and is written in (default: the stream's)",
    )
    .wire(&["protocol_name", "protocol_level"]),
    field(
        "clean_start",
        Kind::Bool,
        "Clean Start (5.0), Clean Session (3.x) (default true)",
    )
    .aliases(&["clean_session"])
    .wire(&["connect_flags"]),
    field(
        "keep_alive",
        Kind::U16,
        "the Keep Alive in seconds (default 60)",
    )
    .wire(&["keep_alive"]),
    PROPERTIES,
    field(
        "client_id",
        Kind::Text,
        "the Client Identifier, may be \"\" (required; a scenario gives the client's own)",
    )
    .wire(&["client_id"]),
    field("will", Kind::Will, "the Will Message (default: none)")
        .wire(&["connect_flags", "will_topic", "will_payload"])
        .sub(WILL),
    field("username", Kind::Text, "the User Name (default: none)").wire(&["username"]),
    field("password", Kind::Binary, "the Password (default: none)").wire(&["password"]),
    NO_PROPERTIES_FIELD,
];

const WILL: &[Field] = &[
    field("qos", Kind::Qos, "the Will QoS (default 0)").wire(&["connect_flags"]),
    field("retain", Kind::Bool, "the Will Retain flag (default false)").wire(&["connect_flags"]),
    field(
        "properties",
        Kind::Properties,
        "the Will Properties (default: none)",
    )
    .versions(Versions::V5),
    field("topic", Kind::Text, "the Will Topic (required)").wire(&["will_topic"]),
    field("payload", Kind::Binary, "the Will Payload (default empty)").wire(&["will_payload"]),
];

const CONNACK: &[Field] = &[
    field(
        "session_present",
        Kind::Bool,
        "the Session Present flag (default false); 3.1 has none",
    )
    .versions(Versions::FROM_3_1_1)
    .wire(&["acknowledge_flags"]),
    field(
        "reason_code",
        Kind::ReasonCode,
        "the connect reason code (5.0) or return code (3.x) (default 0, accepted)",
    )
    .aliases(&["code"])
    .wire(&["reason_code"]),
    field(
        "reason",
        Kind::ReasonName,
        "the code's name; beside `reason_code` it must agree with it",
    ),
    PROPERTIES,
    NO_PROPERTIES_FIELD,
    MAX_SIZE_FIELD,
];

const PUBLISH: &[Field] = &[
    field("dup", Kind::Bool, "the DUP flag (default false)").wire(&["fixed_header"]),
    field("qos", Kind::Qos, "the QoS (default 0)").wire(&["fixed_header"]),
    field("retain", Kind::Bool, "the RETAIN flag (default false)").wire(&["fixed_header"]),
    field(
        "topic",
        Kind::Text,
        "the Topic Name, may be \"\" with a Topic Alias (required)",
    )
    .wire(&["topic"]),
    field(
        "id",
        Kind::U16,
        "the packet identifier: required at QoS 1 and 2, absent at QoS 0",
    )
    .wire(&["packet_id"]),
    PROPERTIES,
    field(
        "payload",
        Kind::Binary,
        "the application message (default empty)",
    )
    .wire(&["payload"]),
    NO_PROPERTIES_FIELD,
];

/// PUBACK, PUBREC, PUBREL, PUBCOMP.
const PUB_RESPONSE: &[Field] = &[
    ID,
    REASON_CODE,
    REASON,
    PROPERTIES,
    NO_PROPERTIES_FIELD,
    MAX_SIZE_FIELD,
];

const SUBSCRIBE: &[Field] = &[
    ID,
    PROPERTIES,
    field(
        "filters",
        Kind::Subscriptions,
        "the subscriptions, in order; a bare string is a filter at QoS 0 (required)",
    )
    .wire(&["topic_filter", "subscription_options"])
    .sub(SUBSCRIPTION),
    NO_PROPERTIES_FIELD,
];

const SUBSCRIPTION: &[Field] = &[
    field("filter", Kind::Text, "the Topic Filter (required)").wire(&["topic_filter"]),
    field("qos", Kind::Qos, "the Maximum QoS (default 0)").wire(&["subscription_options"]),
    field(
        "no_local",
        Kind::Bool,
        "the No Local option (default false)",
    )
    .versions(Versions::V5)
    .wire(&["subscription_options"]),
    field(
        "retain_as_published",
        Kind::Bool,
        "the Retain As Published option (default false)",
    )
    .versions(Versions::V5)
    .wire(&["subscription_options"]),
    field(
        "retain_handling",
        Kind::RetainHandling,
        "the Retain Handling option (default 0)",
    )
    .versions(Versions::V5)
    .wire(&["subscription_options"]),
];

const SUBACK: &[Field] = &[
    ID,
    PROPERTIES,
    field(
        "codes",
        Kind::ReasonCodes,
        "one reason code (5.0) or return code (3.x) per filter (default: none)",
    )
    .wire(&["reason_code"]),
    field(
        "reasons",
        Kind::ReasonNames,
        "the codes' names; beside `codes` they must agree with them",
    ),
    NO_PROPERTIES_FIELD,
    MAX_SIZE_FIELD,
];

const UNSUBSCRIBE: &[Field] = &[
    ID,
    PROPERTIES,
    field(
        "filters",
        Kind::TopicFilters,
        "the Topic Filters, in order (required)",
    )
    .wire(&["topic_filter"]),
    NO_PROPERTIES_FIELD,
];

const UNSUBACK: &[Field] = &[
    ID,
    PROPERTIES,
    field(
        "codes",
        Kind::ReasonCodes,
        "one reason code per filter (default: none); 3.x UNSUBACKs carry none",
    )
    .versions(Versions::V5)
    .wire(&["reason_code"]),
    field(
        "reasons",
        Kind::ReasonNames,
        "the codes' names; beside `codes` they must agree with them",
    )
    .versions(Versions::V5),
    NO_PROPERTIES_FIELD,
    MAX_SIZE_FIELD,
];

/// DISCONNECT and AUTH.
const REASON_ONLY: &[Field] = &[
    REASON_CODE,
    REASON,
    PROPERTIES,
    NO_PROPERTIES_FIELD,
    MAX_SIZE_FIELD,
];

/// The keys valid on any packet that write its bytes wrong on purpose.
pub const FAULTS: &[Field] = &[
    field(
        "first_byte",
        Kind::Byte,
        "replaces the whole first byte (type and flags)",
    )
    .wire(&["fixed_header"])
    .fault(),
    field(
        "flags",
        Kind::Nibble,
        "replaces the four flag bits of the first byte",
    )
    .wire(&["fixed_header"])
    .fault(),
    field(
        "remaining_length",
        Kind::RemainingLength,
        "replaces the remaining-length bytes (a number: its shortest encoding)",
    )
    .wire(&["remaining_length"])
    .fault(),
    field(
        "raw",
        Kind::RawFields,
        "replaces the bytes of named fields: {topic: \"00 03 61 ff 62\"}; `topic_filter[1]` is the second",
    )
    .fault(),
    field(
        "append",
        Kind::Hex,
        "adds bytes after the body, counted in the remaining length",
    )
    .fault(),
    field(
        "truncate",
        Kind::Count,
        "cuts the finished packet to this many bytes",
    )
    .fault(),
];

/// The fields of a packet type (its own, in wire order; not `type` and the faults).
pub fn fields(ty: PacketType) -> &'static [Field] {
    match ty {
        PacketType::Connect => CONNECT,
        PacketType::ConnAck => CONNACK,
        PacketType::Publish => PUBLISH,
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
            PUB_RESPONSE
        }
        PacketType::Subscribe => SUBSCRIBE,
        PacketType::SubAck => SUBACK,
        PacketType::Unsubscribe => UNSUBSCRIBE,
        PacketType::UnsubAck => UNSUBACK,
        PacketType::PingReq | PacketType::PingResp => &[],
        PacketType::Disconnect | PacketType::Auth => REASON_ONLY,
    }
}

/// The versions in which a packet type exists (AUTH is new in 5.0).
pub fn type_versions(ty: PacketType) -> Versions {
    match ty {
        PacketType::Auth => Versions::V5,
        _ => Versions::ALL,
    }
}

/// The key `key` (canonical or alias) of a `ty` packet: one of its fields or a fault.
pub fn lookup(ty: PacketType, key: &str) -> Option<&'static Field> {
    fields(ty).iter().chain(FAULTS).find(|f| f.is_named(key))
}

/// The canonical name of `key` in a `ty` packet: `code` → `reason_code`,
/// `clean_session` → `clean_start`; `None` for a key the type does not have.
pub fn canonical(ty: PacketType, key: &str) -> Option<&'static str> {
    lookup(ty, key).map(|f| f.name)
}

/// Every spelling of every key of any packet, `type` first, each once.
pub fn all_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(collect_keys)
}

fn collect_keys() -> Vec<&'static str> {
    let mut out = vec![TYPE.name];
    let all = PacketType::ALL
        .iter()
        .flat_map(|t| fields(*t).iter())
        .chain(FAULTS);
    for f in all {
        for n in std::iter::once(&f.name).chain(f.aliases) {
            if !out.contains(n) {
                out.push(n);
            }
        }
    }
    out
}

/// The field `key` (canonical or alias) names in a `sub` table (`will`, `filters`).
pub fn lookup_sub(sub: &'static [Field], key: &str) -> Option<&'static Field> {
    sub.iter().find(|f| f.is_named(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique_per_type() {
        for ty in PacketType::ALL {
            let mut seen: Vec<&str> = vec![TYPE.name];
            for f in fields(ty).iter().chain(FAULTS) {
                for n in std::iter::once(&f.name).chain(f.aliases) {
                    assert!(!seen.contains(n), "{ty}: `{n}` twice");
                    seen.push(n);
                }
                let mut sub: Vec<&str> = Vec::new();
                for s in f.sub {
                    assert!(
                        !sub.contains(&s.name),
                        "{ty}.{}: `{}` twice",
                        f.name,
                        s.name
                    );
                    sub.push(s.name);
                }
            }
        }
    }

    #[test]
    fn roles_decide_send_and_expect() {
        for ty in PacketType::ALL {
            for f in fields(ty).iter().chain(FAULTS) {
                match f.role {
                    Role::Field => assert!(f.send && f.expect, "{ty}.{}", f.name),
                    Role::Fault => assert!(f.send && !f.expect, "{ty}.{}", f.name),
                    Role::Matcher => assert!(!f.send && f.expect, "{ty}.{}", f.name),
                }
                assert!(!f.description.contains('\n'), "{ty}.{}", f.name);
            }
        }
    }

    #[test]
    fn aliases_map_to_the_canonical_name() {
        assert_eq!(canonical(PacketType::PubAck, "code"), Some("reason_code"));
        assert_eq!(canonical(PacketType::ConnAck, "code"), Some("reason_code"));
        assert_eq!(
            canonical(PacketType::Connect, "clean_session"),
            Some("clean_start")
        );
        assert_eq!(canonical(PacketType::SubAck, "code"), None);
        assert_eq!(canonical(PacketType::Publish, "flags"), Some("flags"));
        assert_eq!(canonical(PacketType::PingReq, "id"), None);
    }

    #[test]
    fn versions_read_as_a_list() {
        assert_eq!(Versions::ALL.to_string(), "3.1, 3.1.1 and 5.0");
        assert_eq!(Versions::FROM_3_1_1.to_string(), "3.1.1 and 5.0");
        assert_eq!(Versions::V5.to_string(), "5.0");
    }

    /// Every wire name is one the codec writes or the decoder shows.
    #[test]
    fn wire_names_are_the_codecs() {
        let known = [
            "fixed_header",
            "remaining_length",
            "protocol_name",
            "protocol_level",
            "connect_flags",
            "keep_alive",
            "property_length",
            "properties",
            "client_id",
            "will_topic",
            "will_payload",
            "username",
            "password",
            "acknowledge_flags",
            "reason_code",
            "topic",
            "packet_id",
            "payload",
            "topic_filter",
            "subscription_options",
        ];
        for ty in PacketType::ALL {
            let all = fields(ty)
                .iter()
                .chain(FAULTS)
                .flat_map(|f| std::iter::once(f).chain(f.sub));
            for f in all {
                for w in f.wire {
                    assert!(known.contains(w), "{ty}.{}: `{w}`", f.name);
                }
            }
        }
    }
}
