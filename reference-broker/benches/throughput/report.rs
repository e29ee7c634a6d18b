//! Summaries (median of runs, as criterion reports) and the markdown table.

use std::fmt::Write as _;

use crate::brokers::PERSISTING;
use crate::idle::IdleMemory;
use crate::scenario::{RunStats, Scenario};

/// One broker in one scenario, over all its runs.
pub struct Summary {
    pub rate_median: f64,
    pub rate_min: f64,
    pub rate_max: f64,
    /// Medians over the runs of each run's percentile, nanoseconds.
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub deliveries: u64,
    pub expected: u64,
    pub problems: Vec<String>,
    /// Broker CPU time per delivery over all runs, microseconds.
    pub cpu_us: f64,
    /// The rate a paced scenario kept to, deliveries per second.
    pub offered: Option<f64>,
    /// The slow subscriber's runs, when there was one.
    pub slow: Vec<crate::scenario::SlowOutcome>,
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// The `p`-th percentile (nearest rank) of sorted samples.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    pub fn of(runs: &mut [RunStats]) -> Summary {
        let rates: Vec<f64> = runs.iter().map(RunStats::rate).collect();
        let mut p50 = Vec::new();
        let mut p90 = Vec::new();
        let mut p99 = Vec::new();
        for r in runs.iter_mut() {
            r.latencies.sort_unstable();
            p50.push(percentile(&r.latencies, 50.0));
            p90.push(percentile(&r.latencies, 90.0));
            p99.push(percentile(&r.latencies, 99.0));
        }
        Summary {
            rate_min: rates.iter().copied().fold(f64::INFINITY, f64::min),
            rate_max: rates.iter().copied().fold(0.0, f64::max),
            rate_median: median_f64(rates),
            p50: median_u64(p50),
            p90: median_u64(p90),
            p99: median_u64(p99),
            cpu_us: runs.iter().map(|r| r.broker_cpu.as_secs_f64()).sum::<f64>() * 1e6
                / runs.iter().map(|r| r.deliveries).sum::<u64>().max(1) as f64,
            deliveries: runs.iter().map(|r| r.deliveries).sum(),
            expected: runs.iter().map(|r| r.expected).sum(),
            problems: runs.iter().filter_map(|r| r.problem.clone()).collect(),
            offered: runs.first().and_then(|r| r.offered),
            slow: runs.iter().filter_map(|r| r.slow).collect(),
        }
    }
}

pub fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.1} k/s", r / 1e3)
    }
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// Bytes too, so that a figure near a whole KiB says on which side it is.
fn bytes_and_kib(bytes: f64) -> String {
    format!("{:.0} B ({})", bytes, kib(bytes))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Results of one scenario: (broker name, summary) in broker order.
pub type ScenarioResults = (Scenario, Vec<(&'static str, Summary)>);

pub struct Report {
    pub header: Vec<String>,
    pub scenarios: Vec<ScenarioResults>,
    pub memory: Vec<(&'static str, Result<IdleMemory, String>)>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Broker benchmark: reference-broker vs mosquitto and rumqttd\n"
        );
        for h in &self.header {
            let _ = writeln!(s, "- {h}");
        }
        let _ = writeln!(s, "\n## Throughput and latency\n");
        let _ = writeln!(
            s,
            "| Scenario | Broker | msgs/s (median) | min – max | p50 | p90 | p99 | broker CPU per delivery | delivered |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for (sc, results) in &self.scenarios {
            for (broker, m) in results {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} – {} | {} | {} | {} | {:.2} µs | {}/{} |",
                    sc.name,
                    broker,
                    match m.offered {
                        Some(o) => format!("{} (paced at {})", rate(m.rate_median), rate(o)),
                        None => rate(m.rate_median),
                    },
                    rate(m.rate_min),
                    rate(m.rate_max),
                    ms(m.p50),
                    ms(m.p90),
                    ms(m.p99),
                    m.cpu_us,
                    m.deliveries,
                    m.expected
                );
            }
        }
        self.ratios(&mut s, "mosquitto", 1.5);
        self.ratios(&mut s, "rumqttd", 1.0);
        self.paced(&mut s);
        self.slow(&mut s);
        self.persist_cost(&mut s);
        let _ = writeln!(s, "\n## Memory per idle connection\n");
        let _ = writeln!(
            s,
            "| Broker | connections | RSS before | RSS after | per connection |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for (broker, m) in &self.memory {
            match m {
                Ok(m) => {
                    let _ = writeln!(
                        s,
                        "| {broker} | {} | {} | {} | {} |",
                        m.connections,
                        mib(m.before),
                        mib(m.after),
                        bytes_and_kib(m.per_connection())
                    );
                }
                Err(e) => {
                    let _ = writeln!(s, "| {broker} | – | – | – | failed: {e} |");
                }
            }
        }
        let problems: Vec<_> = self
            .scenarios
            .iter()
            .flat_map(|(sc, r)| {
                r.iter()
                    .flat_map(move |(b, m)| m.problems.iter().map(move |p| (sc, b, p)))
            })
            .collect();
        if !problems.is_empty() {
            let _ = writeln!(s, "\n## Incomplete runs\n");
            for (sc, b, p) in problems {
                let _ = writeln!(s, "- {} / {b}: {p}", sc.name);
            }
        }
        s
    }

    /// The paced scenarios: our p99 against the lowest of the peers'. The
    /// target (no higher) is at the same load for all; at half each one's
    /// own peak the rates differ, and the row is for information.
    fn paced(&self, s: &mut String) {
        let rows: Vec<_> = self
            .scenarios
            .iter()
            .filter(|(sc, _)| sc.paced_from.is_some())
            .filter_map(|(sc, r)| {
                let (ours, a) = r.first()?;
                let (peer, b) = r.iter().skip(1).min_by_key(|(_, m)| m.p99)?;
                Some((sc, ours, a, peer, b))
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n## Latency under half load\n");
        let _ = writeln!(
            s,
            "| Scenario | {} p99 | lowest peer p99 | p99 ratio (target ≤ 1.0×) | target met |",
            rows[0].1
        );
        let _ = writeln!(s, "|---|---:|---|---:|---|");
        for (sc, _, a, peer, b) in rows {
            let ratio = a.p99 as f64 / (b.p99.max(1) as f64);
            let met = match sc.paced_from {
                Some((_, crate::scenario::Pace::Slowest)) => {
                    if ratio <= 1.0 && a.problems.is_empty() {
                        "yes"
                    } else {
                        "no"
                    }
                }
                _ => "– (rates differ)",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} ({peer}) | {ratio:.2}× | {met} |",
                sc.name,
                ms(a.p99),
                ms(b.p99),
            );
        }
    }

    /// What each broker gave the slow subscriber: QoS 0 messages it may
    /// drop, QoS 1 ones it may not; the connection it must keep.
    fn slow(&self, s: &mut String) {
        let rows: Vec<_> = self
            .scenarios
            .iter()
            .filter(|(sc, _)| sc.slow)
            .flat_map(|(sc, r)| r.iter().map(move |(b, m)| (sc, b, m)))
            .filter(|(_, _, m)| !m.slow.is_empty())
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n## The slow subscriber\n");
        let _ = writeln!(
            s,
            "| Scenario | Broker | received, fewest of a run (of the messages sent) | kept its connection in every run | the other subscriber's msgs/s | broker RSS after a run, most |"
        );
        let _ = writeln!(s, "|---|---|---:|---|---:|---:|");
        for (sc, b, m) in rows {
            let fewest = m.slow.iter().map(|o| o.received).min().unwrap_or(0);
            let sent = m.slow.first().map_or(0, |o| o.sent);
            let kept = m.slow.iter().all(|o| o.connected);
            let rss = m.slow.iter().filter_map(|o| o.broker_rss).max();
            let _ = writeln!(
                s,
                "| {} | {b} | {fewest} ({:.1}% of {sent}) | {} | {} | {} |",
                sc.name,
                100.0 * fewest as f64 / sent.max(1) as f64,
                if kept { "yes" } else { "no" },
                rate(m.rate_median),
                rss.map_or_else(|| "–".into(), mib)
            );
        }
    }

    /// Our broker with `--persist` against itself without, where both ran:
    /// the target is at least half the throughput.
    fn persist_cost(&self, s: &mut String) {
        let mut rows = Vec::new();
        for (sc, r) in &self.scenarios {
            let find = |n: &str| r.iter().find(|(name, _)| *name == n).map(|(_, m)| m);
            if let (Some(a), Some(b)) = (find("reference-broker"), find(PERSISTING)) {
                rows.push((sc, a, b));
            }
        }
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n## {PERSISTING} vs reference-broker\n");
        let _ = writeln!(
            s,
            "| Scenario | throughput ratio (target ≥ 0.5×) | p99 ratio | CPU per delivery ratio | target met |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---|");
        for (sc, a, b) in rows {
            let tput = b.rate_median / a.rate_median.max(1e-9);
            let p99 = b.p99 as f64 / (a.p99.max(1) as f64);
            let cpu = b.cpu_us / a.cpu_us.max(1e-9);
            let met = tput >= 0.5 && b.problems.is_empty();
            let _ = writeln!(
                s,
                "| {} | {tput:.2}× | {p99:.2}× | {cpu:.2}× | {} |",
                sc.name,
                if met { "yes" } else { "no" }
            );
        }
    }

    /// The first broker against the best of the peers whose names start
    /// with `peer`, per scenario: the highest throughput, and separately
    /// the lowest p99; `target` is the throughput ratio to reach.
    fn ratios(&self, s: &mut String, peer: &str, target: f64) {
        let pairs: Vec<_> = self
            .scenarios
            .iter()
            .filter(|(sc, _)| sc.paced_from.is_none() && !sc.slow)
            .filter_map(|(sc, r)| {
                let peers = || r.iter().skip(1).filter(|(name, _)| name.starts_with(peer));
                let best = peers().max_by(|a, b| a.1.rate_median.total_cmp(&b.1.rate_median))?;
                let best_p99 = peers().map(|(_, m)| m.p99).min()?;
                Some((sc, r.first()?, best, best_p99))
            })
            .collect();
        let Some(first) = pairs.first() else {
            return;
        };
        let _ = writeln!(s, "\n## {} vs {peer}\n", first.1 .0);
        let _ = writeln!(
            s,
            "| Scenario | faster {peer} | throughput ratio (target ≥ {target:.1}×) | p99 ratio to the lower {peer} p99 (target ≤ 1.0×) | CPU per delivery ratio | target met |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---|");
        for (sc, (_, a), (other, b), best_p99) in pairs {
            let tput = a.rate_median / b.rate_median.max(1e-9);
            let p99 = a.p99 as f64 / (best_p99.max(1) as f64);
            let cpu = a.cpu_us / b.cpu_us.max(1e-9);
            let met = tput >= target && p99 <= 1.0 && a.problems.is_empty();
            let _ = writeln!(
                s,
                "| {} | {other} | {tput:.2}× | {p99:.2}× | {cpu:.2}× | {} |",
                sc.name,
                if met { "yes" } else { "no" }
            );
        }
    }
}
