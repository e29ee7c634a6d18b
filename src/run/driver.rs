//! The thin async driver: carries out a case's requests on real connections
//! and real time, and hands back each reply with the time it came.

use std::collections::HashMap;
use std::time::Instant;

use super::machine::{Machine, OpenError, Output, Reply, Request, SendOutcome};
use super::RunOptions;
use crate::net::{Connection, Event, LogEntry as Exchange, SendError, Target};

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
        c.close().await;
        log.append(&mut c.take_log());
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
                old.close().await;
                log.append(&mut old.take_log());
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
                Err(e) => Reply::Opened(Err(OpenError {
                    refused_subprotocol: e.refused_subprotocol(),
                    message: e.to_string(),
                })),
            }
        }
        Request::Send {
            client,
            bytes,
            packet,
            deadline,
        } => {
            let Some(c) = conns.get_mut(&client) else {
                return Reply::Sent(SendOutcome::NotOpen);
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            Reply::Sent(outcome(c.send(&bytes, packet, deadline).await))
        }
        Request::SendText {
            client,
            bytes,
            deadline,
        } => {
            let Some(c) = conns.get_mut(&client) else {
                return Reply::Sent(SendOutcome::NotOpen);
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            Reply::Sent(outcome(c.send_text(&bytes, deadline).await))
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
                c.close().await;
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

/// A write's result as the case sees it.
fn outcome(written: Result<(), SendError>) -> SendOutcome {
    match written {
        Ok(()) => SendOutcome::Written,
        Err(SendError::Broken(e)) => SendOutcome::Broken(e.to_string()),
        Err(SendError::NotOpen) => SendOutcome::NotOpen,
        Err(SendError::Timeout) => SendOutcome::Timeout,
        Err(SendError::Unsupported(why)) => SendOutcome::Unsupported(why),
    }
}
