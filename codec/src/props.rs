//! MQTT 5.0 properties (section 2.2.2).
//!
//! Properties are kept as an ordered list, exactly as they came: the order of
//! User Properties is significant (MQTT-3.3.2-18) and a harness must be able to
//! encode a duplicate on purpose. The decoder is what refuses duplicates.

use bytes::Bytes;
use bytestring::ByteString;

/// Where a property list appears; each place allows its own set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyContext {
    Connect,
    Will,
    ConnAck,
    Publish,
    /// PUBACK, PUBREC, PUBREL, PUBCOMP.
    PubResponse,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

/// The wire type of a property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Byte,
    TwoByte,
    FourByte,
    Varint,
    Utf8,
    Binary,
    Utf8Pair,
}

/// One property. `S` is the string type and `B` the binary type: owned
/// (`ByteString`, `Bytes`, the default) or borrowed (`&str`, `&[u8]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property<S = ByteString, B = Bytes> {
    PayloadFormatIndicator(u8),
    MessageExpiryInterval(u32),
    ContentType(S),
    ResponseTopic(S),
    CorrelationData(B),
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(S),
    ServerKeepAlive(u16),
    AuthenticationMethod(S),
    AuthenticationData(B),
    RequestProblemInformation(u8),
    WillDelayInterval(u32),
    RequestResponseInformation(u8),
    ResponseInformation(S),
    ServerReference(S),
    ReasonString(S),
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    TopicAlias(u16),
    MaximumQoS(u8),
    RetainAvailable(u8),
    UserProperty(S, S),
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(u8),
    SubscriptionIdentifierAvailable(u8),
    SharedSubscriptionAvailable(u8),
}

/// Static facts about one property identifier.
#[derive(Debug, Clone, Copy)]
pub struct PropertyInfo {
    pub id: u8,
    pub name: &'static str,
    pub value: ValueType,
    /// The places it may appear.
    pub contexts: &'static [PropertyContext],
}

use PropertyContext as C;
use ValueType as V;

/// Every 5.0 property identifier, in identifier order.
#[rustfmt::skip]
pub const PROPERTIES: &[PropertyInfo] = &[
    PropertyInfo { id: 0x01, name: "payload_format_indicator", value: V::Byte, contexts: &[C::Publish, C::Will] },
    PropertyInfo { id: 0x02, name: "message_expiry_interval", value: V::FourByte, contexts: &[C::Publish, C::Will] },
    PropertyInfo { id: 0x03, name: "content_type", value: V::Utf8, contexts: &[C::Publish, C::Will] },
    PropertyInfo { id: 0x08, name: "response_topic", value: V::Utf8, contexts: &[C::Publish, C::Will] },
    PropertyInfo { id: 0x09, name: "correlation_data", value: V::Binary, contexts: &[C::Publish, C::Will] },
    PropertyInfo { id: 0x0B, name: "subscription_identifier", value: V::Varint, contexts: &[C::Publish, C::Subscribe] },
    PropertyInfo { id: 0x11, name: "session_expiry_interval", value: V::FourByte, contexts: &[C::Connect, C::ConnAck, C::Disconnect] },
    PropertyInfo { id: 0x12, name: "assigned_client_identifier", value: V::Utf8, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x13, name: "server_keep_alive", value: V::TwoByte, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x15, name: "authentication_method", value: V::Utf8, contexts: &[C::Connect, C::ConnAck, C::Auth] },
    PropertyInfo { id: 0x16, name: "authentication_data", value: V::Binary, contexts: &[C::Connect, C::ConnAck, C::Auth] },
    PropertyInfo { id: 0x17, name: "request_problem_information", value: V::Byte, contexts: &[C::Connect] },
    PropertyInfo { id: 0x18, name: "will_delay_interval", value: V::FourByte, contexts: &[C::Will] },
    PropertyInfo { id: 0x19, name: "request_response_information", value: V::Byte, contexts: &[C::Connect] },
    PropertyInfo { id: 0x1A, name: "response_information", value: V::Utf8, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x1C, name: "server_reference", value: V::Utf8, contexts: &[C::ConnAck, C::Disconnect] },
    PropertyInfo { id: 0x1F, name: "reason_string", value: V::Utf8, contexts: &[C::ConnAck, C::PubResponse, C::SubAck, C::UnsubAck, C::Disconnect, C::Auth] },
    PropertyInfo { id: 0x21, name: "receive_maximum", value: V::TwoByte, contexts: &[C::Connect, C::ConnAck] },
    PropertyInfo { id: 0x22, name: "topic_alias_maximum", value: V::TwoByte, contexts: &[C::Connect, C::ConnAck] },
    PropertyInfo { id: 0x23, name: "topic_alias", value: V::TwoByte, contexts: &[C::Publish] },
    PropertyInfo { id: 0x24, name: "maximum_qos", value: V::Byte, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x25, name: "retain_available", value: V::Byte, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x26, name: "user_property", value: V::Utf8Pair, contexts: &[C::Connect, C::Will, C::ConnAck, C::Publish, C::PubResponse, C::Subscribe, C::SubAck, C::Unsubscribe, C::UnsubAck, C::Disconnect, C::Auth] },
    PropertyInfo { id: 0x27, name: "maximum_packet_size", value: V::FourByte, contexts: &[C::Connect, C::ConnAck] },
    PropertyInfo { id: 0x28, name: "wildcard_subscription_available", value: V::Byte, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x29, name: "subscription_identifier_available", value: V::Byte, contexts: &[C::ConnAck] },
    PropertyInfo { id: 0x2A, name: "shared_subscription_available", value: V::Byte, contexts: &[C::ConnAck] },
];

/// Facts about a property identifier, or `None` for an identifier 5.0 does not define.
pub fn info(id: u8) -> Option<&'static PropertyInfo> {
    PROPERTIES.iter().find(|p| p.id == id)
}

/// Facts about a property by its snake_case name.
pub fn info_by_name(name: &str) -> Option<&'static PropertyInfo> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// A property's value by its wire type, for code that treats every
/// property of one type alike (the encoder, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a, S, B> {
    Byte(u8),
    TwoByte(u16),
    FourByte(u32),
    Varint(u32),
    Utf8(&'a S),
    Binary(&'a B),
    Utf8Pair(&'a S, &'a S),
}

impl<S, B> Property<S, B> {
    /// The value, by wire type.
    pub fn value(&self) -> Value<'_, S, B> {
        use Property as P;
        match self {
            P::PayloadFormatIndicator(v)
            | P::RequestProblemInformation(v)
            | P::RequestResponseInformation(v)
            | P::MaximumQoS(v)
            | P::RetainAvailable(v)
            | P::WildcardSubscriptionAvailable(v)
            | P::SubscriptionIdentifierAvailable(v)
            | P::SharedSubscriptionAvailable(v) => Value::Byte(*v),
            P::ServerKeepAlive(v)
            | P::ReceiveMaximum(v)
            | P::TopicAliasMaximum(v)
            | P::TopicAlias(v) => Value::TwoByte(*v),
            P::MessageExpiryInterval(v)
            | P::SessionExpiryInterval(v)
            | P::WillDelayInterval(v)
            | P::MaximumPacketSize(v) => Value::FourByte(*v),
            P::SubscriptionIdentifier(v) => Value::Varint(*v),
            P::CorrelationData(v) | P::AuthenticationData(v) => Value::Binary(v),
            P::ContentType(v)
            | P::ResponseTopic(v)
            | P::AssignedClientIdentifier(v)
            | P::AuthenticationMethod(v)
            | P::ResponseInformation(v)
            | P::ServerReference(v)
            | P::ReasonString(v) => Value::Utf8(v),
            P::UserProperty(k, v) => Value::Utf8Pair(k, v),
        }
    }

    pub fn id(&self) -> u8 {
        match self {
            Property::PayloadFormatIndicator(_) => 0x01,
            Property::MessageExpiryInterval(_) => 0x02,
            Property::ContentType(_) => 0x03,
            Property::ResponseTopic(_) => 0x08,
            Property::CorrelationData(_) => 0x09,
            Property::SubscriptionIdentifier(_) => 0x0B,
            Property::SessionExpiryInterval(_) => 0x11,
            Property::AssignedClientIdentifier(_) => 0x12,
            Property::ServerKeepAlive(_) => 0x13,
            Property::AuthenticationMethod(_) => 0x15,
            Property::AuthenticationData(_) => 0x16,
            Property::RequestProblemInformation(_) => 0x17,
            Property::WillDelayInterval(_) => 0x18,
            Property::RequestResponseInformation(_) => 0x19,
            Property::ResponseInformation(_) => 0x1A,
            Property::ServerReference(_) => 0x1C,
            Property::ReasonString(_) => 0x1F,
            Property::ReceiveMaximum(_) => 0x21,
            Property::TopicAliasMaximum(_) => 0x22,
            Property::TopicAlias(_) => 0x23,
            Property::MaximumQoS(_) => 0x24,
            Property::RetainAvailable(_) => 0x25,
            Property::UserProperty(_, _) => 0x26,
            Property::MaximumPacketSize(_) => 0x27,
            Property::WildcardSubscriptionAvailable(_) => 0x28,
            Property::SubscriptionIdentifierAvailable(_) => 0x29,
            Property::SharedSubscriptionAvailable(_) => 0x2A,
        }
    }

    pub fn name(&self) -> &'static str {
        info(self.id()).map_or("unknown", |i| i.name)
    }
}

/// An ordered property list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties<S = ByteString, B = Bytes>(pub Vec<Property<S, B>>);

impl<S, B> Default for Properties<S, B> {
    fn default() -> Self {
        Properties(Vec::new())
    }
}

macro_rules! getter {
    ($fn:ident, $variant:ident, $ty:ty) => {
        pub fn $fn(&self) -> Option<$ty> {
            self.0.iter().find_map(|p| match p {
                Property::$variant(v) => Some(v.clone()),
                _ => None,
            })
        }
    };
}

impl<S, B> Properties<S, B> {
    pub fn new() -> Self {
        Properties(Vec::new())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Property<S, B>> {
        self.0.iter()
    }
    pub fn push(&mut self, p: Property<S, B>) {
        self.0.push(p);
    }
    /// Removes every property with this identifier.
    pub fn remove(&mut self, id: u8) {
        self.0.retain(|p| p.id() != id);
    }
    /// Replaces every property with `p`'s identifier by `p`.
    pub fn set(&mut self, p: Property<S, B>) {
        self.remove(p.id());
        self.0.push(p);
    }
    pub fn with(mut self, p: Property<S, B>) -> Self {
        self.0.push(p);
        self
    }

    /// All Subscription Identifiers, in order (a PUBLISH may carry several).
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::SubscriptionIdentifier(v) => Some(*v),
            _ => None,
        })
    }

    /// All User Properties, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&S, &S)> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k, v)),
            _ => None,
        })
    }
}

impl<S: Clone, B: Clone> Properties<S, B> {
    getter!(payload_format_indicator, PayloadFormatIndicator, u8);
    getter!(message_expiry_interval, MessageExpiryInterval, u32);
    getter!(content_type, ContentType, S);
    getter!(response_topic, ResponseTopic, S);
    getter!(correlation_data, CorrelationData, B);
    getter!(session_expiry_interval, SessionExpiryInterval, u32);
    getter!(assigned_client_identifier, AssignedClientIdentifier, S);
    getter!(server_keep_alive, ServerKeepAlive, u16);
    getter!(authentication_method, AuthenticationMethod, S);
    getter!(authentication_data, AuthenticationData, B);
    getter!(request_problem_information, RequestProblemInformation, u8);
    getter!(will_delay_interval, WillDelayInterval, u32);
    getter!(request_response_information, RequestResponseInformation, u8);
    getter!(response_information, ResponseInformation, S);
    getter!(server_reference, ServerReference, S);
    getter!(reason_string, ReasonString, S);
    getter!(receive_maximum, ReceiveMaximum, u16);
    getter!(topic_alias_maximum, TopicAliasMaximum, u16);
    getter!(topic_alias, TopicAlias, u16);
    getter!(maximum_qos, MaximumQoS, u8);
    getter!(retain_available, RetainAvailable, u8);
    getter!(maximum_packet_size, MaximumPacketSize, u32);
    getter!(
        wildcard_subscription_available,
        WildcardSubscriptionAvailable,
        u8
    );
    getter!(
        subscription_identifier_available,
        SubscriptionIdentifierAvailable,
        u8
    );
    getter!(
        shared_subscription_available,
        SharedSubscriptionAvailable,
        u8
    );
}

impl<S, B> FromIterator<Property<S, B>> for Properties<S, B> {
    fn from_iter<I: IntoIterator<Item = Property<S, B>>>(iter: I) -> Self {
        Properties(iter.into_iter().collect())
    }
}
