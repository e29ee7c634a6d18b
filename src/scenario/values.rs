//! Small values of scenario files, each checked while the parser points at
//! it: protocol versions, durations, packet type names, keys.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use mqtt_codec::{PacketType, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::Deserialize;

use crate::suggest;

/// A protocol version written as `"5.0"`, `5.0`, `5`, `"3.1.1"`, `"3.1"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProtocolName(pub(crate) Protocol);

impl<'de> Deserialize<'de> for ProtocolName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProtocolName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProtocolName, E> {
                parse_protocol(s).map(ProtocolName).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ProtocolName, E> {
                self.visit_str(&format!("{v:.1}"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProtocolName, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtocolName, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// A version as a scenario writes it.
pub(crate) fn parse_protocol(s: &str) -> Result<Protocol, String> {
    Protocol::parse(s.trim()).ok_or_else(|| {
        format!(
            "unknown protocol version `{s}`; expected \"3.1\", \"3.1.1\" or \"5.0\" (quote it: \"3.1.1\")"
        )
    })
}

/// `"300ms"`, `"2s"`, `"1.5 s"`, `"1m"` or a number of seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationValue(pub(crate) Duration);

pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" | "seconds" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 300ms, 2s or 1.5 (seconds)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationValue, E> {
                parse_duration(s).map(DurationValue).ok_or_else(|| {
                    E::custom(format!(
                        "`{s}` is not a duration; write e.g. 300ms, 2s or 1.5s"
                    ))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// One value or a list of them.
pub(crate) struct OneOrMany<T>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum E<T> {
            Many(Vec<T>),
            One(T),
        }
        match E::deserialize(d)? {
            E::Many(v) => Ok(OneOrMany(v)),
            E::One(t) => Ok(OneOrMany(vec![t])),
        }
    }
}

/// A mapping key, checked while the parser points at it (so that an error
/// carries the key's line and column).
pub(crate) struct CheckedKey<F>(pub(crate) F);

impl<'de, F: FnOnce(&str) -> Result<(), String>> DeserializeSeed<'de> for CheckedKey<F> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<F: FnOnce(&str) -> Result<(), String>> Visitor<'_> for CheckedKey<F> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        (self.0)(s).map_err(E::custom)?;
        Ok(s.to_string())
    }
}

/// A packet type name, checked where it is written.
pub(crate) struct TypeSeed;

impl<'de> DeserializeSeed<'de> for TypeSeed {
    type Value = PacketType;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PacketType, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for TypeSeed {
    type Value = PacketType;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packet type such as PUBLISH or SUBACK")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<PacketType, E> {
        PacketType::from_name(s).ok_or_else(|| {
            let names = PacketType::ALL.iter().map(|t| t.name());
            E::custom(format!(
                "unknown packet type `{s}`{}; the types are: {}",
                suggest::hint(s, names.clone()),
                names.collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// `MQTT 3.1.1 or MQTT 5.0`.
pub(crate) fn names_of(protocols: &[Protocol]) -> String {
    let v: Vec<String> = protocols.iter().map(|p| format!("MQTT {p}")).collect();
    v.join(" or ")
}

/// A string checked by `check` while the parser points at it.
pub(crate) struct CheckedStr<F, T>(
    pub(crate) &'static str,
    pub(crate) F,
    pub(crate) PhantomData<T>,
);

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> DeserializeSeed<'de> for CheckedStr<F, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for CheckedStr<F, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.1)(s).map_err(E::custom)
    }
}
