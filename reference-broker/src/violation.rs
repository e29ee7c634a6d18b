//! Deliberate violations: the broker can be told to break chosen server-side
//! statements, so the harness can prove that each scenario's check can fail.

use std::collections::BTreeSet;

/// One statement the broker knows how to break, and how it breaks it.
#[derive(Debug, Clone, Copy)]
pub struct ViolationInfo {
    /// Statement ids (3.1.1 and/or 5.0 numbering) this violation breaks.
    pub ids: &'static [&'static str],
    /// What the broker does instead.
    pub behaviour: &'static str,
}

/// Every violation the broker can commit.
#[rustfmt::skip]
pub const VIOLATIONS: &[ViolationInfo] = &[
    ViolationInfo { ids: &["MQTT-3.1.0-2", "MQTT-3.2.0-2"], behaviour: "accepts a second CONNECT on a connection and answers it with another CONNACK" },
    ViolationInfo { ids: &["MQTT-3.1.2-3"], behaviour: "silently drops a CONNECT whose reserved flag bit is set instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.2-2"], behaviour: "silently drops a CONNECT with an unsupported protocol level instead of refusing it" },
    ViolationInfo { ids: &["MQTT-3.12.4-1"], behaviour: "never answers PINGREQ" },
    ViolationInfo { ids: &["MQTT-3.8.4-1"], behaviour: "does not answer SUBSCRIBE with a SUBACK" },
    ViolationInfo { ids: &["MQTT-3.8.4-2", "MQTT-2.3.1-7", "MQTT-2.2.1-6"], behaviour: "answers SUBSCRIBE with a SUBACK carrying a different packet identifier" },
    ViolationInfo { ids: &["MQTT-3.10.4-4", "MQTT-3.10.4-5"], behaviour: "does not answer UNSUBSCRIBE" },
    ViolationInfo { ids: &["MQTT-3.3.4-1", "MQTT-4.3.2-4"], behaviour: "does not acknowledge QoS 1 PUBLISH" },
    ViolationInfo { ids: &["MQTT-4.3.3-8"], behaviour: "does not send PUBREC for QoS 2 PUBLISH" },
    ViolationInfo { ids: &["MQTT-4.3.3-11"], behaviour: "does not answer PUBREL with PUBCOMP" },
    ViolationInfo { ids: &["MQTT-4.3.3-10", "MQTT-4.3.3-2"], behaviour: "forwards a re-sent QoS 2 PUBLISH again before PUBREL (duplicate delivery)" },
    ViolationInfo { ids: &["MQTT-3.2.2-1", "MQTT-3.2.2-2"], behaviour: "sets Session Present on a clean-start CONNACK" },
    ViolationInfo { ids: &["MQTT-3.2.2-3", "MQTT-3.1.2-4", "MQTT-3.1.2-5", "MQTT-3.1.2-23"], behaviour: "forgets a persistent session on reconnect (Session Present 0, subscriptions lost)" },
    ViolationInfo { ids: &["MQTT-3.3.1-5"], behaviour: "does not store retained messages" },
    ViolationInfo { ids: &["MQTT-3.3.1-6", "MQTT-3.3.1-7", "MQTT-3.3.1-10", "MQTT-3.3.1-11"], behaviour: "keeps a retained message when an empty retained PUBLISH should clear it" },
    ViolationInfo { ids: &["MQTT-3.3.1-8", "MQTT-3.3.1-9", "MQTT-3.3.1-12", "MQTT-3.3.1-13"], behaviour: "forwards the RETAIN flag wrongly (keeps it on live messages, clears it on retained ones)" },
    ViolationInfo { ids: &["MQTT-4.7.2-1"], behaviour: "lets filters starting with a wildcard match topics starting with '$'" },
    ViolationInfo { ids: &["MQTT-3.14.4-3", "MQTT-3.1.2-10"], behaviour: "publishes the will even after a normal DISCONNECT" },
    ViolationInfo { ids: &["MQTT-3.1.2-8", "MQTT-3.1.2-7"], behaviour: "never publishes will messages" },
    ViolationInfo { ids: &["MQTT-3.1.2-24", "MQTT-3.1.2-22", "MQTT-3.2.2-22"], behaviour: "does not enforce keep alive" },
    ViolationInfo { ids: &["MQTT-3.3.1-2", "MQTT-4.3.1-1"], behaviour: "sets DUP on QoS 0 PUBLISH it sends" },
    ViolationInfo { ids: &["MQTT-3.8.4-6", "MQTT-3.3.5-1", "MQTT-3.8.4-8"], behaviour: "delivers at the publisher's QoS, ignoring the granted QoS" },
    ViolationInfo { ids: &["MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.7.1-1"], behaviour: "silently drops a PUBLISH whose topic contains wildcards instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.8.3-4", "MQTT-3.8.3-5"], behaviour: "silently drops a SUBSCRIBE with reserved option bits or QoS 3 instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.3.1-4"], behaviour: "silently drops a PUBLISH with QoS 3 instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.14.1-1", "MQTT-2.2.2-1", "MQTT-2.1.3-1", "MQTT-2.2.2-2", "MQTT-3.6.1-1", "MQTT-3.8.1-1", "MQTT-3.10.1-1", "MQTT-3.15.1-1"], behaviour: "silently drops packets with wrong reserved fixed-header flags instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.3-8"], behaviour: "accepts an empty client id with clean session 0 (3.1.1)" },
    ViolationInfo { ids: &["MQTT-3.1.4-2", "MQTT-3.1.4-3"], behaviour: "keeps the old connection open when a client id connects again" },
    ViolationInfo { ids: &["MQTT-3.3.2-17", "MQTT-3.3.2-18", "MQTT-3.1.3-10"], behaviour: "drops user properties when forwarding (wills included)" },
    ViolationInfo { ids: &["MQTT-3.2.2-16", "MQTT-3.1.3-7"], behaviour: "accepts an empty client id without returning an Assigned Client Identifier" },
    ViolationInfo { ids: &["MQTT-4.12.0-1"], behaviour: "accepts a CONNECT whose authentication method it does not support, as if it named none" },
    ViolationInfo { ids: &["MQTT-4.12.0-5"], behaviour: "leaves the Authentication Method (and its Data) out of the CONNACK that ends an enhanced authentication" },
    ViolationInfo { ids: &["MQTT-4.12.0-6"], behaviour: "names an Authentication Method in CONNACK to a client that used none" },
    ViolationInfo { ids: &["MQTT-4.12.1-2"], behaviour: "answers a failed re-authentication with AUTH success and keeps the connection" },
    ViolationInfo { ids: &["MQTT-3.3.5-2"], behaviour: "neither acknowledges a 3.1.1 PUBLISH that the ACL refuses nor closes the connection" },
    ViolationInfo { ids: &["MQTT-3.3.2-3"], behaviour: "matches filters as plain prefixes, delivering to subscribers whose filter the topic does not match (\"a\" gets \"ab\")" },
    ViolationInfo { ids: &["MQTT-4.7.3-4"], behaviour: "matches topics and filters ignoring ASCII case" },
    ViolationInfo { ids: &["MQTT-3.8.4-3"], behaviour: "keeps the old subscription when an identical filter is subscribed again" },
    ViolationInfo { ids: &["MQTT-3.9.3-1", "MQTT-3.11.3-1"], behaviour: "lists SUBACK and UNSUBACK codes in reverse order of the filters" },
    ViolationInfo { ids: &["MQTT-3.8.4-5", "MQTT-3.8.4-4"], behaviour: "answers a multi-filter SUBSCRIBE with one SUBACK per filter" },
    ViolationInfo { ids: &["MQTT-3.10.4-2", "MQTT-3.10.4-1"], behaviour: "answers UNSUBSCRIBE with success but keeps the subscription, so delivery goes on" },
    ViolationInfo { ids: &["MQTT-3.10.4-6"], behaviour: "answers a multi-filter UNSUBSCRIBE with one UNSUBACK per filter" },
    ViolationInfo { ids: &["MQTT-3.1.3-9"], behaviour: "publishes a delayed will even when the client reconnects within the delay (5.0); refuses a client id with 0x05 instead of 0x02 (3.1.1)" },
    ViolationInfo { ids: &["MQTT-3.3.4-2"], behaviour: "with overlapping subscriptions, delivers at the QoS of the first matching one instead of the highest" },
    ViolationInfo { ids: &["MQTT-3.3.4-4", "MQTT-3.3.4-3"], behaviour: "with overlapping subscriptions, forwards only the first Subscription Identifier" },
    ViolationInfo { ids: &["MQTT-3.8.3-3", "MQTT-3.8.3-2"], behaviour: "silently drops a SUBSCRIBE without topic filters instead of closing the connection (3.1.1); ignores No Local (5.0); grants 3.1.1 wildcard filters when wildcard subscriptions are unavailable" },
    ViolationInfo { ids: &["MQTT-3.3.1-3"], behaviour: "sets DUP on the first transmission of QoS 1/2 messages it forwards" },
    ViolationInfo { ids: &["MQTT-3.3.2-4"], behaviour: "inverts the Payload Format Indicator when forwarding" },
    ViolationInfo { ids: &["MQTT-3.3.2-15"], behaviour: "drops the Response Topic when forwarding" },
    ViolationInfo { ids: &["MQTT-3.3.2-16"], behaviour: "drops the Correlation Data when forwarding" },
    ViolationInfo { ids: &["MQTT-3.3.2-20"], behaviour: "drops the Content Type when forwarding" },
    ViolationInfo { ids: &["MQTT-3.3.2-6"], behaviour: "forwards the original Message Expiry Interval, not the time remaining" },
    ViolationInfo { ids: &["MQTT-3.3.2-5"], behaviour: "delivers queued messages whose expiry interval has passed" },
    ViolationInfo { ids: &["MQTT-3.3.4-9", "MQTT-4.9.0-2", "MQTT-4.9.0-1"], behaviour: "ignores the client's Receive Maximum, sending every queued QoS 1/2 message at once" },
    ViolationInfo { ids: &["MQTT-3.1.2-25"], behaviour: "sends packets larger than the client's Maximum Packet Size" },
    ViolationInfo { ids: &["MQTT-3.1.2-27", "MQTT-3.1.2-26", "MQTT-3.3.2-11"], behaviour: "puts Topic Alias 65535 on every 5.0 PUBLISH, whatever Topic Alias Maximum the client announced" },
    ViolationInfo { ids: &["MQTT-4.4.0-1", "MQTT-4.8.2-4"], behaviour: "does not resend unacknowledged PUBLISH and PUBREL when a session resumes" },
    ViolationInfo { ids: &["MQTT-2.2.1-4", "MQTT-2.3.1-4", "MQTT-4.3.2-1", "MQTT-4.3.3-1"], behaviour: "gives every QoS 1/2 PUBLISH it sends packet identifier 1, even while 1 is in use" },
    ViolationInfo { ids: &["MQTT-2.2.1-5", "MQTT-2.3.1-6"], behaviour: "answers QoS 1 PUBLISH with a PUBACK carrying a different packet identifier" },
    ViolationInfo { ids: &["MQTT-4.3.3-4"], behaviour: "never answers PUBREC with PUBREL" },
    ViolationInfo { ids: &["MQTT-3.2.2-4", "MQTT-3.2.2-6"], behaviour: "sets Session Present on a CONNACK that refuses the connection" },
    ViolationInfo { ids: &["MQTT-3.2.2-5", "MQTT-3.2.2-7", "MQTT-4.13.2-1", "MQTT-3.1.4-6", "MQTT-3.1.4-5", "MQTT-4.12.0-4"], behaviour: "keeps the connection open after a CONNACK that refuses it (a failed enhanced authentication's too), and handles a CONNECT sent after it" },
    ViolationInfo { ids: &["MQTT-3.14.0-1", "MQTT-3.2.0-1"], behaviour: "refuses a 5.0 CONNECT with a DISCONNECT instead of a CONNACK" },
    ViolationInfo { ids: &["MQTT-3.14.2-2"], behaviour: "puts a Session Expiry Interval on the DISCONNECT packets it sends" },
    ViolationInfo { ids: &["MQTT-3.1.2-28"], behaviour: "sends Response Information in CONNACK to clients that did not request it" },
    ViolationInfo { ids: &["MQTT-3.1.2-29"], behaviour: "puts a Reason String on every 5.0 PUBACK, even when the client set Request Problem Information 0" },
    ViolationInfo { ids: &["MQTT-4.1.0-2"], behaviour: "keeps a session after its Session Expiry Interval has run out" },
    ViolationInfo { ids: &["MQTT-3.1.2-15", "MQTT-3.1.2-14", "MQTT-3.1.2-17", "MQTT-3.1.2-16"], behaviour: "inverts Will Retain when publishing a will" },
    ViolationInfo { ids: &["MQTT-4.4.0-2"], behaviour: "keeps a QoS 2 message refused by PUBREC 0x80 or above, and resends it when the session resumes" },
    ViolationInfo { ids: &["MQTT-4.3.3-5"], behaviour: "forgets a QoS 2 message once PUBREL is sent, so PUBREL is never resent" },
    ViolationInfo { ids: &["MQTT-3.3.1-1"], behaviour: "resends unacknowledged PUBLISH without DUP" },
    ViolationInfo { ids: &["MQTT-4.3.3-6"], behaviour: "on session resumption resends the PUBLISH instead of the PUBREL it already sent" },
    ViolationInfo { ids: &["MQTT-4.3.3-12"], behaviour: "keeps a QoS 2 packet identifier in use after PUBCOMP, dropping the next message that reuses it" },
    ViolationInfo { ids: &["MQTT-4.3.2-5", "MQTT-4.3.2-2"], behaviour: "acknowledges a QoS 1 PUBLISH with DUP set but does not forward it" },
    ViolationInfo { ids: &["MQTT-4.3.2-3", "MQTT-4.3.3-3"], behaviour: "forgets a QoS 1/2 message as soon as it is sent (no redelivery, no PUBREL)" },
    ViolationInfo { ids: &["MQTT-4.5.0-1"], behaviour: "delivers each message to one matching session only" },
    ViolationInfo { ids: &["MQTT-4.8.2-3"], behaviour: "delivers shared-subscription messages at the publisher's QoS, ignoring the granted QoS" },
    ViolationInfo { ids: &["MQTT-4.6.0-6", "MQTT-4.6.0-5"], behaviour: "sends queued messages newest first" },
    ViolationInfo { ids: &["MQTT-3.1.3-6"], behaviour: "assigns the same client id to every client that connects with an empty one" },
    ViolationInfo { ids: &["MQTT-3.2.2-8"], behaviour: "refuses 5.0 connections with the 3.1.1 return code" },
    ViolationInfo { ids: &["MQTT-3.2.2-12"], behaviour: "accepts a will whose QoS is above Maximum QoS" },
    ViolationInfo { ids: &["MQTT-3.2.2-13"], behaviour: "accepts a retained will when retain is not available" },
    ViolationInfo { ids: &["MQTT-3.2.2-9"], behaviour: "leaves Maximum QoS out of CONNACK when it supports less than QoS 2" },
    ViolationInfo { ids: &["MQTT-3.2.2-10"], behaviour: "refuses subscriptions above Maximum QoS (SUBACK 0x80) instead of granting them at the maximum" },
    ViolationInfo { ids: &["MQTT-3.3.2-12"], behaviour: "refuses a topic alias equal to the maximum it announced" },
    ViolationInfo { ids: &["MQTT-3.4.2-1"], behaviour: "answers a PUBLISH nobody subscribes to with PUBACK 0x11 (an UNSUBACK code)" },
    ViolationInfo { ids: &["MQTT-3.8.4-7"], behaviour: "reports the requested QoS in SUBACK instead of the granted one" },
    ViolationInfo { ids: &["MQTT-3.9.3-2"], behaviour: "refuses 3.1.1 subscriptions with the 5.0 code 0x87 instead of 0x80" },
    ViolationInfo { ids: &["MQTT-3.10.4-3"], behaviour: "forgets QoS 1/2 deliveries in flight for the filters a client unsubscribes from" },
    ViolationInfo { ids: &["MQTT-3.11.3-2"], behaviour: "sends 5.0 clients an UNSUBACK without reason codes" },
    ViolationInfo { ids: &["MQTT-3.14.4-2", "MQTT-3.14.4-1", "MQTT-4.13.1-1", "MQTT-4.8.0-1"], behaviour: "keeps serving a connection after a protocol error it answered with DISCONNECT" },
    ViolationInfo { ids: &["MQTT-1.5.4-1", "MQTT-1.5.3-1", "MQTT-1.5.7-1"], behaviour: "silently drops a packet with malformed UTF-8 (in a string or a string pair) instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-1.5.4-2", "MQTT-1.5.3-2", "MQTT-4.7.3-2"], behaviour: "silently drops a packet whose strings contain U+0000 instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-1.5.5-1"], behaviour: "silently drops a packet with a non-minimal variable byte integer instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-4.7.3-1"], behaviour: "silently drops a packet with an empty topic name or filter instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.2-1"], behaviour: "waits for more after a CONNECT with an unknown protocol name instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.4-1"], behaviour: "waits for more after a malformed CONNECT instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-2.3.1-1"], behaviour: "silently drops a 3.1.1 packet whose packet identifier is zero instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.3.2-8"], behaviour: "silently drops a PUBLISH with topic alias 0 instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.3.2-14"], behaviour: "silently drops a PUBLISH whose Response Topic has wildcards instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.5.2-1", "MQTT-3.6.2-1", "MQTT-3.7.2-1", "MQTT-3.14.2-1", "MQTT-3.15.2-1"], behaviour: "silently drops PUBREC, PUBREL, PUBCOMP, DISCONNECT or AUTH packets with an undefined reason code instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.2-6", "MQTT-3.1.4-4"], behaviour: "resumes the stored session despite Clean Session 1 (while answering Session Present 0)" },
    ViolationInfo { ids: &["MQTT-4.9.0-3", "MQTT-3.3.4-10"], behaviour: "holds back PINGRESP while the client's receive window is full" },
    ViolationInfo { ids: &["MQTT-4.12.0-2"], behaviour: "asks for more authentication data with AUTH 0x19 instead of 0x18" },
    ViolationInfo { ids: &["MQTT-3.3.2-7"], behaviour: "keeps a client's inbound topic aliases from one connection to the next" },
    ViolationInfo { ids: &["MQTT-4.3.3-7"], behaviour: "drops an expired QoS 2 message already sent instead of resending it when the session resumes" },
    ViolationInfo { ids: &["MQTT-4.3.3-13"], behaviour: "abandons an inbound QoS 2 exchange without PUBCOMP once the message has expired" },
    ViolationInfo { ids: &["MQTT-4.3.3-9"], behaviour: "after refusing a QoS 2 PUBLISH with PUBREC 0x80 or above, takes the next PUBLISH with that identifier for a duplicate" },
    ViolationInfo { ids: &["MQTT-4.8.2-5"], behaviour: "hands unacknowledged shared-subscription messages to another member when the receiver's session expires" },
    ViolationInfo { ids: &["MQTT-4.1.0-1"], behaviour: "discards a session when its Session Expiry Interval runs out even while its client is connected (a clean session at once)" },
    ViolationInfo { ids: &["MQTT-3.1.3-5"], behaviour: "refuses a client identifier of 23 bytes (off by one)" },
    ViolationInfo { ids: &["MQTT-3.1.3-2"], behaviour: "keys sessions on the client identifier with ASCII case folded" },
    ViolationInfo { ids: &["MQTT-1.5.4-3", "MQTT-1.5.3-3"], behaviour: "strips U+FEFF (BOM) from PUBLISH topic names" },
    ViolationInfo { ids: &["MQTT-3.1.2-12"], behaviour: "publishes the will of a client id's previous connection when the new one has no Will Flag (3.1.1)" },
    ViolationInfo { ids: &["MQTT-3.4.2-2", "MQTT-3.4.2-3", "MQTT-3.5.2-2", "MQTT-3.5.2-3", "MQTT-3.6.2-2", "MQTT-3.6.2-3", "MQTT-3.7.2-2", "MQTT-3.7.2-3", "MQTT-3.9.2-1", "MQTT-3.9.2-2", "MQTT-3.11.2-1", "MQTT-3.11.2-2"], behaviour: "puts a 1000-byte Reason String and a User Property on every 5.0 PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK, beyond the client's Maximum Packet Size" },
    ViolationInfo { ids: &["MQTT-6.0.0-1"], behaviour: "over WebSocket, reads a text frame's bytes as MQTT instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-6.0.0-2"], behaviour: "over WebSocket, assumes each binary frame holds whole packets and closes the connection when one does not" },
    ViolationInfo { ids: &["MQTT-6.0.0-4"], behaviour: "over WebSocket, accepts the upgrade without selecting the mqtt subprotocol" },
    ViolationInfo { ids: &["MQTT-3.3.4-7"], behaviour: "takes more unacknowledged QoS 2 PUBLISHes from a 5.0 client than its own Receive Maximum, instead of disconnecting with 0x93" },
    ViolationInfo { ids: &["MQTT-3.2.2-19", "MQTT-3.2.2-20", "MQTT-3.14.2-3", "MQTT-3.14.2-4", "MQTT-3.15.2-2", "MQTT-3.15.2-3"], behaviour: "puts a 1000-byte Reason String and a User Property on every 5.0 CONNACK, DISCONNECT and AUTH, beyond the client's Maximum Packet Size" },
    ViolationInfo { ids: &["MQTT-4.8.2-6"], behaviour: "redirects a shared-subscription message refused with PUBACK/PUBREC 0x80 or above to another member" },
];

/// The set of violations in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(BTreeSet<&'static str>);

impl Violations {
    pub fn none() -> Violations {
        Violations::default()
    }

    /// Adds the violation that breaks `id`. Unknown ids are an error that
    /// lists what can be broken.
    pub fn add(&mut self, id: &str) -> Result<(), String> {
        let id = id.trim();
        let info = VIOLATIONS
            .iter()
            .find(|v| v.ids.iter().any(|i| i.eq_ignore_ascii_case(id)));
        match info {
            Some(v) => {
                if let Some(first) = v.ids.first() {
                    self.0.insert(first);
                }
                Ok(())
            }
            None => Err(format!(
                "the broker cannot violate {id}; `--violate list` prints the {} statements it can break",
                statement_count()
            )),
        }
    }

    /// Whether the statement `id` is to be broken.
    pub fn breaks(&self, id: &str) -> bool {
        // The usual case, asked several times per message: skip the table scan.
        if self.0.is_empty() {
            return false;
        }
        VIOLATIONS
            .iter()
            .find(|v| v.ids.contains(&id))
            .and_then(|v| v.ids.first())
            .is_some_and(|first| self.0.contains(first))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

/// The text `--violate list` prints.
pub fn list() -> String {
    let mut out = String::new();
    for v in VIOLATIONS {
        out.push_str(&v.ids.join(", "));
        out.push_str("\n    ");
        out.push_str(v.behaviour);
        out.push('\n');
    }
    out.push_str(&format!("{} statements can be broken\n", statement_count()));
    out
}

/// How many statement ids the broker can break.
pub fn statement_count() -> usize {
    VIOLATIONS.iter().map(|v| v.ids.len()).sum()
}
