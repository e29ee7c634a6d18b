//! A deserializer that hands a visitor its data and keeps a copy as JSON.
//!
//! A scenario's `send` step is checked by the typed field reader while the
//! YAML deserializer still points at each key and value (so that an error
//! carries their line and column), and is kept as the JSON fields that the
//! engine fills in and reads again at run time. [`Tee`] does both in one
//! pass: it wraps the deserializer that a seed reads from and records every
//! scalar, sequence and mapping the seed's visitors are given.
//!
//! What is recorded is what the reader was given, as the reader asked for it:
//! a plain YAML scalar `00` read as hex text is recorded as the string `"00"`,
//! not as the number 0.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Deserializes with the seed and returns, beside its result, the data it read.
pub(crate) struct Tee<S>(pub S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Tee<S> {
    type Value = (S::Value, Value);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut out = Value::Null;
        let v = self.0.deserialize(TeeDe {
            de: d,
            out: &mut out,
        })?;
        Ok((v, out))
    }
}

struct TeeDe<'a, D> {
    de: D,
    out: &'a mut Value,
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                let (v, json) = self.de.$method($($arg,)* TeeVisitor(visitor))?;
                *self.out = json;
                Ok(v)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for TeeDe<'_, D> {
    type Error = D::Error;

    forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

struct TeeVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for TeeVisitor<V> {
    type Value = (V::Value, Value);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok((self.0.visit_bool(v)?, Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok((self.0.visit_i64(v)?, Value::from(v)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok((self.0.visit_i128(v)?, Value::String(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok((self.0.visit_u64(v)?, Value::from(v)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok((self.0.visit_u128(v)?, Value::String(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let json = Number::from_f64(v).map_or(Value::Null, Value::Number);
        Ok((self.0.visit_f64(v)?, json))
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
        Ok((self.0.visit_char(v)?, Value::String(v.to_string())))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.0.visit_str(v)?, Value::from(v)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok((self.0.visit_borrowed_str(v)?, Value::from(v)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        let json = Value::from(v.as_str());
        Ok((self.0.visit_string(v)?, json))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok((self.0.visit_bytes(v)?, Value::from(v)))
    }
    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok((self.0.visit_borrowed_bytes(v)?, Value::from(v)))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        let json = Value::from(v.as_slice());
        Ok((self.0.visit_byte_buf(v)?, json))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((self.0.visit_none()?, Value::Null))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((self.0.visit_unit()?, Value::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut out = Value::Null;
        let v = self.0.visit_some(TeeDe {
            de: d,
            out: &mut out,
        })?;
        Ok((v, out))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let mut out = Value::Null;
        let v = self.0.visit_newtype_struct(TeeDe {
            de: d,
            out: &mut out,
        })?;
        Ok((v, out))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let v = self.0.visit_seq(TeeSeq {
            seq,
            out: &mut items,
        })?;
        Ok((v, Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Map::new();
        let v = self.0.visit_map(TeeMap {
            map,
            out: &mut entries,
            key: None,
        })?;
        Ok((v, Value::Object(entries)))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        // No packet field is an enum; what one would hold is not recorded.
        Ok((self.0.visit_enum(data)?, Value::Null))
    }
}

struct TeeSeq<'a, A> {
    seq: A,
    out: &'a mut Vec<Value>,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for TeeSeq<'_, A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        Ok(self.seq.next_element_seed(Tee(seed))?.map(|(v, json)| {
            self.out.push(json);
            v
        }))
    }
    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct TeeMap<'a, A> {
    map: A,
    out: &'a mut Map<String, Value>,
    key: Option<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TeeMap<'_, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        Ok(self.map.next_key_seed(Tee(seed))?.map(|(k, json)| {
            self.key = Some(match json {
                Value::String(s) => s,
                other => other.to_string(),
            });
            k
        }))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let (v, json) = self.map.next_value_seed(Tee(seed))?;
        self.out.insert(self.key.take().unwrap_or_default(), json);
        Ok(v)
    }
    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        a: u16,
        b: Vec<String>,
        c: Option<bool>,
        d: String,
    }

    #[test]
    fn records_what_the_reader_was_given() {
        let text = "{a: 7, b: [x, '2'], c: true, d: 00}";
        let de = serde_norway::Deserializer::from_str(text);
        let (_, json) = Tee(std::marker::PhantomData::<Sample>)
            .deserialize(de)
            .unwrap_or_else(|e| panic!("{e}"));
        // `d` was read as text: the plain scalar 00 stays the string "00".
        assert_eq!(json, json!({"a": 7, "b": ["x", "2"], "c": true, "d": "00"}));
    }
}
