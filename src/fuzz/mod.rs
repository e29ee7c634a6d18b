//! The network fuzzer behind `mqtt-harness fuzz`: structure-aware inputs
//! made from the scenario library ([`input`], [`mutate`]), run against a
//! live broker over `mqtt_net` with several connections at once ([`exec`]),
//! judged by oracles that never count what the spec permits ([`oracle`]),
//! each new finding minimised ([`minimise`]) and written as a scenario that
//! `mqtt-harness run` replays ([`write`]). With several targets, the same
//! inputs go to each and differences in what they do are classified
//! ([`diff`]).
//!
//! Inputs depend on the seed and their index only ([`mutate::generate`]),
//! never on what the target answered: a run with `--seed N --max-execs M`
//! sends the same inputs every time, and its `inputs_digest` says so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_codec::PacketType;
use serde_json::{json, Value};
use tokio::time::Instant;

pub mod diff;
pub mod exec;
pub mod input;
pub mod minimise;
pub mod mutate;
pub mod oracle;
pub mod write;

use exec::{Executor, Got, Liveness, Rec, Timing};
use input::Input;
use oracle::{Check, Finding, Kind};

/// What a campaign is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub executor: Executor,
    /// `--differential`: the other targets, given the same inputs.
    pub others: Vec<Executor>,
    pub seed: u64,
    pub duration: Option<Duration>,
    pub max_execs: Option<u64>,
    pub findings_dir: Option<PathBuf>,
    /// Inputs run at once.
    pub jobs: usize,
    /// `--pid`: the broker's process, whose memory is watched.
    pub pid: Option<u32>,
    /// Growth of its resident memory (KiB) above the first reading that is a finding.
    pub rss_bound_kib: u64,
    /// Shown in the findings' comments.
    pub target_name: String,
}

/// A finding as reported.
#[derive(Debug, Clone)]
pub struct Found {
    pub finding: Finding,
    pub index: u64,
    pub origin: String,
    pub packets: usize,
    pub bytes: usize,
    pub scenario: Option<String>,
    pub at: Duration,
    pub occurrences: u64,
    pub minimise_trials: usize,
    /// Whether `run` replaying the written scenario fails on the statement
    /// (checked once, right after minimising; `None` for a crash).
    pub replayed: Option<bool>,
}

/// Counters of a run, shared by its workers.
#[derive(Debug, Default)]
pub struct Stats {
    pub executions: u64,
    pub connections: u64,
    pub sent_types: BTreeSet<&'static str>,
    pub received_types: BTreeSet<&'static str>,
    pub statements: BTreeSet<String>,
    pub found: Vec<Found>,
    pub differences: diff::Differences,
    /// Per input index, its digest: folded in index order at the end.
    pub digests: BTreeMap<u64, u64>,
    pub first_finding: Option<Duration>,
    pub rss: Option<(u64, u64)>,
}

/// The outcome of a campaign.
#[derive(Debug)]
pub struct Report {
    pub stats: Stats,
    pub elapsed: Duration,
    pub seed: u64,
    pub target: String,
    pub others: Vec<String>,
}

impl Report {
    pub fn inputs_digest(&self) -> String {
        let d = self
            .stats
            .digests
            .values()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, d| {
                input::digest(&[h.to_le_bytes(), d.to_le_bytes()].concat())
            });
        format!("{d:016x}")
    }

    pub fn execs_per_s(&self) -> f64 {
        self.stats.executions as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    pub fn by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for f in &self.stats.found {
            *m.entry(f.finding.kind.as_str()).or_insert(0) += 1;
        }
        m
    }

    pub fn json(&self) -> Value {
        let findings: Vec<Value> = self
            .stats
            .found
            .iter()
            .map(|f| {
                json!({
                    "kind": f.finding.kind.as_str(),
                    "statement": f.finding.statement,
                    "message": f.finding.message,
                    "scenario": f.scenario,
                    "input_index": f.index,
                    "seed_scenario": f.origin,
                    "packets": f.packets,
                    "bytes": f.bytes,
                    "found_after_s": round(f.at.as_secs_f64()),
                    "occurrences": f.occurrences,
                    "minimise_trials": f.minimise_trials,
                    "replayed": f.replayed,
                })
            })
            .collect();
        json!({
            "summary": {
                "target": self.target,
                "differential": self.others,
                "seed": self.seed,
                "executions": self.stats.executions,
                "execs_per_s": round(self.execs_per_s()),
                "connections": self.stats.connections,
                "duration_s": round(self.elapsed.as_secs_f64()),
                "findings": self.stats.found.len(),
                "findings_by_kind": self.by_kind(),
                "time_to_first_finding_s": self.stats.first_finding.map(|d| round(d.as_secs_f64())),
                "packet_types_sent": self.stats.sent_types,
                "packet_types_received": self.stats.received_types,
                "statements_exercised": self.stats.statements.len(),
                "inputs_digest": self.inputs_digest(),
                "rss_kib": self.stats.rss.map(|(first, max)| json!({"first": first, "max": max})),
            },
            "findings": findings,
            "differences": self.stats.differences.json(),
        })
    }

    /// The console summary.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} executions in {:.1} s ({:.0}/s), {} connections, against {}\n",
            self.stats.executions,
            self.elapsed.as_secs_f64(),
            self.execs_per_s(),
            self.stats.connections,
            self.target
        );
        s.push_str(&format!(
            "exercised: {} packet types sent, {} received, {} statements; inputs digest {} (seed {})\n",
            self.stats.sent_types.len(),
            self.stats.received_types.len(),
            self.stats.statements.len(),
            self.inputs_digest(),
            self.seed
        ));
        if let Some((first, max)) = self.stats.rss {
            s.push_str(&format!(
                "broker memory: {first} KiB at first, {max} KiB at most\n"
            ));
        }
        for f in &self.stats.found {
            s.push_str(&format!(
                "FINDING {} {}: {} ({} packets, {} bytes after minimising; seen {} times)\n",
                f.finding.kind.as_str(),
                f.finding.statement.as_deref().unwrap_or("(no statement)"),
                f.finding.message,
                f.packets,
                f.bytes,
                f.occurrences
            ));
            if let Some(p) = &f.scenario {
                s.push_str(&format!("        replay: mqtt-harness run {p}\n"));
            }
            if f.replayed == Some(false) {
                s.push_str(
                    "        (replaying the scenario once did not reproduce it: intermittent)\n",
                );
            }
        }
        if !self.others.is_empty() {
            s.push_str(&self.stats.differences.text());
        }
        let kinds: Vec<String> = self
            .by_kind()
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        match self.stats.first_finding {
            Some(t) => s.push_str(&format!(
                "{} finding(s): {}; the first after {:.1} s\n",
                self.stats.found.len(),
                kinds.join(", "),
                t.as_secs_f64()
            )),
            None => s.push_str("no finding\n"),
        }
        s
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The resident memory of process `pid`, in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Tokens of executions: as long as [`input::TOKEN`], unique in the run.
struct Tokens {
    run: String,
    next: AtomicU64,
}

impl Tokens {
    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut digits = String::new();
        let mut x = n;
        for _ in 0..7 {
            let d = (x % 36) as u32;
            digits.insert(0, char::from_digit(d, 36).unwrap_or('0'));
            x /= 36;
        }
        format!("f{}{digits}", self.run)
    }
}

fn run_token() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = t ^ u64::from(std::process::id()).rotate_left(32);
    let mut s = String::new();
    for _ in 0..5 {
        s.push(char::from_digit((x % 36) as u32, 36).unwrap_or('0'));
        x /= 36;
    }
    s
}

struct Shared {
    opts: Options,
    seeds: Vec<Input>,
    seed_statements: Vec<Vec<String>>,
    stats: Mutex<Stats>,
    next_index: AtomicU64,
    stop: AtomicBool,
    started: Instant,
    tokens: Tokens,
    /// Keys of findings being minimised or written.
    claimed: Mutex<BTreeSet<(Kind, Option<String>)>>,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn over(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self
                .opts
                .duration
                .is_some_and(|d| self.started.elapsed() >= d)
    }
}

/// Runs a campaign; `progress` is called about once a second with the stats.
pub async fn campaign(
    opts: Options,
    seeds: Vec<(Input, Vec<String>)>,
    mut progress: impl FnMut(&Stats, Duration),
) -> Report {
    let (seeds, seed_statements): (Vec<Input>, Vec<Vec<String>>) = seeds.into_iter().unzip();
    let shared = Arc::new(Shared {
        seeds,
        seed_statements,
        stats: Mutex::new(Stats::default()),
        next_index: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        started: Instant::now(),
        tokens: Tokens {
            run: run_token(),
            next: AtomicU64::new(0),
        },
        claimed: Mutex::new(BTreeSet::new()),
        opts,
    });
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..shared.opts.jobs.max(1) {
        let s = Arc::clone(&shared);
        workers.spawn(async move { worker(s, w).await });
    }
    let memory = shared.opts.pid.map(|pid| {
        let s = Arc::clone(&shared);
        tokio::spawn(async move { watch_memory(s, pid).await })
    });
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            done = workers.join_next() => {
                if done.is_none() {
                    break;
                }
            }
            _ = tick.tick() => {
                let stats = shared.stats();
                progress(&stats, shared.started.elapsed());
            }
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    if let Some(m) = memory {
        m.abort();
    }
    let elapsed = shared.started.elapsed();
    let stats = std::mem::take(&mut *shared.stats());
    Report {
        stats,
        elapsed,
        seed: shared.opts.seed,
        target: shared.opts.executor.target.to_string(),
        others: shared
            .opts
            .others
            .iter()
            .map(|e| e.target.to_string())
            .collect(),
    }
}

async fn watch_memory(s: Arc<Shared>, pid: u32) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let Some(now) = rss_kib(pid) else {
            continue;
        };
        let grown = {
            let mut st = s.stats();
            let (first, max) = st.rss.get_or_insert((now, now));
            *max = (*max).max(now);
            now.saturating_sub(*first) > s.opts.rss_bound_kib
        };
        let key = (Kind::Memory, None);
        if grown
            && s.claimed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key)
        {
            let at = s.started.elapsed();
            let mut st = s.stats();
            let first = st.rss.map_or(0, |r| r.0);
            st.first_finding.get_or_insert(at);
            st.found.push(Found {
                finding: Finding {
                    kind: Kind::Memory,
                    statement: None,
                    message: format!(
                        "the broker's resident memory grew from {first} KiB to {now} KiB, past the bound of {} KiB",
                        s.opts.rss_bound_kib
                    ),
                    at: 0,
                    check: Check::Nothing,
                },
                index: s.next_index.load(Ordering::Relaxed),
                origin: String::new(),
                packets: 0,
                bytes: 0,
                scenario: None,
                at,
                occurrences: 1,
                minimise_trials: 0,
                replayed: None,
            });
        }
    }
}

fn note_types(st: &mut Stats, obs: &exec::Observation) {
    for r in &obs.recs {
        match r {
            Rec::Sent {
                packet: Some(p), ..
            } => {
                st.sent_types.insert(p.packet_type().name());
            }
            Rec::Sent { bytes, .. } => {
                if let Some(t) = bytes.first().and_then(|b| PacketType::from_u8(b >> 4)) {
                    st.sent_types.insert(t.name());
                }
            }
            Rec::Got {
                got: Got::Packet(p, _),
                ..
            } => {
                st.received_types.insert(p.packet_type().name());
            }
            Rec::Opened { .. } => st.connections += 1,
            _ => {}
        }
    }
}

/// The statements an execution exercised: its seed's, and those the codec
/// names for the deliberately bad packets it sent.
fn note_statements(st: &mut Stats, input: &Input, obs: &exec::Observation, seed: &[String]) {
    st.statements.extend(seed.iter().cloned());
    for r in &obs.recs {
        if let Rec::Sent {
            bytes,
            packet: None,
            ..
        } = r
        {
            if let Err(Some(e)) = exec::as_client_packet(bytes, input.protocol) {
                if let Some(id) = e.statement() {
                    st.statements.insert(id.to_string());
                }
            }
        }
    }
}

async fn worker(s: Arc<Shared>, w: usize) {
    let exec = s.opts.executor.clone();
    let deadline = exec.timing.deadline;
    let mut live = Liveness::new(
        exec.target.clone(),
        deadline,
        &format!("fzlive{}w{w}", s.tokens.run),
    );
    let mut others: Vec<(Executor, Liveness)> = s
        .opts
        .others
        .iter()
        .map(|e| {
            let l = Liveness::new(
                e.target.clone(),
                deadline,
                &format!("fzlive{}w{w}", s.tokens.run),
            );
            (e.clone(), l)
        })
        .collect();
    while !s.over() {
        let index = s.next_index.fetch_add(1, Ordering::Relaxed);
        if s.opts.max_execs.is_some_and(|m| index >= m) {
            break;
        }
        let Some(input) = mutate::generate(s.opts.seed, index, &s.seeds) else {
            break;
        };
        let token = s.tokens.next();
        let obs = exec.execute(&input, &token).await;
        let alive = live.check().await;
        let findings = oracle::judge(&input, &obs, &alive);
        {
            let mut st = s.stats();
            st.executions += 1;
            st.digests
                .insert(index, input::digest(format!("{input:?}").as_bytes()));
            note_types(&mut st, &obs);
            let seed_statements = s
                .seeds
                .iter()
                .position(|x| x.origin == input.origin && x.protocol == input.protocol)
                .and_then(|i| s.seed_statements.get(i))
                .cloned()
                .unwrap_or_default();
            note_statements(&mut st, &input, &obs, &seed_statements);
        }
        for (e, l) in &mut others {
            let token2 = s.tokens.next();
            let obs2 = e.execute(&input, &token2).await;
            let alive2 = l.check().await;
            let f2 = oracle::judge(&input, &obs2, &alive2);
            let d = diff::compare(&input, &obs, &findings, &obs2, &f2);
            let mut st = s.stats();
            st.connections += obs2
                .recs
                .iter()
                .filter(|r| matches!(r, Rec::Opened { .. }))
                .count() as u64;
            if let Some(d) = d {
                st.differences.add(d, &e.target.to_string());
            }
        }
        for f in findings {
            take_finding(&s, &exec, &mut live, &input, index, &obs, &token, f).await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn take_finding(
    s: &Arc<Shared>,
    exec: &Executor,
    live: &mut Liveness,
    input: &Input,
    index: u64,
    obs: &exec::Observation,
    token: &str,
    f: Finding,
) {
    let key = f.key();
    let new = s
        .claimed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone());
    if !new {
        let mut st = s.stats();
        if let Some(x) = st.found.iter_mut().find(|x| x.finding.key() == key) {
            x.occurrences += 1;
        }
        return;
    }
    let at = s.started.elapsed();
    let crash = f.kind == Kind::Crash;
    let first = minimise::Reproduced {
        input: input.clone(),
        obs: obs.clone(),
        finding: f,
        token: token.to_string(),
    };
    let mut trials = 0;
    let best = if crash {
        // Nothing to run again against: the broker is gone.
        s.stop.store(true, Ordering::Relaxed);
        first
    } else {
        let mut next = || s.tokens.next();
        let mut m = minimise::Minimiser {
            exec,
            live,
            key: key.clone(),
            token: &mut next,
            trials: 0,
            // Within the run's --duration, as long as there is some left.
            until: (Instant::now() + minimise::TIME).min(
                s.opts
                    .duration
                    .map_or(Instant::now() + minimise::TIME, |d| {
                        (s.started + d).max(Instant::now() + Duration::from_secs(5))
                    }),
            ),
        };
        let best = m.minimise(first).await;
        trials = m.trials;
        best
    };
    let packets = best.input.ops.len();
    let bytes: usize = best
        .input
        .ops
        .iter()
        .filter_map(|o| o.bytes(best.input.protocol))
        .map(|b| b.len())
        .sum();
    let text = write::scenario(
        &best.input,
        &best.obs,
        &best.finding,
        &best.token,
        &write::About {
            seed: s.opts.seed,
            index,
            target: &s.opts.target_name,
        },
    );
    let replayed = if crash {
        None
    } else {
        Some(replays(&text, &exec.target, &best.finding).await)
    };
    let scenario = s.opts.findings_dir.as_ref().and_then(|dir| {
        let name = format!(
            "{}-{}.yaml",
            best.finding.kind.as_str().replace('_', "-"),
            best.finding
                .statement
                .as_deref()
                .unwrap_or("none")
                .to_lowercase()
                .replace('.', "_")
        );
        let path = dir.join(name);
        match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
            Ok(()) => Some(path.display().to_string()),
            Err(e) => {
                eprintln!(
                    "warning: cannot write the finding to {}: {e}",
                    path.display()
                );
                None
            }
        }
    });
    let mut st = s.stats();
    st.first_finding.get_or_insert(at);
    st.found.push(Found {
        finding: best.finding,
        index,
        origin: best.input.origin.clone(),
        packets,
        bytes,
        scenario,
        at,
        occurrences: 1,
        minimise_trials: trials,
        replayed,
    });
}

/// Whether `run` replaying the scenario `text` against `target` fails it on
/// the finding's statement, as it should.
async fn replays(text: &str, target: &crate::net::Target, f: &Finding) -> bool {
    let Ok(scenario) = crate::scenario::parse_scenario("finding.yaml", text) else {
        return false;
    };
    let opts = crate::run::RunOptions::new(target.clone());
    let report = crate::run::run(vec![scenario], &opts, |_| {}).await;
    report.cases.iter().any(|c| {
        c.status == crate::results::Status::Fail
            && f.statement
                .as_ref()
                .is_none_or(|st| c.failed_statements.contains(st))
    })
}

/// The timing of the executions, from the deadline of a wait.
pub fn timing(deadline: Duration) -> Timing {
    Timing {
        deadline,
        ..Timing::default()
    }
}
