//! The thin async driver: carries out a case's requests on real connections
//! and real time, and hands back each reply with the time it came.

use std::collections::HashMap;
use std::time::Instant;

use super::machine::{Machine, Output, Reply, Request, SendOutcome};
use super::RunOptions;
use crate::client::{Connection, Event, Exchange, Target};

/// Runs `machine` to its end against `target` (and the named targets of
/// `opts`); returns its outcome and the log of every connection it opened,
/// in time order. `None`: the logic stalled (a harness bug).
pub async fn drive<T>(
    mut machine: Machine<T>,
    target: &Target,
    opts: &RunOptions,
) -> (Option<T>, Vec<Exchange>) {
    let mut conns: HashMap<String, Connection> = HashMap::new();
    let mut log: Vec<Exchange> = Vec::new();
    let mut output = machine.start(Instant::now());
    let outcome = loop {
        let request = match output {
            Output::Request(r) => r,
            Output::Done(t) => break Some(t),
            Output::Stalled => break None,
        };
        let reply = carry_out(request, &mut conns, &mut log, target, opts).await;
        output = machine.resume(reply, Instant::now());
    };
    for (_, mut c) in conns.drain() {
        c.drop_connection().await;
        log.append(&mut c.log);
    }
    log.sort_by_key(|e| e.at);
    (outcome, log)
}

async fn carry_out(
    request: Request,
    conns: &mut HashMap<String, Connection>,
    log: &mut Vec<Exchange>,
    target: &Target,
    opts: &RunOptions,
) -> Reply {
    match request {
        Request::Open {
            client,
            target: named,
            protocol,
        } => {
            if let Some(mut old) = conns.remove(&client) {
                old.drop_connection().await;
                log.append(&mut old.log);
            }
            let to = named
                .and_then(|n| opts.named_targets.get(&n))
                .unwrap_or(target);
            let deadline = tokio::time::Instant::now() + opts.step_timeout;
            match Connection::open(&client, to, protocol, deadline).await {
                Ok(c) => {
                    conns.insert(client, c);
                    Reply::Opened(Ok(()))
                }
                Err(e) => Reply::Opened(Err(e)),
            }
        }
        Request::Send {
            client,
            bytes,
            packet: _,
            deadline,
        } => {
            let Some(c) = conns.get_mut(&client) else {
                return Reply::Sent(SendOutcome::NotOpen);
            };
            if !c.is_open() {
                return Reply::Sent(SendOutcome::NotOpen);
            }
            let timeout = deadline.saturating_duration_since(Instant::now());
            Reply::Sent(match c.send(&bytes, timeout).await {
                Ok(()) => SendOutcome::Written,
                Err(m) if m.contains("writing failed") => SendOutcome::Broken(m),
                Err(_) => SendOutcome::Timeout,
            })
        }
        Request::SendText {
            client,
            bytes,
            deadline,
        } => {
            let Some(c) = conns.get_mut(&client).filter(|c| c.is_open()) else {
                return Reply::Sent(SendOutcome::NotOpen);
            };
            let timeout = deadline.saturating_duration_since(Instant::now());
            Reply::Sent(match c.send_text(&bytes, timeout).await {
                Ok(()) => SendOutcome::Written,
                Err(m) if m.contains("in time") => SendOutcome::Timeout,
                Err(m) => SendOutcome::Broken(m),
            })
        }
        Request::SetProtocol { client, protocol } => {
            if let Some(c) = conns.get_mut(&client) {
                c.set_protocol(protocol);
            }
            Reply::Done
        }
        Request::Read { client, deadline } => Reply::Event(match conns.get_mut(&client) {
            Some(c) => c.next_event(tokio::time::Instant::from_std(deadline)).await,
            None => Event::Closed(Some("the client has no connection".into())),
        }),
        Request::Close { client } => {
            if let Some(c) = conns.get_mut(&client) {
                c.drop_connection().await;
            }
            Reply::Done
        }
        Request::Sleep { until } => {
            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
            Reply::Done
        }
        Request::Note { client, text } => {
            if let Some(c) = conns.get_mut(&client) {
                c.note(text);
            }
            Reply::Done
        }
    }
}
