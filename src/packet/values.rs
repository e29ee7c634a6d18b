//! Values that check themselves while the parser points at them.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use mqtt_codec::encode::encode_varint;
use mqtt_codec::{PacketType, Protocol, QoS};
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;

use crate::{hex, suggest};

use super::build::all_reason_names;

// A check must run inside a `Visitor`, while the deserializer still holds the
// value: an error raised after `T::deserialize` returned would be placed at
// the enclosing mapping instead of the value.

pub(crate) struct StrCheck<F, T>(&'static str, F, PhantomData<T>);

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StrCheck<F, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.1)(s).map_err(E::custom)
    }
}

/// A string, checked by `check`.
pub(crate) fn checked_str<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    d.deserialize_str(StrCheck(expecting, check, PhantomData))
}

pub(crate) struct U64Check<F, T>(&'static str, F, PhantomData<T>);

impl<T, F: FnOnce(u64) -> Result<T, String>> Visitor<'_> for U64Check<F, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        let v = u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; expected {}", self.0)))?;
        (self.1)(v).map_err(E::custom)
    }
}

/// A non-negative integer, checked by `check`.
pub(crate) fn checked_u64<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(u64) -> Result<T, String>,
) -> Result<T, D::Error> {
    d.deserialize_u64(U64Check(expecting, check, PhantomData))
}

pub(crate) struct TypeValue(pub(crate) PacketType);

impl<'de> Deserialize<'de> for TypeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a packet type such as PUBLISH", |s| {
            PacketType::from_name(s.trim())
                .map(TypeValue)
                .ok_or_else(|| {
                    let names: Vec<&str> = PacketType::ALL.iter().map(|t| t.name()).collect();
                    format!(
                        "unknown packet type `{s}`{}; the types are {}",
                        suggest::hint(s, names.iter().copied()),
                        names.join(", ")
                    )
                })
        })
    }
}

pub(crate) struct ProtocolValue(pub(crate) Protocol);

impl<'de> Deserialize<'de> for ProtocolValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProtocolValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProtocolValue, E> {
                Protocol::parse(s.trim()).map(ProtocolValue).ok_or_else(|| {
                    E::custom(format!(
                        "unknown protocol version `{s}`: use \"3.1\", \"3.1.1\" or \"5.0\""
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProtocolValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtocolValue, E> {
                self.visit_str(&v.to_string())
            }
            // YAML reads `protocol: 5.0` and `protocol: 3.1` as numbers.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ProtocolValue, E> {
                self.visit_str(&format!("{v:.1}"))
            }
        }
        d.deserialize_any(V)
    }
}

/// 0, 1 or 2.
#[derive(Clone)]
pub(crate) struct QosValue(pub(crate) QoS);

impl<'de> Deserialize<'de> for QosValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_u64(d, "a QoS: 0, 1 or 2", |v| {
            u8::try_from(v)
                .ok()
                .and_then(QoS::from_u8)
                .map(QosValue)
                .ok_or_else(|| {
                    format!(
                        "qos {v} is not 0, 1 or 2; to send QoS 3 on purpose set the fixed-header \
                         flags instead (`flags: 0x6` on a PUBLISH) or the options byte with `raw`"
                    )
                })
        })
    }
}

/// A byte given as a number (`54`, YAML `0x36`) or a string (`"0x36"`, `"0b0110"`).
pub(crate) struct ByteValue(pub(crate) u8);

impl<'de> Deserialize<'de> for ByteValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteVisitor { nibble: false })
            .map(ByteValue)
    }
}

/// A byte, or with `nibble` the four flag bits of the first byte.
pub(crate) struct ByteVisitor {
    nibble: bool,
}

impl ByteVisitor {
    fn check<E: de::Error>(&self, v: u64) -> Result<u8, E> {
        match u8::try_from(v) {
            Ok(b) if !self.nibble || b <= 0x0F => Ok(b),
            _ if self.nibble => Err(E::custom(format!(
                "flags 0x{v:X} do not fit in the 4 flag bits (0 to 0xF); \
                 to replace the whole first byte use `first_byte`"
            ))),
            _ => Err(E::custom(format!("{v} does not fit in a byte (0 to 255)"))),
        }
    }
}

impl Visitor<'_> for ByteVisitor {
    type Value = u8;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte: 0 to 255, or a string such as \"0x36\" or \"0b0110\"")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u8, E> {
        self.check(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u8, E> {
        let v = u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; a byte is 0 to 255")))?;
        self.check(v)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<u8, E> {
        let t = s.trim();
        let parsed = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            u64::from_str_radix(h, 16)
        } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
            u64::from_str_radix(&b.replace('_', ""), 2)
        } else {
            t.parse::<u64>()
        };
        let v = parsed.map_err(|_| {
            E::custom(format!(
                "`{s}` is not a byte: write 0 to 255, \"0x36\" or \"0b0110\""
            ))
        })?;
        self.check(v)
    }
}

/// The low nibble of the first byte.
pub(crate) struct FlagsValue(pub(crate) u8);

impl<'de> Deserialize<'de> for FlagsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteVisitor { nibble: true })
            .map(FlagsValue)
    }
}

/// Bytes written as hex text.
pub(crate) struct HexValue(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for HexValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "bytes as hex text, e.g. \"00 ff\"", |s| {
            hex::parse(s)
                .map(HexValue)
                .map_err(|e| format!("bad hex bytes {s:?}: {e}"))
        })
    }
}

/// Remaining-length bytes: hex text verbatim, or a number in its shortest encoding.
pub(crate) struct RemainingLengthValue(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for RemainingLengthValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RemainingLengthValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("remaining-length bytes as hex text (\"ff ff ff ff 7f\") or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RemainingLengthValue, E> {
                u32::try_from(v)
                    .ok()
                    .and_then(encode_varint)
                    .map(RemainingLengthValue)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{v} is above 268435455, the largest remaining length; \
                             to write longer or overlong bytes give them as hex text"
                        ))
                    })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RemainingLengthValue, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a remaining length is not negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RemainingLengthValue, E> {
                hex::parse(s)
                    .map(RemainingLengthValue)
                    .map_err(|e| E::custom(format!("bad hex bytes {s:?}: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A binary field: a string (its UTF-8 bytes) or `{hex: "…"}`.
#[derive(Clone)]
pub(crate) struct BinaryValue(pub(crate) Bytes);

impl<'de> Deserialize<'de> for BinaryValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BinaryValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text, or bytes as {hex: \"00 ff\"}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BinaryValue, E> {
                Ok(BinaryValue(Bytes::copy_from_slice(s.as_bytes())))
            }
            // YAML reads `payload: 42` as a number; the text is what was meant.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BinaryValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BinaryValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<BinaryValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BinaryValue, A::Error> {
                let mut bytes = None;
                while let Some(key) = map.next_key::<String>()? {
                    if bytes.is_some() {
                        return Err(de::Error::custom(format!(
                            "unexpected `{key}`: binary data is text, {{hex: \"00 ff\"}} or {{scram_client_final: …}}, with one key"
                        )));
                    }
                    bytes = Some(match key.as_str() {
                        "hex" => Bytes::from(map.next_value::<HexValue>()?.0),
                        "scram_client_final" => map.next_value::<ScramClientFinal>()?.0,
                        _ => {
                            return Err(de::Error::custom(format!(
                                "unexpected `{key}`: binary data is text, {{hex: \"00 ff\"}} or {{scram_client_final: …}}{}",
                                suggest::hint(&key, ["hex", "scram_client_final"])
                            )))
                        }
                    });
                }
                bytes
                    .map(BinaryValue)
                    .ok_or_else(|| de::Error::custom("empty mapping: write {hex: \"00 ff\"}"))
            }
        }
        d.deserialize_any(V)
    }
}

/// `{scram_client_final: {client_first, server_first, password}}`: the
/// SCRAM-SHA-256 client-final message (RFC 5802 / 7677) that answers the
/// server-first message, computed when the packet is built. `server_first`
/// is usually a capture (`$server_first`) of the server's AUTH data; while
/// one of the inputs is still a capture (a scenario being read), the bytes
/// are empty.
pub(crate) struct ScramClientFinal(pub(crate) Bytes);

impl<'de> Deserialize<'de> for ScramClientFinal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Inputs {
            client_first: String,
            server_first: BinaryValue,
            password: BinaryValue,
        }
        let i = Inputs::deserialize(d)?;
        let deferred = |b: &[u8]| std::str::from_utf8(b).is_ok_and(is_capture);
        if is_capture(&i.client_first) || deferred(&i.server_first.0) || deferred(&i.password.0) {
            return Ok(ScramClientFinal(Bytes::new()));
        }
        let server_first = std::str::from_utf8(&i.server_first.0).map_err(|_| {
            de::Error::custom("scram_client_final: the server-first message is not UTF-8")
        })?;
        reference_broker::auth::scram_client_final(&i.client_first, server_first, &i.password.0)
            .map(|m| ScramClientFinal(Bytes::from(m)))
            .map_err(|e| de::Error::custom(format!("scram_client_final: {e}")))
    }
}

/// A reason code: a number, or a name from the spec.
#[derive(Debug, Clone)]
pub(crate) enum ReasonValue {
    Code(u8),
    Name(String),
}

impl<'de> Deserialize<'de> for ReasonValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ReasonValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reason code: a number such as 0x87, or its name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ReasonValue, E> {
                u8::try_from(v)
                    .map(ReasonValue::Code)
                    .map_err(|_| E::custom(format!("reason code {v} does not fit in a byte")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ReasonValue, E> {
                u8::try_from(v)
                    .map(ReasonValue::Code)
                    .map_err(|_| E::custom(format!("reason code {v} does not fit in a byte")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ReasonValue, E> {
                if let Ok(b) = (ByteVisitor { nibble: false }).visit_str::<E>(s) {
                    return Ok(ReasonValue::Code(b));
                }
                check_reason_name(s)
                    .map(ReasonValue::Name)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) fn check_reason_name(s: &str) -> Result<String, String> {
    let names = all_reason_names();
    if names.iter().any(|n| n.eq_ignore_ascii_case(s.trim())) {
        return Ok(s.trim().to_string());
    }
    Err(format!(
        "`{s}` is not the name of a reason code{}; give the number, e.g. 0x80",
        suggest::hint(s, names.iter().copied())
    ))
}

pub(crate) struct ReasonName(pub(crate) String);

impl<'de> Deserialize<'de> for ReasonName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "the name of a reason code", |s| {
            check_reason_name(s).map(ReasonName)
        })
    }
}

/// 0 to 3 (3 is invalid, and writable on purpose: the field has two bits).
pub(crate) struct RetainHandlingValue(pub(crate) u8);

impl<'de> Deserialize<'de> for RetainHandlingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_u64(d, "retain handling: 0, 1 or 2", |v| match u8::try_from(v) {
            Ok(b) if b <= 3 => Ok(RetainHandlingValue(b)),
            _ => Err(format!(
                "retain_handling {v} does not fit in its two bits (0 to 3)"
            )),
        })
    }
}

/// `raw: {field: "hex", …}`, in the order given.
pub(crate) struct RawValue(pub(crate) Vec<(String, Vec<u8>)>);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from field names to hex bytes, e.g. {topic: \"00 01 ff\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let bytes = map.next_value::<HexValue>()?.0;
                    out.push((name, bytes));
                }
                Ok(RawValue(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One topic filter of an UNSUBSCRIBE: a string, never options.
pub(crate) struct TopicFilterValue(pub(crate) String);

impl<'de> Deserialize<'de> for TopicFilterValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TopicFilterValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a topic filter")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TopicFilterValue, E> {
                Ok(TopicFilterValue(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<TopicFilterValue, A::Error> {
                Err(de::Error::custom(
                    "UNSUBSCRIBE filters are bare topic filters, without qos or other options",
                ))
            }
        }
        d.deserialize_str(V)
    }
}

// ---------------------------------------------------------------------------
// Templates: a capture stands for a value known only at run time
// ---------------------------------------------------------------------------

/// `$name`: a capture variable (letters, digits, `_`). In a scenario's `send`
/// it stands for the value an earlier `expect` captured.
pub fn is_capture(s: &str) -> bool {
    s.strip_prefix('$')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Reads with `seed`, or, in a template, takes a capture (`$m`) in its place:
/// `None` then. The value is checked while the parser points at it either way.
#[derive(Clone, Copy)]
pub(crate) struct Maybe<S> {
    pub(crate) seed: S,
    pub(crate) template: bool,
    /// The value is text however it is written (`00` is the string "00"):
    /// ask the parser for a string, not for whatever the scalar looks like.
    pub(crate) text: bool,
}

impl<S> Maybe<S> {
    pub(crate) fn new(seed: S, template: bool) -> Maybe<S> {
        Maybe {
            seed,
            template,
            text: false,
        }
    }
}

/// Reads a `T` (or, in a template, a capture in its place).
pub(crate) fn maybe<T>(template: bool) -> Maybe<PhantomData<T>> {
    Maybe::new(PhantomData, template)
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Maybe<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match (self.template, self.text) {
            (false, _) => self.seed.deserialize(d).map(Some),
            (true, true) => d.deserialize_str(MaybeVisitor(self.seed)),
            (true, false) => d.deserialize_any(MaybeVisitor(self.seed)),
        }
    }
}

struct MaybeVisitor<S>(S);

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for MaybeVisitor<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value, or a capture such as $m")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        if is_capture(s) {
            return Ok(None);
        }
        self.0.deserialize(s.into_deserializer()).map(Some)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.0.deserialize(v.into_deserializer()).map(Some)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.deserialize(v.into_deserializer()).map(Some)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.deserialize(v.into_deserializer()).map(Some)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.0.deserialize(v.into_deserializer()).map(Some)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.deserialize(().into_deserializer()).map(Some)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0
            .deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(Some)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0
            .deserialize(de::value::MapAccessDeserializer::new(map))
            .map(Some)
    }
}
