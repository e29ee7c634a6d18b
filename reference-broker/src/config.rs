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
    /// How often plain TCP connections are asked whether anything happened
    /// since the last ask; one with nothing between two asks gives up its
    /// task until it has something to do (`server/lounge.rs`), as does a
    /// new one quiet after its CONNECT. `None`: never.
    pub park_after: Option<Duration>,
    /// Messages queued per session beyond the in-flight window.
    pub max_queued_messages: usize,
    /// QoS 1/2 messages in flight towards a 3.x client (5.0 clients announce
    /// their own Receive Maximum). 3.1.1 sets no limit; the default, 100, is
    /// the Receive Maximum the broker announces for the other direction. At
    /// mosquitto's 20 one subscriber's throughput is capped at 20 messages
    /// per round trip: 245k against 767k messages/s in the QoS 1 fan-in
    /// benchmark on two cores.
    pub max_inflight: u16,
    /// Bytes waiting to be written to one connection beyond which QoS 0
    /// messages to it are dropped (QoS 1/2 wait in the session's queue, and
    /// the connection's own packets are not read until it has room).
    pub max_outbound_bytes: usize,
    /// Simultaneous network connections. Default: the process's soft
    /// open-files limit less [`FD_MARGIN`] (see [`default_max_connections`]).
    pub max_connections: usize,
    pub max_subscriptions_per_client: usize,
    pub max_topic_length: usize,
    pub max_topic_levels: usize,
    /// Allow zero-length client ids (assigning one).
    pub allow_empty_client_id: bool,
    /// Statements to break on purpose.
    pub violations: Violations,
    /// Users, passwords and topic ACLs (default: anyone may do anything).
    pub auth: crate::auth::Auth,
    /// Where sessions and retained messages persist (`--persist`); read by the tokio layer.
    pub persist_dir: Option<std::path::PathBuf>,
    /// Journal size (bytes) from which `--persist` compacts it into a new
    /// snapshot, when it is also four times the last snapshot.
    pub persist_compact_bytes: u64,
    /// Journal bytes waiting for the disk beyond which `--persist` stops
    /// reading connections until the writer has caught up.
    pub persist_max_pending_bytes: usize,
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
            park_after: Some(Duration::from_secs(2)),
            max_queued_messages: 1000,
            max_inflight: 100,
            max_outbound_bytes: 1024 * 1024,
            max_connections: default_max_connections(),
            max_subscriptions_per_client: 1000,
            max_topic_length: 1024,
            max_topic_levels: 32,
            allow_empty_client_id: true,
            violations: Violations::none(),
            auth: crate::auth::Auth::default(),
            persist_dir: None,
            persist_compact_bytes: 64 * 1024 * 1024,
            persist_max_pending_bytes: 64 * 1024 * 1024,
        }
    }
}

/// File descriptors `max_connections` leaves for what is not a client:
/// listeners, the persistence directory's lock, state and temporary files,
/// the certificate and password files read at start, stdio, and the
/// runtime's own (epoll, its wake-up pipe).
pub const FD_MARGIN: u64 = 64;

/// `max_connections` when the open-files limit is unknown or unlimited.
pub const FALLBACK_MAX_CONNECTIONS: usize = 10_000;

/// The default of [`Config::max_connections`]: a connection takes one file
/// descriptor, so the soft `RLIMIT_NOFILE` less [`FD_MARGIN`] (at least 1),
/// or [`FALLBACK_MAX_CONNECTIONS`] when there is no such limit to read.
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some(n) => usize::try_from(n.saturating_sub(FD_MARGIN).max(1)).unwrap_or(usize::MAX),
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The soft open-files limit; `None` if unlimited or not a Unix.
#[cfg(unix)]
fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<u64> {
    None
}

/// One listener: an address and how it speaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `host:port`; port 0 picks a free one.
    pub address: String,
    /// `mqtt` (TCP), `mqtts` (TLS), `ws` or `wss`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// PEM certificate chain, for `mqtts` and `wss`.
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key, for `mqtts` and `wss`.
    pub key: Option<std::path::PathBuf>,
}

fn default_transport() -> String {
    "mqtt".into()
}

/// The YAML configuration file: listeners, features, limits and violations.
/// Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    pub max_packet_size: Option<u32>,
    pub receive_maximum: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<bool>,
    pub wildcard_subscriptions: Option<bool>,
    pub subscription_identifiers: Option<bool>,
    pub shared_subscriptions: Option<bool>,
    pub topic_alias_maximum: Option<u16>,
    pub max_session_expiry: Option<u32>,
    pub server_keep_alive: Option<u16>,
    /// Seconds.
    pub connect_timeout: Option<f64>,
    /// Seconds; 0: idle connections keep their task.
    pub park_after: Option<f64>,
    pub max_queued_messages: Option<usize>,
    pub max_inflight: Option<u16>,
    /// Bytes pending towards one connection before QoS 0 messages to it are dropped.
    pub max_outbound_bytes: Option<usize>,
    /// Journal size (bytes) from which `--persist` writes a new snapshot.
    pub persist_compact_bytes: Option<u64>,
    /// Journal bytes waiting for the disk beyond which connections are not read.
    pub persist_max_pending_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_subscriptions_per_client: Option<usize>,
    pub max_topic_length: Option<usize>,
    pub max_topic_levels: Option<usize>,
    pub allow_empty_client_id: Option<bool>,
    #[serde(default)]
    pub violate: Vec<String>,
    /// Password file (`user:$pbkdf2-sha256$…` lines); see `auth`.
    pub password_file: Option<String>,
    /// Topic ACL file; see `auth`.
    pub acl_file: Option<String>,
    /// Default: true without a password file, false with one.
    pub allow_anonymous: Option<bool>,
    /// Directory where sessions and retained messages persist.
    pub persist_dir: Option<String>,
}

impl FileConfig {
    /// Parses the file's text; errors name the file, line and column.
    pub fn parse(path: &str, text: &str) -> Result<FileConfig, String> {
        serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{path}:{}:{}: {e}", l.line(), l.column()),
            None => format!("{path}: {e}"),
        })
    }

    /// Applies the file's settings over `config`.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { config.$f = v; } )* };
        }
        set!(
            max_packet_size,
            receive_maximum,
            maximum_qos,
            retain_available,
            wildcard_subscriptions,
            subscription_identifiers,
            shared_subscriptions,
            topic_alias_maximum,
            max_session_expiry,
            max_queued_messages,
            max_inflight,
            max_outbound_bytes,
            persist_compact_bytes,
            persist_max_pending_bytes,
            max_connections,
            max_subscriptions_per_client,
            max_topic_length,
            max_topic_levels,
            allow_empty_client_id
        );
        if self.server_keep_alive.is_some() {
            config.server_keep_alive = self.server_keep_alive;
        }
        if let Some(s) = self.connect_timeout {
            if !(s.is_finite() && s > 0.0 && s < 86_400.0) {
                return Err(format!(
                    "connect_timeout must be between 0 and 86400 seconds, not {s}"
                ));
            }
            config.connect_timeout = Duration::from_secs_f64(s);
        }
        if let Some(s) = self.park_after {
            if !(s.is_finite() && (0.0..86_400.0).contains(&s)) {
                return Err(format!(
                    "park_after must be between 0 and 86400 seconds, not {s}"
                ));
            }
            config.park_after = (s > 0.0).then(|| Duration::from_secs_f64(s));
        }
        if config.maximum_qos > 2 {
            return Err(format!(
                "maximum_qos must be 0, 1 or 2, not {}",
                config.maximum_qos
            ));
        }
        if config.receive_maximum == 0 || config.max_packet_size == 0 {
            return Err("receive_maximum and max_packet_size must be at least 1".into());
        }
        for v in &self.violate {
            config.violations.add(v)?;
        }
        Ok(())
    }
}
