//! Spec-annotated, sans-IO MQTT codec (3.1, 3.1.1, 5.0).
// One exception, `decode::ascii_str`: an ASCII string needs no second UTF-8
// pass. Everything else is safe code.
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod catalogue;
pub mod decode;
pub mod encode;
pub mod error;
#[cfg(feature = "arbitrary")]
pub mod fuzzing;
#[cfg(any(test, feature = "arbitrary"))]
pub mod gen;
pub mod props;
pub mod reason;
pub mod topic;
pub mod types;

pub use decode::{decode_bytes, decode_slice, DecodeOptions, Decoded, Decoder};
pub use encode::{encode, encode_bytes, encode_with, encoded_len, EncodeError, Overrides};
pub use error::{Class, DecodeError, ErrorKind};
pub use props::{Properties, Property};
pub use types::*;

/// The protocol version a stream speaks (the CONNECT protocol level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// MQTT 3.1, protocol name "MQIsdp", level 3.
    V3_1,
    /// MQTT 3.1.1, protocol name "MQTT", level 4.
    V3_1_1,
    /// MQTT 5.0, protocol name "MQTT", level 5.
    V5,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5];

    pub fn level(self) -> u8 {
        match self {
            Protocol::V3_1 => 3,
            Protocol::V3_1_1 => 4,
            Protocol::V5 => 5,
        }
    }

    pub fn from_level(level: u8) -> Option<Protocol> {
        match level {
            3 => Some(Protocol::V3_1),
            4 => Some(Protocol::V3_1_1),
            5 => Some(Protocol::V5),
            _ => None,
        }
    }

    /// "3.1", "3.1.1" or "5.0".
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::V3_1 => "3.1",
            Protocol::V3_1_1 => "3.1.1",
            Protocol::V5 => "5.0",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "3.1" | "3" => Some(Protocol::V3_1),
            "3.1.1" | "4" => Some(Protocol::V3_1_1),
            "5.0" | "5" => Some(Protocol::V5),
            _ => None,
        }
    }

    /// The statement catalogue that governs this version: 3.1 has no numbered
    /// statements of its own, so it is checked against the 3.1.1 ids.
    pub fn catalogue_version(self) -> Protocol {
        match self {
            Protocol::V3_1 | Protocol::V3_1_1 => Protocol::V3_1_1,
            Protocol::V5 => Protocol::V5,
        }
    }

    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
