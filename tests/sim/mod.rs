//! A fake driver and broker for the case engine, on a fake clock (used by
//! tests/engine.rs and tests/engine_choices.rs with `mod sim;`).
//!
//! A [`Sim`] plays the driver and a small fake broker at once: it answers
//! each request of the case's state machine, turns the packets the case
//! sends into the events a broker of the test's choosing would send back,
//! and moves its clock only when the case waits (a read that nothing
//! answers ends at its deadline, a sleep at its end).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_codec::{ConnAck, Packet, Protocol, PubResponse, QoS, SubAck};
use mqtt_harness::net::{Event, Target};
use mqtt_harness::results::CaseResult;
use mqtt_harness::run::{self, Case, Ending, Output, Reply, Request, RunOptions, SendOutcome};
use mqtt_harness::scenario::{parse_scenario, Scenario};

/// What the fake broker answers to a packet a client sent: events for that
/// client (a close is `Event::Closed`).
pub type Behaviour = Box<dyn FnMut(&str, &Packet) -> Vec<Event>>;

/// What the fake broker sends another client because of a packet (a
/// message it routes): that client's name and the event.
pub type Relay = Box<dyn FnMut(&str, &Packet) -> Option<(String, Event)>>;

pub struct Sim {
    pub now: Instant,
    inbox: HashMap<String, VecDeque<Event>>,
    behaviour: Behaviour,
    pub relay: Option<Relay>,
    /// Every packet the case sent, by client, in order.
    pub sent: Vec<(String, Packet)>,
    /// Connections opened (probes included).
    pub opened: Vec<String>,
    /// Connections the broker closed.
    pub closed: Vec<String>,
}

impl Sim {
    pub fn new(behaviour: impl FnMut(&str, &Packet) -> Vec<Event> + 'static) -> Sim {
        Sim {
            now: Instant::now(),
            inbox: HashMap::new(),
            behaviour: Box::new(behaviour),
            relay: None,
            sent: Vec::new(),
            opened: Vec::new(),
            closed: Vec::new(),
        }
    }

    fn reply(&mut self, request: Request) -> Reply {
        match request {
            Request::Open { client, .. } => {
                self.inbox.insert(client.clone(), VecDeque::new());
                self.closed.retain(|c| *c != client);
                self.opened.push(client);
                Reply::Opened(Ok(()))
            }
            Request::Send { client, packet, .. } => {
                if !self.inbox.contains_key(&client) {
                    return Reply::Sent(SendOutcome::NotOpen);
                }
                if self.closed.contains(&client) {
                    return Reply::Sent(SendOutcome::Broken("reset".into()));
                }
                let Some(p) = packet else {
                    // Bytes with deliberate faults: a strict broker closes.
                    if let Some(inbox) = self.inbox.get_mut(&client) {
                        inbox.push_back(Event::Closed(None));
                    }
                    return Reply::Sent(SendOutcome::Written);
                };
                {
                    let relayed = self.relay.as_mut().and_then(|r| r(&client, &p));
                    if let Some((to, ev)) = relayed {
                        if let Some(inbox) = self.inbox.get_mut(&to) {
                            inbox.push_back(ev);
                        }
                    }
                    let answers = (self.behaviour)(&client, &p);
                    self.sent.push((client.clone(), p));
                    if let Some(inbox) = self.inbox.get_mut(&client) {
                        inbox.extend(answers);
                    }
                }
                Reply::Sent(SendOutcome::Written)
            }
            Request::Read { client, deadline } => {
                if self.closed.contains(&client) {
                    return Reply::Event(Event::Closed(Some("already closed".into())));
                }
                let next = self.inbox.get_mut(&client).and_then(VecDeque::pop_front);
                if matches!(next, Some(Event::Closed(_))) {
                    self.closed.push(client.clone());
                }
                Reply::Event(match next {
                    Some(ev) => ev,
                    None => {
                        // Nothing comes: the read ends at its deadline.
                        self.now = self.now.max(deadline);
                        Event::Timeout
                    }
                })
            }
            Request::Sleep { until } => {
                self.now = self.now.max(until);
                Reply::Done
            }
            Request::Close { client } => {
                self.inbox.remove(&client);
                Reply::Done
            }
            Request::SendText { client, .. } => Reply::Sent(if self.inbox.contains_key(&client) {
                SendOutcome::Written
            } else {
                SendOutcome::NotOpen
            }),
            Request::SetProtocol { .. } | Request::Note { .. } => Reply::Done,
        }
    }

    /// Runs the case to its result; the fake clock's elapsed time is its duration.
    pub fn run(&mut self, scenario: &str, protocol: Protocol) -> CaseResult {
        self.run_with(scenario, protocol, None)
    }

    pub fn run_with(
        &mut self,
        scenario: &str,
        protocol: Protocol,
        profile: Option<&str>,
    ) -> CaseResult {
        let scenario: Scenario =
            parse_scenario("scenarios/shared/x/case.yaml", scenario).expect("the scenario parses");
        let case = Case {
            scenario: Arc::new(scenario),
            protocol,
        };
        let opts = RunOptions {
            step_timeout: Duration::from_secs(5),
            profile: profile.map(|text| {
                Arc::new(mqtt_harness::profile::parse_profile("p.yaml", text).expect("a profile"))
            }),
            ..RunOptions::new(Target::parse("mqtt://127.0.0.1:1").expect("a target"))
        };
        let mut machine = run::case_machine(&case, &opts, "abc123", 1);
        let start = self.now;
        let mut out = machine.start(self.now);
        let mut requests = 0;
        let ending: Ending = loop {
            match out {
                Output::Request(r) => {
                    requests += 1;
                    assert!(requests < 10_000, "the case never ends");
                    let reply = self.reply(r);
                    out = machine.resume(reply, self.now);
                }
                Output::Done(ending) => break ending,
                Output::Stalled => panic!("the case logic stalled"),
            }
        };
        run::case_result(&case, ending, self.now - start, Vec::new(), false)
    }
}

pub fn packet(p: Packet) -> Event {
    Event::Packet(p, Bytes::new())
}

pub fn connack(code: u8) -> Event {
    packet(Packet::ConnAck(ConnAck {
        code,
        ..Default::default()
    }))
}

/// A broker that accepts every CONNECT and answers PINGREQ, SUBSCRIBE
/// (granting what was asked) and QoS 1 PUBLISH; it never closes a connection.
pub fn well_behaved(_client: &str, p: &Packet) -> Vec<Event> {
    match p {
        Packet::Connect(_) => vec![connack(0)],
        Packet::PingReq => vec![packet(Packet::PingResp)],
        Packet::Subscribe(s) => vec![packet(Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reason_codes: s.filters.iter().map(|f| f.options.qos as u8).collect(),
            ..Default::default()
        }))],
        Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
            vec![packet(Packet::PubAck(PubResponse::new(p.packet_id)))]
        }
        _ => Vec::new(),
    }
}
