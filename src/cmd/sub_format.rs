//! How `sub` prints a message: the payload (plain), `topic payload` (-v),
//! a `-F` template, or a JSON line with every field and property.

use std::time::{SystemTime, UNIX_EPOCH};

use mqtt_codec::{Packet, Property, Protocol, Publish, QoS};

/// A message as the `--json` line: the PUBLISH as `decode --json` shows it
/// (topic resolved from its alias), one object per line.
pub fn json_line(m: &Publish, protocol: Protocol) -> String {
    crate::packet::packet_to_json(&Packet::Publish(m.clone()), protocol).to_string()
}

fn hex(b: &[u8], upper: bool) -> String {
    b.iter()
        .map(|x| {
            if upper {
                format!("{x:02X}")
            } else {
                format!("{x:02x}")
            }
        })
        .collect()
}

/// `-F` templates: `%t` topic, `%p` payload, `%x`/`%X` payload in hex, `%l`
/// payload length, `%q` QoS, `%r` retain (0/1), `%m` packet id (0 at QoS 0),
/// `%j` the JSON line, `%U` Unix time with fraction, `%I` ISO 8601 UTC time,
/// 5.0: `%C` content type, `%E` message expiry, `%R` response topic, `%D`
/// correlation data in hex, `%A` topic alias, `%S` subscription identifiers,
/// `%P` user properties (`k:v` separated by spaces); `%%` a percent;
/// `\n`, `\t`, `\\` escapes.
pub fn template(fmt: &str, m: &Publish, protocol: Protocol) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars();
    let prop = |f: &dyn Fn(&Property) -> Option<String>| -> String {
        m.properties
            .iter()
            .filter_map(f)
            .collect::<Vec<_>>()
            .join(" ")
    };
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.push_str(&m.topic),
                Some('p') => out.push_str(&String::from_utf8_lossy(&m.payload)),
                Some('x') => out.push_str(&hex(&m.payload, false)),
                Some('X') => out.push_str(&hex(&m.payload, true)),
                Some('l') => out.push_str(&m.payload.len().to_string()),
                Some('q') => out.push_str(&m.qos.as_u8().to_string()),
                Some('r') => out.push(if m.retain { '1' } else { '0' }),
                Some('m') => {
                    let id = if m.qos == QoS::AtMostOnce {
                        0
                    } else {
                        m.packet_id
                    };
                    out.push_str(&id.to_string())
                }
                Some('j') => out.push_str(&json_line(m, protocol)),
                Some('U') => out.push_str(&unix_time()),
                Some('I') => out.push_str(&iso_time()),
                Some('C') => out.push_str(&prop(&|p| match p {
                    Property::ContentType(s) => Some(s.to_string()),
                    _ => None,
                })),
                Some('E') => out.push_str(&prop(&|p| match p {
                    Property::MessageExpiryInterval(v) => Some(v.to_string()),
                    _ => None,
                })),
                Some('R') => out.push_str(&prop(&|p| match p {
                    Property::ResponseTopic(s) => Some(s.to_string()),
                    _ => None,
                })),
                Some('D') => out.push_str(&prop(&|p| match p {
                    Property::CorrelationData(b) => Some(hex(b, false)),
                    _ => None,
                })),
                Some('A') => out.push_str(&prop(&|p| match p {
                    Property::TopicAlias(v) => Some(v.to_string()),
                    _ => None,
                })),
                Some('S') => out.push_str(&prop(&|p| match p {
                    Property::SubscriptionIdentifier(v) => Some(v.to_string()),
                    _ => None,
                })),
                Some('P') => out.push_str(&prop(&|p| match p {
                    Property::UserProperty(k, v) => Some(format!("{k}:{v}")),
                    _ => None,
                })),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn unix_time() -> String {
    let d = now();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// `2026-12-02T17:30:00.123Z`, from the days since the epoch (civil calendar).
fn iso_time() -> String {
    let d = now();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_every_field() {
        let mut m = Publish {
            topic: "a/b".into(),
            payload: bytes::Bytes::from_static(b"hi"),
            qos: QoS::AtLeastOnce,
            packet_id: 7,
            retain: true,
            ..Publish::default()
        };
        m.properties
            .push(Property::UserProperty("k".into(), "v".into()));
        m.properties
            .push(Property::ContentType("text/plain".into()));
        assert_eq!(
            template("%t %p %x %l %q %r %m %P %C 100%%\\t.", &m, Protocol::V5),
            "a/b hi 6869 2 1 1 7 k:v text/plain 100%\t."
        );
        assert!(template("%I", &m, Protocol::V5).ends_with('Z'));
        assert!(template("%j", &m, Protocol::V5).starts_with("{\"type\":\"PUBLISH\""));
    }
}
