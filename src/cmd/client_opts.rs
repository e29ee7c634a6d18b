//! The options `pub` and `sub` share, named as mosquitto_pub/sub users
//! expect (`-h -p -i -u -P -V -k -c -x`, `--will-*`, `--cafile`, `-D`), and
//! their translation into a [`crate::client::Options`].

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::props::{PropertyContext, ValueType};
use mqtt_codec::{Properties, Property, Protocol, QoS, Will};
use serde_json::{json, Value};

use super::CmdError;
use crate::client::Options;
use crate::net::{Scheme, Target, TlsOptions};

/// Where and how to connect.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Broker host.
    #[arg(short = 'h', long, default_value = "localhost")]
    pub host: String,
    /// Broker port (default: 1883, 8883 with --cafile/--insecure, or the URL's).
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// The broker as a URL: mqtt://[user[:password]@]host[:port][/topic],
    /// mqtts://…, ws://host:port/mqtt, wss://… (wins over -h/-p).
    #[arg(
        short = 'L',
        long = "url",
        visible_alias = "target",
        value_name = "URL"
    )]
    pub url: Option<String>,
    /// Protocol version: 31, 311, 5 (also mqttv31, mqttv311, mqttv5, 3.1, 3.1.1, 5.0).
    #[arg(short = 'V', long = "protocol-version", default_value = "311", value_parser = parse_version)]
    pub protocol: Protocol,
    /// Client identifier (default: mqtt-harness-<command>-<pid>).
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
    /// User name.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (also read from MQTT_HARNESS_PASSWORD).
    #[arg(
        short = 'P',
        long = "pw",
        env = "MQTT_HARNESS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Keep alive in seconds (0: off); a PINGREQ goes out when nothing else did for this long.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keep_alive: u16,
    /// Keep the session: Clean Session / Clean Start 0 (as mosquitto's -c).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub keep_session: bool,
    /// Session Expiry Interval in seconds (5.0).
    #[arg(short = 'x', long = "session-expiry")]
    pub session_expiry: Option<u32>,
    /// Will topic: published by the broker if the connection ends without DISCONNECT.
    #[arg(long)]
    pub will_topic: Option<String>,
    /// Will payload.
    #[arg(long, requires = "will_topic")]
    pub will_payload: Option<String>,
    /// Will QoS.
    #[arg(long, requires = "will_topic", default_value_t = 0, value_parser = parse_qos)]
    pub will_qos: u8,
    /// Will retained.
    #[arg(long, requires = "will_topic")]
    pub will_retain: bool,
    /// PEM file of the authorities that signed the broker's certificate (TLS).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Client certificate chain (PEM), for brokers that authenticate clients by certificate.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any server certificate (TLS without authentication; testing only).
    #[arg(long)]
    pub insecure: bool,
    /// A 5.0 property, as mosquitto: `-D COMMAND NAME VALUE` (`-D connect
    /// user-property KEY VALUE`); COMMAND is connect, publish, subscribe,
    /// unsubscribe, disconnect or will; NAME a property (session-expiry-interval,
    /// content-type…). Repeatable.
    #[arg(short = 'D', long = "property", num_args = 3..=4, action = clap::ArgAction::Append, value_names = ["COMMAND", "NAME", "VALUE"])]
    pub property: Vec<String>,
    /// Deadline of each wait on the broker (connecting, an acknowledgement): 500ms, 5s….
    #[arg(long, default_value = "10s", value_parser = super::run::parse_timeout)]
    pub timeout: Duration,
    /// Print every packet exchanged to standard error, decoded and annotated
    /// with the statements that govern it, and flag spec violations by either side.
    #[arg(short = 'd', long)]
    pub trace: bool,
    /// With --trace: JSON lines instead of text.
    #[arg(long, requires = "trace")]
    pub trace_json: bool,
}

/// A user name and maybe a password, from a URL.
type Login = (String, Option<String>);
/// What a URL gives: the target, a topic, a login.
type UrlParts = (Target, Option<String>, Option<Login>);

/// `-V` values.
pub fn parse_version(s: &str) -> Result<Protocol, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_prefix("mqttv").unwrap_or(&t);
    match t {
        "31" => Ok(Protocol::V3_1),
        "311" => Ok(Protocol::V3_1_1),
        other => Protocol::parse(other).ok_or_else(|| {
            format!("`{s}` is not a protocol version; use 31, 311 or 5 (mqttv31, mqttv311, mqttv5)")
        }),
    }
}

pub fn parse_qos(s: &str) -> Result<u8, String> {
    match s.trim() {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(format!("`{s}` is not a QoS; use 0, 1 or 2")),
    }
}

pub fn qos(q: u8) -> QoS {
    QoS::from_u8(q).unwrap_or_default()
}

/// Properties by the packet they go in, from `-D` and the named flags.
#[derive(Debug, Default, Clone)]
pub struct PropertySets {
    pub connect: Properties,
    pub will: Properties,
    pub publish: Properties,
    pub subscribe: Properties,
    pub unsubscribe: Properties,
    pub disconnect: Properties,
}

impl PropertySets {
    pub fn is_empty(&self) -> bool {
        [
            &self.connect,
            &self.will,
            &self.publish,
            &self.subscribe,
            &self.unsubscribe,
            &self.disconnect,
        ]
        .iter()
        .all(|p| p.is_empty())
    }
}

/// A property named as mosquitto or as the spec (`content-type`,
/// `content_type`), its value read by its wire type, checked for `context`.
pub fn property(
    context: PropertyContext,
    name: &str,
    value: &[String],
) -> Result<Property, String> {
    let snake = name.trim().to_ascii_lowercase().replace('-', "_");
    let info = mqtt_codec::props::info_by_name(&snake).ok_or_else(|| {
        let names: Vec<String> = mqtt_codec::props::PROPERTIES
            .iter()
            .map(|p| p.name.replace('_', "-"))
            .collect();
        format!("`{name}` is not a property; one of: {}", names.join(", "))
    })?;
    if !info.contexts.contains(&context) {
        return Err(format!(
            "{} does not go in {context:?}",
            info.name.replace('_', "-")
        ));
    }
    let text = |i: usize| {
        value
            .get(i)
            .cloned()
            .ok_or_else(|| format!("{name} needs a value"))
    };
    let v: Value = match info.value {
        ValueType::Utf8Pair => {
            let (k, v) = match value {
                [k, v] => (k.clone(), v.clone()),
                [kv] => kv
                    .split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| format!("user-property `{kv}` needs a key and a value: KEY=VALUE (or KEY VALUE after -D)"))?,
                _ => return Err("user-property needs a key and a value".into()),
            };
            json!([k, v])
        }
        ValueType::Utf8 | ValueType::Binary => json!(text(0)?),
        _ => {
            let t = text(0)?;
            let n: u64 = t
                .trim()
                .parse()
                .map_err(|_| format!("{name}: `{t}` is not a number"))?;
            json!(n)
        }
    };
    if value.len() > 1 && info.value != ValueType::Utf8Pair {
        return Err(format!("{name} takes one value"));
    }
    crate::packet::property_from_json(&json!({"name": info.name, "value": v}))
        .map_err(|e| format!("{name}: {e}"))
}

impl ConnectArgs {
    /// The `-D` properties, by packet.
    pub fn property_sets(&self) -> Result<PropertySets, CmdError> {
        let mut sets = PropertySets::default();
        // The values of every -D in a row: COMMAND NAME VALUE, or COMMAND
        // user-property KEY VALUE.
        let mut i = 0;
        while i + 2 < self.property.len() + 1 {
            let (Some(command), Some(name)) = (self.property.get(i), self.property.get(i + 1))
            else {
                break;
            };
            let n = if name.replace('_', "-").eq_ignore_ascii_case("user-property") {
                2
            } else {
                1
            };
            let rest = self.property.get(i + 2..i + 2 + n).ok_or_else(|| {
                CmdError::Usage(format!(
                    "-D {command} {name}: give {n} value(s) after the property name"
                ))
            })?;
            i += 2 + n;
            let (ctx, set) = match command.as_str() {
                "connect" => (PropertyContext::Connect, &mut sets.connect),
                "will" => (PropertyContext::Will, &mut sets.will),
                "publish" => (PropertyContext::Publish, &mut sets.publish),
                "subscribe" => (PropertyContext::Subscribe, &mut sets.subscribe),
                "unsubscribe" => (PropertyContext::Unsubscribe, &mut sets.unsubscribe),
                "disconnect" => (PropertyContext::Disconnect, &mut sets.disconnect),
                other => {
                    return Err(CmdError::Usage(format!(
                        "-D {other}: the command is one of connect, publish, subscribe, unsubscribe, disconnect, will"
                    )))
                }
            };
            let p = property(ctx, name, rest)
                .map_err(|e| CmdError::Usage(format!("-D {command} {name}: {e}")))?;
            set.push(p);
        }
        Ok(sets)
    }

    /// The target and, from a URL, a topic, user name and password.
    fn target(&self) -> Result<UrlParts, CmdError> {
        let tls = TlsOptions {
            ca: self.cafile.clone(),
            insecure: self.insecure,
            client_cert: self.cert.clone().zip(self.key.clone()),
        };
        let Some(url) = &self.url else {
            let secure = self.cafile.is_some() || self.insecure;
            let scheme = if secure { "mqtts" } else { "mqtt" };
            let host = if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            };
            let port = self.port.unwrap_or(if secure { 8883 } else { 1883 });
            let mut t =
                Target::parse(&format!("{scheme}://{host}:{port}")).map_err(CmdError::Usage)?;
            t.tls = tls;
            return Ok((t, None, None));
        };
        // user[:password]@ before the host.
        let (scheme_part, rest) = url
            .split_once("://")
            .map_or(("", url.as_str()), |(s, r)| (s, r));
        let (auth, rest) = match rest.split_once('@') {
            Some((a, r)) if !a.contains('/') => (Some(a), r),
            _ => (None, rest),
        };
        let login = auth.map(|a| match a.split_once(':') {
            Some((u, p)) => (u.to_string(), Some(p.to_string())),
            None => (a.to_string(), None),
        });
        let clean = if scheme_part.is_empty() {
            rest.to_string()
        } else {
            format!("{scheme_part}://{rest}")
        };
        let mut t = Target::parse(&clean).map_err(|e| CmdError::Usage(format!("-L {url}: {e}")))?;
        let mut topic = None;
        if matches!(t.scheme, Scheme::Mqtt | Scheme::Mqtts) {
            // mqtt://host/topic: the path is the topic, as in mosquitto's -L.
            let path = std::mem::take(&mut t.path);
            let path = path.strip_prefix('/').unwrap_or(&path);
            if !path.is_empty() {
                topic = Some(path.to_string());
            }
        }
        if let Some(p) = self.port {
            t.port = p;
        }
        t.tls = tls;
        Ok((t, topic, login))
    }

    /// The client's options; `command` names the default client id. Also
    /// returns a topic the URL gave.
    pub fn options(
        &self,
        command: &str,
        props: &PropertySets,
    ) -> Result<(Options, Option<String>), CmdError> {
        let (target, topic, login) = self.target()?;
        let v5 = self.protocol.is_v5();
        if !v5 && (!props.is_empty() || self.session_expiry.is_some()) {
            return Err(CmdError::Usage(
                "5.0 properties (-D, -x, --user-property, --content-type…) need MQTT 5.0: add -V 5"
                    .into(),
            ));
        }
        let mut connect = props.connect.clone();
        if let Some(x) = self.session_expiry {
            connect.set(Property::SessionExpiryInterval(x));
        }
        let will = self.will_topic.as_ref().map(|t| Will {
            qos: qos(self.will_qos),
            retain: self.will_retain,
            properties: props.will.clone(),
            topic: t.as_str().into(),
            payload: Bytes::from(self.will_payload.clone().unwrap_or_default()),
        });
        let (url_user, url_password) = match login {
            Some((u, p)) => (Some(u), p),
            None => (None, None),
        };
        let username = self.username.clone().or(url_user);
        let password = self.password.clone().or(url_password);
        if password.is_some() && username.is_none() && !v5 {
            return Err(CmdError::Usage(
                "a password without a user name cannot be sent before MQTT 5.0 [MQTT-3.1.2-22]; add -u USER".into(),
            ));
        }
        let client_id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("mqtt-harness-{command}-{}", std::process::id()));
        if self.protocol == Protocol::V3_1 && client_id.len() > 23 {
            return Err(CmdError::Usage(format!(
                "client id `{client_id}` is {} characters; MQTT 3.1 allows 23 at most: give a shorter -i",
                client_id.len()
            )));
        }
        Ok((
            Options {
                target,
                protocol: self.protocol,
                client_id,
                clean_start: !self.keep_session,
                keep_alive: self.keep_alive,
                will,
                username,
                password: password.map(Bytes::from),
                properties: connect,
                timeout: self.timeout,
            },
            topic,
        ))
    }
}

/// A current-thread runtime for a client command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CmdError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))
}
