//! One `run` of the cases, beyond its flags: the target checked before any
//! case (`--wait-for-target`), the embedded broker started when there is no
//! target, the cases run and shown as they end, the failed ones retried
//! (`--retries`), SIGINT and SIGTERM listened to from before the first case.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use mqtt_codec::Protocol;

use super::CmdError;
use crate::net::{ConnectError, Target};
use crate::report::console::Live;
use crate::results::{CaseResult, RunReport, Signal};
use crate::run::setup::Setup;
use crate::run::{self as runner, RunOptions, SetupTarget};
use crate::scenario::Scenario;

/// One run: the target checked, the embedded broker started when there is
/// no target, the cases run and retried, until the end or a signal.
pub(crate) struct Session {
    pub opts: RunOptions,
    /// Without `--target`: the embedded broker's configuration.
    pub embedded: Option<reference_broker::Config>,
    pub retries: u32,
    pub wait_for_target: Option<Duration>,
}

/// What the cases send to the console loop.
enum Event {
    Case(CaseResult),
    Retry(CaseResult),
}

impl Session {
    pub async fn run(
        mut self,
        scenarios: Vec<Scenario>,
        live: &mut Live,
        console: &mut dyn Write,
    ) -> Result<RunReport, CmdError> {
        let mut targets: Vec<&Target> = Vec::new();
        if self.embedded.is_none() {
            targets.push(&self.opts.target);
        }
        targets.extend(self.opts.named_targets.values());
        for t in targets {
            check_target(t, self.opts.step_timeout, self.wait_for_target).await?;
        }
        let mut signals = Signals::new();
        let mut set_up = Vec::new();
        let embedded = match self.embedded.take() {
            None => {
                self.setups_of_profile(&scenarios);
                None
            }
            Some(config) => {
                set_up = start_setups(&scenarios, &config, &mut self.opts)
                    .await
                    .map_err(CmdError::Runtime)?;
                let b = EmbeddedBroker::start(config).await.map_err(|e| {
                    CmdError::Runtime(format!("cannot start the embedded reference broker: {e}"))
                })?;
                self.opts.target = b.target();
                Some(b)
            }
        };
        let target = self.opts.target.to_string();
        let started = tokio::time::Instant::now();
        let mut finished: Vec<CaseResult> = Vec::new();
        let mut interrupted = None;
        let outcome = {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let (opts, retries) = (&self.opts, self.retries);
            let work = async move {
                let again = if retries > 0 {
                    scenarios.clone()
                } else {
                    Vec::new()
                };
                let first_tx = tx.clone();
                let first = runner::run(scenarios, opts, move |c| {
                    let _ = first_tx.send(Event::Case(c.clone()));
                })
                .await;
                retry_failures(&first, &again, opts, retries, |c| {
                    let _ = tx.send(Event::Retry(c.clone()));
                })
                .await;
                Ok(())
            };
            tokio::pin!(work);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let ticking = live.progress.is_some();
            loop {
                tokio::select! {
                    signal = signals.next() => {
                        interrupted = Some(signal);
                        break Ok::<(), CmdError>(());
                    }
                    result = &mut work => {
                        while let Ok(ev) = rx.try_recv() {
                            take(ev, &mut finished, live, console);
                        }
                        break result;
                    }
                    Some(ev) = rx.recv() => take(ev, &mut finished, live, console),
                    _ = tick.tick(), if ticking => live.tick(console),
                }
            }
        };
        live.finish(console);
        for b in embedded.into_iter().chain(set_up) {
            b.stop().await;
        }
        outcome?;
        let mut report = RunReport::new(target, finished, started.elapsed());
        report.interrupted = interrupted;
        Ok(report)
    }
}

impl Session {
    /// Against `--target`: the set-ups its profile says it is are the
    /// target itself, with the run's credentials.
    fn setups_of_profile(&mut self, scenarios: &[Scenario]) {
        let listed = self
            .opts
            .profile
            .as_ref()
            .map(|p| p.setups.clone())
            .unwrap_or_default();
        let websocket = matches!(
            self.opts.target.scheme,
            crate::net::Scheme::Ws | crate::net::Scheme::Wss
        );
        for setup in runner::setups_needed(scenarios) {
            if listed.contains(&setup) || (setup.websocket() && websocket) {
                let target = SetupTarget {
                    target: self.opts.target.clone(),
                    username: None,
                    password: None,
                };
                self.opts.setups.insert(setup, target);
            }
        }
    }
}

/// One embedded broker per set-up `scenarios` need (`setup:`), each
/// committing the same deliberate violations as `main`, entered in
/// `opts.setups`; stop each when the run ends.
pub async fn start_setups(
    scenarios: &[Scenario],
    main: &reference_broker::Config,
    opts: &mut RunOptions,
) -> Result<Vec<EmbeddedBroker>, String> {
    let mut started = Vec::new();
    for setup in runner::setups_needed(scenarios) {
        let mut config = setup.broker_config()?;
        config.violations = main.violations.clone();
        let started_as = if setup.websocket() {
            EmbeddedBroker::start_websocket(config).await
        } else {
            EmbeddedBroker::start(config).await
        };
        let b = started_as.map_err(|e| {
            format!("cannot start the embedded reference broker set up as `{setup}`: {e}")
        })?;
        let login = setup == Setup::Login;
        opts.setups.insert(
            setup,
            SetupTarget {
                target: b.target(),
                username: login.then(|| runner::setup::USER.to_string()),
                password: login.then(|| runner::setup::PASSWORD.to_string()),
            },
        );
        started.push(b);
    }
    Ok(started)
}

/// Shows a case that ended and keeps it; a retry replaces the earlier
/// result of its case, counted.
fn take(ev: Event, finished: &mut Vec<CaseResult>, live: &mut Live, console: &mut dyn Write) {
    match ev {
        Event::Case(c) => {
            live.case(&c, false, console);
            finished.push(c);
        }
        Event::Retry(c) => {
            let key = c.key();
            if let Some(slot) = finished.iter_mut().find(|f| f.key() == key) {
                let earlier = std::mem::replace(slot, c);
                let merged = earlier.retried(slot.clone());
                live.case(&merged, true, console);
                *slot = merged;
            }
        }
    }
}

/// Runs again, up to `retries` times each, the cases of `first` that failed
/// or errored (known divergences too: one that passes on a retry is flaky,
/// which `--write-baseline` marks intermittent): the runner again on just
/// those scenarios, once per protocol they failed under. `on_retry` sees each
/// result; a case that passes (or is skipped) is not run again.
// TODO(engine): the case engine will retry a case in place; this loop then goes.
async fn retry_failures(
    first: &RunReport,
    scenarios: &[Scenario],
    opts: &RunOptions,
    retries: u32,
    mut on_retry: impl FnMut(&CaseResult),
) {
    use crate::results::Status as S;
    let mut pending: BTreeSet<(String, Protocol)> = first
        .cases
        .iter()
        .filter(|c| matches!(c.status, S::Fail | S::Error))
        .map(CaseResult::key)
        .collect();
    for _ in 0..retries {
        let protocols: BTreeSet<Protocol> = pending.iter().map(|(_, p)| *p).collect();
        for p in protocols {
            let again: Vec<Scenario> = scenarios
                .iter()
                .filter(|s| pending.contains(&(s.id.clone(), p)))
                .cloned()
                .collect();
            let only = RunOptions {
                protocols: vec![p],
                ..opts.clone()
            };
            let report = runner::run(again, &only, &mut on_retry).await;
            for c in report
                .cases
                .iter()
                .filter(|c| !matches!(c.status, S::Fail | S::Error))
            {
                pending.remove(&c.key());
            }
        }
    }
}

/// Checks that `target` accepts a connection (the harness's own connect:
/// TCP, then TLS or WebSocket as the URL says), retrying until `wait` has
/// passed; an unreachable target is exit status 3 with one message.
pub(crate) async fn check_target(
    target: &Target,
    timeout: Duration,
    wait: Option<Duration>,
) -> Result<(), CmdError> {
    use tokio::time::Instant;
    let until = Instant::now() + wait.unwrap_or(Duration::ZERO);
    let mut said = false;
    loop {
        let now = Instant::now();
        let deadline = now + timeout.min(until.saturating_duration_since(now).max(timeout));
        let failure = match crate::net::connect(target, deadline).await {
            Ok(_) => return Ok(()),
            Err(e) => reach_cause(target, &e),
        };
        if Instant::now() >= until {
            let within = wait.map_or(String::new(), |w| format!(" within {}", show(w)));
            let then = if wait.is_some() {
                "start it, check --target, or wait longer"
            } else {
                "start it, check --target, or give --wait-for-target 30s to wait for it"
            };
            return Err(CmdError::Unreachable(format!(
                "cannot reach {target}{within}: {failure}; {then}"
            )));
        }
        if !said {
            eprintln!(
                "waiting for {target} ({failure}), at most {}…",
                show(wait.unwrap_or_default())
            );
            said = true;
        }
        // A poll interval bounded by the deadline, not a wait for an event.
        tokio::time::sleep_until((Instant::now() + Duration::from_millis(100)).min(until)).await;
    }
}

/// The cause in a connect error, for people: `connection refused`.
fn reach_cause(target: &Target, error: &ConnectError) -> String {
    // A refused or unreachable TCP connection: the kind says it plainly.
    if let ConnectError::Io { error, .. } = error {
        return error.kind().to_string();
    }
    let text = error.to_string();
    let prefix = format!("cannot connect to {target}: ");
    let cause = text.strip_prefix(&prefix).unwrap_or(&text);
    let cause = match cause.rfind(" (os error ") {
        Some(i) if cause.ends_with(')') => cause.get(..i).unwrap_or(cause),
        _ => cause,
    };
    // `Connection refused` → `connection refused`; an acronym (`TLS`) stays.
    let mut chars = cause.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if second.is_lowercase() => {
            first.to_lowercase().chain(cause.chars().skip(1)).collect()
        }
        _ => cause.to_string(),
    }
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// SIGINT and SIGTERM, listened to from before the first case.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal; pending forever where none can be listened to.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn on(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = on(&mut self.interrupt) => Signal::Interrupt,
                () = on(&mut self.terminate) => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

/// The reference broker, in-process on an ephemeral loopback port: the
/// target of `run` without `--target`.
pub struct EmbeddedBroker {
    pub addr: std::net::SocketAddr,
    /// Served over WebSocket (`ws://ADDR/mqtt`) rather than plain TCP.
    websocket: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl EmbeddedBroker {
    pub async fn start(config: reference_broker::Config) -> std::io::Result<EmbeddedBroker> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(reference_broker::server::run(
            listener,
            config,
            async move {
                let _ = rx.await;
            },
        ));
        Ok(EmbeddedBroker {
            addr,
            websocket: false,
            shutdown: Some(tx),
            task,
        })
    }

    /// The same, served over WebSocket (subprotocol `mqtt`) at `ws://ADDR/mqtt`.
    pub async fn start_websocket(
        config: reference_broker::Config,
    ) -> std::io::Result<EmbeddedBroker> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(reference_broker::transport::run(
            listener,
            crate::net::Acceptor::Ws,
            config,
            async move {
                let _ = rx.await;
            },
        ));
        Ok(EmbeddedBroker {
            addr,
            websocket: true,
            shutdown: Some(tx),
            task,
        })
    }

    /// Where it listens.
    pub fn target(&self) -> Target {
        let url = if self.websocket {
            format!("ws://{}/mqtt", self.addr)
        } else {
            format!("mqtt://{}", self.addr)
        };
        Target::parse(&url).unwrap_or_else(|_| Self::placeholder())
    }

    /// A target that stands for the embedded broker until it has started.
    pub fn placeholder() -> Target {
        Target {
            scheme: crate::net::Scheme::Mqtt,
            host: "127.0.0.1".into(),
            port: 0,
            path: String::new(),
            tls: Default::default(),
        }
    }

    /// Stops it, closing its connections; gives it 5 s.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_read_as_people_say_them() {
        let t = Target::parse("mqtt://127.0.0.1:1883").unwrap();
        let refused = ConnectError::Io {
            target: t.to_string(),
            error: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(reach_cause(&t, &refused), "connection refused");
        let late = ConnectError::TimedOut {
            target: t.to_string(),
        };
        assert_eq!(reach_cause(&t, &late), "no answer before the deadline");
        let config = ConnectError::BadUrl {
            url: "ws://x".into(),
            reason: "no path".into(),
        };
        assert_eq!(
            reach_cause(&t, &config),
            "`ws://x` is not a WebSocket URL: no path"
        );
    }
}
