//! Sends the scenario writes as they are, not as packets built from fields:
//! hex bytes (decoded once, for the log, where they are a packet) and a
//! packet in a WebSocket text frame (which MQTT forbids, MQTT-6.0.0-1).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::super::machine::{Reply, Request, SendOutcome};
use super::super::verdict::{CaseError, Stop};
use super::{unexpected, Logic};
use crate::packet;
use crate::results::Failure;

impl Logic {
    /// Builds and encodes the packet that `fields` describe, and writes it
    /// in one WebSocket text frame (`send_text`).
    pub(super) async fn send_text(
        &mut self,
        client: &str,
        fields: Map<String, Value>,
    ) -> Result<(), Stop> {
        let value = self
            .vars
            .to_send(&Value::Object(fields), client, &self.captures)
            .map_err(|e| Stop::Error(CaseError::BadPacket(e)))?;
        let protocol = self.conns.get(client).map_or(self.protocol, |c| c.protocol);
        let (packet, overrides) = packet::packet_from_value(&value, protocol).map_err(|e| {
            Stop::Error(CaseError::BadPacket(format!(
                "the packet to send is not valid: {e}"
            )))
        })?;
        let bytes = mqtt_codec::encode_with(&packet, protocol, &overrides).map_err(|e| {
            Stop::Error(CaseError::BadPacket(format!(
                "cannot encode the packet to send: {e}"
            )))
        })?;
        if !self.conn(client)?.open {
            return Err(Stop::Fail(Failure {
                step: 0,
                pos: None,
                expected: format!("client `{client}`'s connection to be open to send"),
                got: "it was closed".into(),
                got_hex: None,
            }));
        }
        let deadline = self.now() + self.opts.step_timeout;
        let reply = self
            .io
            .call(Request::SendText {
                client: client.to_string(),
                bytes,
                deadline,
            })
            .await;
        match reply {
            Reply::Sent(SendOutcome::Written) => Ok(()),
            // Not UTF-8, or not a WebSocket: the scenario cannot run here.
            Reply::Sent(SendOutcome::Unsupported(why)) => {
                Err(Stop::Error(CaseError::BadPacket(why)))
            }
            Reply::Sent(SendOutcome::Broken(why)) => {
                self.note(client, &format!("writing failed: {why}")).await;
                self.close(client).await;
                Ok(())
            }
            Reply::Sent(SendOutcome::NotOpen) => {
                Err(Stop::Error(CaseError::NoConnection(client.to_string())))
            }
            Reply::Sent(SendOutcome::Timeout) => Err(Stop::Error(CaseError::Stalled(format!(
                "client `{client}`: the broker did not take the bytes in time"
            )))),
            other => Err(unexpected(&other)),
        }
    }

    /// Bytes as a scenario wrote them, decoded once for the log where they
    /// are a packet the client may send.
    pub(super) async fn send_hex(&mut self, client: &str, bytes: &[u8]) -> Result<(), Stop> {
        let protocol = self.conns.get(client).map_or(self.protocol, |c| c.protocol);
        let bytes = Bytes::copy_from_slice(bytes);
        let opts = mqtt_codec::DecodeOptions::new(protocol, mqtt_codec::Sender::Client);
        let packet = match mqtt_codec::decode_bytes(&bytes, &opts) {
            Ok(mqtt_codec::Decoded::Packet { packet, len }) if len == bytes.len() => Some(packet),
            _ => None,
        };
        match &packet {
            Some(p) => self.track_sent(client, p, protocol),
            // Bytes it cannot read may change the client's subscriptions
            // when they are a CONNECT, SUBSCRIBE or UNSUBSCRIBE.
            None if matches!(bytes.first().map(|b| b >> 4), Some(1 | 8 | 10)) => {
                self.subscriptions.insert(client.to_string(), None);
            }
            None => {}
        }
        self.write(client, bytes, packet).await
    }
}
