//! 5.0 properties: `[{name: …, value: …}]` or `[{some_name: value}]`, each
//! value read by the wire type the codec's property table gives its name.

use std::fmt;

use mqtt_codec::encode::encode_varint;
use mqtt_codec::props::{self, PropertyInfo, ValueType, PROPERTIES};
use mqtt_codec::{ByteString, Properties, Property};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::values::{checked_str, maybe, BinaryValue};
use crate::suggest;

/// A list of properties; in a template, a number may be a capture (`$a`).
#[derive(Clone, Copy)]
pub(crate) struct PropertiesSeed {
    pub(crate) template: bool,
}

impl<'de> DeserializeSeed<'de> for PropertiesSeed {
    type Value = Properties;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Properties, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PropertiesSeed {
    type Value = Properties;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of properties: [{name: …, value: …}]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Properties, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = seq.next_element_seed(PropertySeed(self))? {
            out.push(p);
        }
        Ok(Properties(out))
    }
}

/// One property: `{name: topic_alias, value: 3}` or `{topic_alias: 3}`.
struct PropertySeed(PropertiesSeed);

enum PropertyKey {
    Name,
    Value,
    Short(&'static PropertyInfo),
}

struct PropertyKeySeed;

impl<'de> DeserializeSeed<'de> for PropertyKeySeed {
    type Value = PropertyKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PropertyKey, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for PropertyKeySeed {
    type Value = PropertyKey;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`name`, `value`, or a property name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<PropertyKey, E> {
        match s {
            "name" => Ok(PropertyKey::Name),
            "value" => Ok(PropertyKey::Value),
            _ => props::info_by_name(s).map(PropertyKey::Short).ok_or_else(|| {
                E::custom(format!(
                    "unexpected `{s}` in a property{}: write {{name: user_property, value: [k, v]}} \
                     or {{user_property: [k, v]}}",
                    suggest::hint(s, PROPERTIES.iter().map(|p| p.name))
                ))
            }),
        }
    }
}

fn property_info(name: &str) -> Result<&'static PropertyInfo, String> {
    props::info_by_name(name.trim()).ok_or_else(|| {
        format!(
            "unknown property `{name}`{}; the properties are {}",
            suggest::hint(name, PROPERTIES.iter().map(|p| p.name)),
            PROPERTIES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

struct PropertyNameValue(pub(crate) &'static PropertyInfo);

impl<'de> Deserialize<'de> for PropertyNameValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a property name such as user_property", |s| {
            property_info(s).map(PropertyNameValue)
        })
    }
}

impl<'de> DeserializeSeed<'de> for PropertySeed {
    type Value = Property;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Property, D::Error> {
        struct V(bool);
        impl<'de> Visitor<'de> for V {
            type Value = Property;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a property: {name: …, value: …}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Property, A::Error> {
                let template = self.0;
                let mut info: Option<&'static PropertyInfo> = None;
                let mut value: Option<Property> = None;
                // A value that came before its name, kept until the name says its type.
                let mut early: Option<Value> = None;
                while let Some(key) = map.next_key_seed(PropertyKeySeed)? {
                    match key {
                        PropertyKey::Name if info.is_none() => {
                            let i = map.next_value::<PropertyNameValue>()?.0;
                            info = Some(i);
                            if let Some(v) = early.take() {
                                let p = PropertyValueSeed(i, template)
                                    .deserialize(&v)
                                    .map_err(|e| de::Error::custom(format!("{}: {e}", i.name)))?;
                                value = Some(p);
                            }
                        }
                        PropertyKey::Value if value.is_none() && early.is_none() => match info {
                            Some(i) => value = Some(map.next_value_seed(PropertyValueSeed(i, template))?),
                            None => early = Some(map.next_value::<Value>()?),
                        },
                        PropertyKey::Short(i) if info.is_none() && value.is_none() => {
                            info = Some(i);
                            value = Some(map.next_value_seed(PropertyValueSeed(i, template))?);
                        }
                        _ => {
                            return Err(de::Error::custom(
                                "a property is {name: …, value: …} or {some_name: value}, one per list item",
                            ))
                        }
                    }
                }
                match (info, value) {
                    (Some(_), Some(p)) => Ok(p),
                    (None, _) => Err(de::Error::custom("property without a `name`")),
                    (Some(i), None) => Err(de::Error::custom(format!(
                        "property {} without a `value`",
                        i.name
                    ))),
                }
            }
        }
        d.deserialize_map(V(self.0.template))
    }
}

/// Reads a property's value by its wire type.
struct PropertyValueSeed(&'static PropertyInfo, bool);

impl<'de> DeserializeSeed<'de> for PropertyValueSeed {
    type Value = Property;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Property, D::Error> {
        use Property as P;
        let (info, template) = (self.0, self.1);
        let p = match info.value {
            ValueType::Byte => {
                let v = maybe::<u8>(template).deserialize(d)?.unwrap_or(0);
                match info.id {
                    0x01 => P::PayloadFormatIndicator(v),
                    0x17 => P::RequestProblemInformation(v),
                    0x19 => P::RequestResponseInformation(v),
                    0x24 => P::MaximumQoS(v),
                    0x25 => P::RetainAvailable(v),
                    0x28 => P::WildcardSubscriptionAvailable(v),
                    0x29 => P::SubscriptionIdentifierAvailable(v),
                    _ => P::SharedSubscriptionAvailable(v),
                }
            }
            ValueType::TwoByte => {
                let v = maybe::<u16>(template).deserialize(d)?.unwrap_or(0);
                match info.id {
                    0x13 => P::ServerKeepAlive(v),
                    0x21 => P::ReceiveMaximum(v),
                    0x22 => P::TopicAliasMaximum(v),
                    _ => P::TopicAlias(v),
                }
            }
            ValueType::FourByte => {
                let v = maybe::<u32>(template).deserialize(d)?.unwrap_or(0);
                match info.id {
                    0x02 => P::MessageExpiryInterval(v),
                    0x11 => P::SessionExpiryInterval(v),
                    0x18 => P::WillDelayInterval(v),
                    _ => P::MaximumPacketSize(v),
                }
            }
            ValueType::Varint => {
                let v = maybe::<u32>(template).deserialize(d)?.unwrap_or(0);
                if encode_varint(v).is_none() {
                    return Err(de::Error::custom(format!(
                        "{} {v} is above 268435455, the largest variable byte integer",
                        info.name
                    )));
                }
                P::SubscriptionIdentifier(v)
            }
            ValueType::Utf8 => {
                let s = ByteString::from(String::deserialize(d)?);
                match info.id {
                    0x03 => P::ContentType(s),
                    0x08 => P::ResponseTopic(s),
                    0x12 => P::AssignedClientIdentifier(s),
                    0x15 => P::AuthenticationMethod(s),
                    0x1A => P::ResponseInformation(s),
                    0x1C => P::ServerReference(s),
                    _ => P::ReasonString(s),
                }
            }
            ValueType::Binary => {
                let b = BinaryValue::deserialize(d)?.0;
                match info.id {
                    0x09 => P::CorrelationData(b),
                    _ => P::AuthenticationData(b),
                }
            }
            ValueType::Utf8Pair => {
                let (k, v) = <(String, String)>::deserialize(d)?;
                P::UserProperty(ByteString::from(k), ByteString::from(v))
            }
        };
        Ok(p)
    }
}
/// A list of property names (`no_properties: [reason_string]`), each checked
/// against the 5.0 property table where it is written.
pub(crate) struct PropertyNamesValue(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for PropertyNamesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PropertyNamesValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of property names, e.g. [session_expiry_interval]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = seq.next_element::<KnownPropertyName>()? {
                    out.push(n.0);
                }
                Ok(PropertyNamesValue(out))
            }
        }
        d.deserialize_seq(V)
    }
}

struct KnownPropertyName(String);

impl<'de> Deserialize<'de> for KnownPropertyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a property name such as reason_string", |n| {
            if props::info_by_name(n).is_some() {
                Ok(KnownPropertyName(n.to_string()))
            } else {
                Err(format!(
                    "`{n}` is not a 5.0 property{}",
                    suggest::hint(n, PROPERTIES.iter().map(|p| p.name))
                ))
            }
        })
    }
}

/// One property from its JSON description (`{"name": "content_type",
/// "value": "text/plain"}`), read by the same rules as a packet file's.
pub fn property_from_json(value: &Value) -> Result<Property, String> {
    let list = Value::Array(vec![value.clone()]);
    let mut props = PropertiesSeed { template: false }
        .deserialize(&list)
        .map_err(|e| e.to_string())?;
    props.0.pop().ok_or_else(|| "no property".to_string())
}
