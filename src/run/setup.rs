//! Target set-ups: the broker configurations some statements need to be
//! seen at all (a broker that requires a login, one with an ACL, one whose
//! Maximum QoS is below 2…). A scenario names the set-up it needs
//! (`setup: maximum_qos_1`); the embedded reference broker is started once
//! per set-up the run needs, and against another target, its profile says
//! which set-ups it is (`setups: [login]`); a case whose set-up no target
//! offers is a skip that says so.
//!
//! Each set-up fixes what a scenario may rely on — the credentials, the
//! topics the ACL grants, the limits — so that the same scenario is right
//! on every broker set up the same way.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// The user name every login set-up knows ([`Setup::Login`]; `{username}`
/// in a scenario), unless the run gives its own with `--username`.
pub const USER: &str = "mqtt-harness";
/// Its password (`{password}`), unless the run gives one with `--password`.
pub const PASSWORD: &str = "harness-secret";

/// A broker configuration a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setup {
    /// Logins are required: [`USER`] / [`PASSWORD`] is valid (also for
    /// SCRAM-SHA-256 enhanced authentication in 5.0), anonymous clients and
    /// any other password are refused.
    Login,
    /// Anonymous clients may publish and subscribe under
    /// `mqtt-harness/+/open/#`, only subscribe under
    /// `mqtt-harness/+/readonly/#` (`{topic}/open/…`, `{topic}/readonly/…`),
    /// and nothing else.
    Acl,
    /// Maximum QoS 0.
    #[serde(rename = "maximum_qos_0")]
    MaximumQos0,
    /// Maximum QoS 1.
    #[serde(rename = "maximum_qos_1")]
    MaximumQos1,
    /// Retained messages are not available.
    NoRetain,
    /// Wildcard subscriptions are not available.
    NoWildcards,
    /// Shared subscriptions are not available.
    NoSharedSubscriptions,
    /// Subscription identifiers are not available.
    NoSubscriptionIdentifiers,
    /// Topic Alias Maximum 0: the server takes no topic aliases.
    NoTopicAlias,
    /// The server overrides every client's keep alive with 2 s (5.0 Server
    /// Keep Alive).
    ServerKeepAlive,
    /// The server takes packets of at most 256 bytes (5.0 Maximum Packet Size).
    SmallPackets,
    /// Zero-length client ids are refused (no client id is assigned).
    NoEmptyClientId,
    /// Topic Alias Maximum 2: the server takes topic aliases 1 and 2 only.
    #[serde(rename = "topic_alias_maximum_2")]
    TopicAliasMaximum2,
    /// Receive Maximum 2: the server takes at most two QoS 1 and 2
    /// PUBLISHes it has not yet acknowledged in full.
    #[serde(rename = "receive_maximum_2")]
    ReceiveMaximum2,
    /// Reached over WebSocket (subprotocol `mqtt`): the embedded broker is
    /// served on a `ws://` listener; another target is set up so when it is a
    /// `ws://` or `wss://` URL (or its profile says so).
    Websocket,
}

impl Setup {
    pub const ALL: &'static [Setup] = &[
        Setup::Login,
        Setup::Acl,
        Setup::MaximumQos0,
        Setup::MaximumQos1,
        Setup::NoRetain,
        Setup::NoWildcards,
        Setup::NoSharedSubscriptions,
        Setup::NoSubscriptionIdentifiers,
        Setup::NoTopicAlias,
        Setup::ServerKeepAlive,
        Setup::SmallPackets,
        Setup::NoEmptyClientId,
        Setup::TopicAliasMaximum2,
        Setup::ReceiveMaximum2,
        Setup::Websocket,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setup::Login => "login",
            Setup::Acl => "acl",
            Setup::MaximumQos0 => "maximum_qos_0",
            Setup::MaximumQos1 => "maximum_qos_1",
            Setup::NoRetain => "no_retain",
            Setup::NoWildcards => "no_wildcards",
            Setup::NoSharedSubscriptions => "no_shared_subscriptions",
            Setup::NoSubscriptionIdentifiers => "no_subscription_identifiers",
            Setup::NoTopicAlias => "no_topic_alias",
            Setup::ServerKeepAlive => "server_keep_alive",
            Setup::SmallPackets => "small_packets",
            Setup::NoEmptyClientId => "no_empty_client_id",
            Setup::TopicAliasMaximum2 => "topic_alias_maximum_2",
            Setup::ReceiveMaximum2 => "receive_maximum_2",
            Setup::Websocket => "websocket",
        }
    }

    /// What a target set up so does, for people (skip reasons, docs).
    pub fn describe(self) -> &'static str {
        match self {
            Setup::Login => "logins required; user mqtt-harness, password harness-secret valid (SCRAM-SHA-256 too)",
            Setup::Acl => "anonymous clients may use mqtt-harness/+/open/#, only read mqtt-harness/+/readonly/#, nothing else",
            Setup::MaximumQos0 => "Maximum QoS 0",
            Setup::MaximumQos1 => "Maximum QoS 1",
            Setup::NoRetain => "Retain Available 0",
            Setup::NoWildcards => "Wildcard Subscription Available 0",
            Setup::NoSharedSubscriptions => "Shared Subscription Available 0",
            Setup::NoSubscriptionIdentifiers => "Subscription Identifiers Available 0",
            Setup::NoTopicAlias => "Topic Alias Maximum 0",
            Setup::ServerKeepAlive => "Server Keep Alive 2 s for every client",
            Setup::SmallPackets => "Maximum Packet Size 256 bytes",
            Setup::NoEmptyClientId => "zero-length client ids refused",
            Setup::TopicAliasMaximum2 => "Topic Alias Maximum 2",
            Setup::ReceiveMaximum2 => "Receive Maximum 2",
            Setup::Websocket => "reached over WebSocket (ws:// or wss://, subprotocol mqtt)",
        }
    }

    /// The reference broker set up so.
    pub fn broker_config(self) -> Result<reference_broker::Config, String> {
        use reference_broker::auth::{hash_line, Acl, Auth, PasswordFile};
        let mut c = reference_broker::Config::default();
        match self {
            Setup::Login => {
                let line = hash_line(USER, PASSWORD.as_bytes(), 4096, b"mqtt-harness-salt");
                let passwords = PasswordFile::parse("(login set-up)", &format!("{line}\n"))?;
                c.auth = Auth::new(Some(passwords), None, false)?;
            }
            Setup::Acl => {
                let rules =
                    "topic readwrite mqtt-harness/+/open/#\ntopic read mqtt-harness/+/readonly/#\n";
                c.auth = Auth::new(None, Some(Acl::parse("(acl set-up)", rules)?), true)?;
            }
            Setup::MaximumQos0 => c.maximum_qos = 0,
            Setup::MaximumQos1 => c.maximum_qos = 1,
            Setup::NoRetain => c.retain_available = false,
            Setup::NoWildcards => c.wildcard_subscriptions = false,
            Setup::NoSharedSubscriptions => c.shared_subscriptions = false,
            Setup::NoSubscriptionIdentifiers => c.subscription_identifiers = false,
            Setup::NoTopicAlias => c.topic_alias_maximum = 0,
            Setup::ServerKeepAlive => c.server_keep_alive = Some(2),
            Setup::SmallPackets => c.max_packet_size = 256,
            Setup::NoEmptyClientId => c.allow_empty_client_id = false,
            Setup::TopicAliasMaximum2 => c.topic_alias_maximum = 2,
            Setup::ReceiveMaximum2 => c.receive_maximum = 2,
            // The configuration is the default; the listener is what differs.
            Setup::Websocket => {}
        }
        Ok(c)
    }

    /// Whether the reference broker set up so listens on WebSocket.
    pub fn websocket(self) -> bool {
        self == Setup::Websocket
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Setup {
    type Err = String;
    fn from_str(s: &str) -> Result<Setup, String> {
        Setup::ALL
            .iter()
            .copied()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Setup::ALL.iter().map(|x| x.name()).collect();
                format!(
                    "`{s}` is not a set-up{}; the set-ups are: {}",
                    crate::suggest::hint(s, names.iter().copied()),
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setup_configures_the_reference_broker() {
        for s in Setup::ALL {
            let c = s.broker_config().expect("a configuration");
            assert_eq!(s.name().parse::<Setup>(), Ok(*s));
            // The name serde reads is the name shown.
            let read: Setup = serde_json::from_value(serde_json::Value::from(s.name()))
                .expect("serde reads the name");
            assert_eq!(read, *s);
            if *s == Setup::Login {
                assert!(c.auth.checks_passwords());
            }
        }
        assert!("maximum_qos_2".parse::<Setup>().is_err());
    }
}
