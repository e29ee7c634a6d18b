//! The core's side of authentication and authorisation: CONNECT's
//! authentication step, the AUTH exchanges before and after CONNACK
//! (MQTT 5.0 section 4.12) and the ACL checks of PUBLISH, SUBSCRIBE and
//! delivery. The rules themselves live in [`crate::auth`].

use bytes::Bytes;
use mqtt_codec::{
    reason, Auth, ByteString, ConnAck, Connect, Packet, Properties, Property, PubResponse, Publish,
    QoS,
};
use std::time::Instant;

use super::{Broker, ConnId};
use crate::auth::{ConnAuth, Start, SCRAM_SHA_256};

/// What CONNECT handling does after the authentication step.
pub(super) enum Gate {
    /// Go on as `user`; `props` go into CONNACK (Authentication Method / Data).
    Go {
        user: Option<ByteString>,
        props: Vec<Property>,
    },
    /// An AUTH exchange is under way: CONNECT is held back.
    Wait,
    /// Refuse with these CONNACK codes (5.0, 3.x).
    Refuse { v5: u8, v3: u8 },
}

fn auth_packet(code: u8, method: &ByteString, data: Bytes) -> Packet {
    Packet::Auth(Auth {
        reason_code: code,
        properties: Properties::new()
            .with(Property::AuthenticationMethod(method.clone()))
            .with(Property::AuthenticationData(data)),
    })
}

impl Broker {
    /// The authentication step of CONNECT: also entered again, with the
    /// held-back CONNECT, once an exchange has succeeded.
    pub(super) fn authenticate(&mut self, conn: ConnId, connect: &Connect) -> Gate {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Gate::Wait;
        };
        match std::mem::take(&mut c.auth) {
            ConnAuth::Accepted(accepted) => {
                let crate::auth::Accepted { user, method, data } = *accepted;
                let mut props = Vec::new();
                // MQTT-4.12.0-5: the method again in the successful CONNACK.
                // The violation leaves it out, and its data with it (data
                // without a method would make the CONNACK malformed, another
                // fault than the one committed).
                if !self.config.violations.breaks("MQTT-4.12.0-5") {
                    if let Some(m) = method.as_ref() {
                        props.push(Property::AuthenticationMethod(m.clone()));
                    }
                    if let Some(d) = data {
                        props.push(Property::AuthenticationData(d));
                    }
                }
                c.auth = ConnAuth::done(user.clone(), method);
                Gate::Go { user, props }
            }
            ConnAuth::Start => match self.config.auth.start(connect) {
                Start::Refuse {
                    v5: reason::BAD_AUTHENTICATION_METHOD,
                    ..
                } if self.config.violations.breaks("MQTT-4.12.0-1") => {
                    c.auth = ConnAuth::Plain {
                        user: connect.username.clone(),
                    };
                    Gate::Go {
                        user: connect.username.clone(),
                        props: Vec::new(),
                    }
                }
                Start::Accept { user } => {
                    c.auth = ConnAuth::Plain { user: user.clone() };
                    let mut props = Vec::new();
                    if self.config.violations.breaks("MQTT-4.12.0-6") {
                        props.push(Property::AuthenticationMethod(ByteString::from_static(
                            SCRAM_SHA_256,
                        )));
                    }
                    Gate::Go { user, props }
                }
                Start::Continue { scram, data } => {
                    c.auth = ConnAuth::Connecting {
                        connect: Box::new(connect.clone()),
                        scram: Box::new(scram),
                    };
                    c.protocol = connect.protocol;
                    // MQTT-4.12.0-2: 0x18 asks for more; the violation sends 0x19.
                    let code = if self.config.violations.breaks("MQTT-4.12.0-2") {
                        reason::REAUTHENTICATE
                    } else {
                        reason::CONTINUE_AUTHENTICATION
                    };
                    self.send(
                        conn,
                        auth_packet(code, &ByteString::from_static(SCRAM_SHA_256), data),
                    );
                    Gate::Wait
                }
                Start::Refuse { v5, v3 } => Gate::Refuse { v5, v3 },
            },
            // A second CONNECT while the exchange runs (MQTT-3.1.0-2).
            other => {
                c.auth = other;
                Gate::Refuse {
                    v5: reason::PROTOCOL_ERROR,
                    v3: reason::v3::NOT_AUTHORIZED,
                }
            }
        }
    }

    /// AUTH before CONNACK: the client-final message of a SCRAM exchange.
    pub(super) fn auth_before_connack(&mut self, conn: ConnId, auth: Auth, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ConnAuth::Connecting { connect, scram } = std::mem::take(&mut c.auth) else {
            // MQTT-3.1.0-1: the first packet must be CONNECT.
            self.close(conn);
            return;
        };
        let same_method = auth.properties.authentication_method().as_deref() == Some(SCRAM_SHA_256);
        let outcome = if auth.reason_code != reason::CONTINUE_AUTHENTICATION || !same_method {
            // MQTT-4.12.0-5: every AUTH carries the method of CONNECT.
            Err(reason::PROTOCOL_ERROR)
        } else {
            let data = auth.properties.authentication_data().unwrap_or_default();
            self.config.auth.scram_final(&scram, &data)
        };
        match outcome {
            Ok(server_final) => {
                c.auth = ConnAuth::Accepted(Box::new(crate::auth::Accepted {
                    user: Some(ByteString::from(scram.user())),
                    method: Some(ByteString::from_static(SCRAM_SHA_256)),
                    data: Some(server_final),
                }));
                self.connect(conn, *connect, now);
            }
            Err(code) => {
                self.send(
                    conn,
                    Packet::ConnAck(ConnAck {
                        session_present: false,
                        code,
                        properties: Properties::new(),
                    }),
                );
                // MQTT-3.2.2-7 / 4.13.2-1: close after a refusing CONNACK;
                // the MQTT-3.2.2-5 violation keeps the connection, as it
                // does after any other refusal.
                if !self.breaks("MQTT-3.2.2-5") {
                    self.close(conn);
                }
            }
        }
    }

    /// AUTH after CONNACK: re-authentication (section 4.12.1).
    pub(super) fn auth_after_connack(&mut self, conn: ConnId, auth: Auth, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ConnAuth::Enhanced(enhanced) = &mut c.auth else {
            // MQTT-4.12.0-7 binds clients: no method was negotiated, so AUTH is a protocol error.
            self.disconnect(conn, reason::PROTOCOL_ERROR, now);
            return;
        };
        let method = enhanced.method.clone();
        let user = enhanced.user.clone();
        let pending = enhanced.reauth.take();
        // MQTT-4.12.1-1: re-authentication uses the method of CONNECT.
        if auth.properties.authentication_method().as_ref() != Some(&method) {
            self.disconnect(conn, reason::PROTOCOL_ERROR, now);
            return;
        }
        let data = auth.properties.authentication_data().unwrap_or_default();
        match (auth.reason_code, pending) {
            (reason::REAUTHENTICATE, None) => match self.config.auth.scram_first(&data) {
                // The identity cannot change on a connection.
                Ok((scram, server_first)) if user.as_deref() == Some(scram.user()) => {
                    if let Some(ConnAuth::Enhanced(enhanced)) =
                        self.conns.get_mut(&conn).map(|c| &mut c.auth)
                    {
                        enhanced.reauth = Some(Box::new(scram));
                    }
                    self.send(
                        conn,
                        auth_packet(reason::CONTINUE_AUTHENTICATION, &method, server_first),
                    );
                }
                // MQTT-4.12.1-2: a failed re-authentication ends the connection.
                _ => self.disconnect(conn, reason::NOT_AUTHORIZED, now),
            },
            (reason::CONTINUE_AUTHENTICATION, Some(scram)) => {
                match self.config.auth.scram_final(&scram, &data) {
                    Ok(server_final) => {
                        self.send(conn, auth_packet(reason::SUCCESS, &method, server_final))
                    }
                    Err(_) if self.breaks("MQTT-4.12.1-2") => {
                        self.send(conn, auth_packet(reason::SUCCESS, &method, Bytes::new()))
                    }
                    Err(_) => self.disconnect(conn, reason::NOT_AUTHORIZED, now),
                }
            }
            _ => self.disconnect(conn, reason::PROTOCOL_ERROR, now),
        }
    }

    fn conn_user(&self, conn: ConnId) -> Option<&str> {
        self.conns
            .get(&conn)
            .and_then(|c| c.auth.user())
            .map(|u| &**u)
    }

    pub(super) fn may_subscribe(&self, conn: ConnId, client_id: &str, filter: &str) -> bool {
        self.config
            .auth
            .may_subscribe(self.conn_user(conn), client_id, filter)
    }

    /// Whether the session `cid` may receive a message on `name`.
    pub(super) fn may_read(&self, cid: &ByteString, name: &str) -> bool {
        if !self.config.auth.has_acl() {
            return true;
        }
        let user = self.sessions.get(cid).and_then(|s| s.user.as_deref());
        self.config.auth.may_read(user, cid, name)
    }

    /// A PUBLISH the ACL refuses is answered here and true returned: 5.0 with
    /// reason 0x87 (QoS 0: dropped), 3.x acknowledged as usual but not
    /// forwarded (MQTT-3.3.5-2).
    pub(super) fn publish_refused(
        &mut self,
        conn: ConnId,
        client_id: &ByteString,
        p: &Publish,
    ) -> bool {
        if self
            .config
            .auth
            .may_publish(self.conn_user(conn), client_id, &p.topic)
        {
            return false;
        }
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let mut ack = PubResponse::new(p.packet_id);
        if v5 {
            ack.reason_code = reason::NOT_AUTHORIZED;
        }
        match p.qos {
            QoS::AtMostOnce => {}
            _ if !v5 && self.breaks("MQTT-3.3.5-2") => {}
            QoS::AtLeastOnce => self.send(conn, Packet::PubAck(ack)),
            QoS::ExactlyOnce => {
                // MQTT-4.3.3-9: after a failing PUBREC (5.0) the identifier is
                // free for a new message; the violation keeps it as in use, so
                // the next PUBLISH with it is taken for a duplicate.
                if !v5 || self.breaks("MQTT-4.3.3-9") {
                    // The exchange goes on to PUBREL / PUBCOMP as for any message.
                    if let Some(s) = self.sessions.get_mut(client_id) {
                        s.flow.incoming_qos2.insert(p.packet_id);
                    }
                }
                self.send(conn, Packet::PubRec(ack));
            }
        }
        true
    }
}
