//! Broker configuration: features it offers and the limits it enforces.

use std::time::Duration;

use crate::violation::Violations;

/// What the broker offers and enforces. Every limit is checked before memory
/// is committed for the thing it limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest packet accepted from a client (fixed header included);
    /// announced as Maximum Packet Size in 5.0 CONNACK.
    pub max_packet_size: u32,
    /// Receive Maximum announced to 5.0 clients: QoS 1/2 PUBLISH a client may
    /// have unacknowledged towards the broker.
    pub receive_maximum: u16,
    /// Highest QoS offered (Maximum QoS).
    pub maximum_qos: u8,
    pub retain_available: bool,
    pub wildcard_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub shared_subscriptions: bool,
    /// Topic Alias Maximum announced to 5.0 clients (0: none).
    pub topic_alias_maximum: u16,
    /// Upper bound for the Session Expiry Interval a client may ask for (seconds).
    pub max_session_expiry: u32,
    /// When set, overrides the client's keep alive (Server Keep Alive, 5.0).
    pub server_keep_alive: Option<u16>,
    /// Time a new connection has to send CONNECT.
    pub connect_timeout: Duration,
    /// Messages queued per session beyond the in-flight window.
    pub max_queued_messages: usize,
    /// QoS 1/2 messages in flight towards a 3.x client (5.0 clients announce their own).
    pub max_inflight: u16,
    /// Simultaneous network connections.
    pub max_connections: usize,
    pub max_subscriptions_per_client: usize,
    pub max_topic_length: usize,
    pub max_topic_levels: usize,
    /// Allow zero-length client ids (assigning one).
    pub allow_empty_client_id: bool,
    /// Statements to break on purpose.
    pub violations: Violations,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_packet_size: 1024 * 1024,
            receive_maximum: 100,
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions: true,
            subscription_identifiers: true,
            shared_subscriptions: true,
            topic_alias_maximum: 10,
            max_session_expiry: 7 * 24 * 3600,
            server_keep_alive: None,
            connect_timeout: Duration::from_secs(10),
            max_queued_messages: 1000,
            max_inflight: 20,
            max_connections: 10_000,
            max_subscriptions_per_client: 1000,
            max_topic_length: 1024,
            max_topic_levels: 32,
            allow_empty_client_id: true,
            violations: Violations::none(),
        }
    }
}
