//! Load benchmark: reference-broker against mosquitto and rumqttd, in one run.
//!
//! `cargo bench -p reference-broker --bench throughput [-- FILTER] [--quick]`
//! (run without `--bench`, as `cargo test --benches` does, it makes one
//! small smoke run and writes no report).
//!
//! Starts each broker as a child process on a free loopback port (ours is the
//! release binary cargo builds for this bench; mosquitto gets a generated
//! configuration), measures memory per idle connection, then runs each
//! scenario several times per broker, alternating brokers, and reports the
//! median. The table is printed and written to `target/broker-bench.md`.
//!
//! Layers: `client` (raw MQTT on the codec) → `scenario` (one run of one
//! load shape) → `idle` (memory) → `report` (medians, markdown) → `main`.
//!
//! Environment: `BENCH_RUNS` (default 5), `BENCH_MESSAGES` (deliveries per
//! run, default 100000), `BENCH_IDLE` (idle connections, default 1000),
//! `BENCH_BROKERS` (any of `ours`, `mosquitto`, `rumqttd`, default all),
//! `BENCH_MOSQUITTO_NODELAY` (1: mosquitto with Nagle off only, 0: with its
//! default Nagle on only; default both), `BENCH_THREADS` (our broker's
//! `--threads`; default its own default),
//! `MOSQUITTO`, `RUMQTTD` (paths to the executables; rumqttd is the one
//! `targets/rumqttd-v4/install.sh` builds, and is left out when it is not
//! built).

mod brokers;
mod client;
mod idle;
mod report;
mod scenario;

use std::path::PathBuf;
use std::process::ExitCode;

use mqtt_codec::QoS;

use crate::brokers::BrokerProcess;
use crate::report::{Report, Summary};
use crate::scenario::{Pace, Scenario};

struct Options {
    runs: usize,
    messages: u64,
    idle: usize,
    filter: Option<String>,
    ours: bool,
    mosquitto: bool,
    /// rumqttd, when it is built (not in the smoke run: CI does not build it).
    rumqttd: bool,
    /// `set_tcp_nodelay` for each mosquitto to run (its default is false).
    mosquitto_nodelay: Vec<bool>,
    /// Run as a test (`cargo test --benches`): one small run, no report file.
    smoke: bool,
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut quick = false;
        let mut filter = None;
        // cargo bench passes `--bench`; without it we run as a test, like
        // criterion does. Other flags are for harnesses we are not.
        let mut smoke = true;
        for a in std::env::args().skip(1) {
            match a.as_str() {
                "--quick" => quick = true,
                "--bench" => smoke = false,
                a if a.starts_with('-') => {}
                a => filter = Some(a.to_string()),
            }
        }
        let brokers = std::env::var("BENCH_BROKERS").unwrap_or_default();
        if smoke {
            return Ok(Options {
                runs: 1,
                messages: 2000,
                idle: 20,
                filter,
                ours: true,
                mosquitto: true,
                rumqttd: false,
                mosquitto_nodelay: vec![true],
                smoke,
            });
        }
        Ok(Options {
            runs: env_num("BENCH_RUNS", if quick { 2 } else { 5 })?.max(1),
            messages: env_num("BENCH_MESSAGES", if quick { 20_000 } else { 100_000 })?.max(1000),
            idle: env_num("BENCH_IDLE", if quick { 200 } else { 1000 })?,
            filter,
            ours: brokers.is_empty() || brokers.contains("ours") || brokers.contains("reference"),
            mosquitto: brokers.is_empty() || brokers.contains("mosquitto"),
            rumqttd: brokers.is_empty() || brokers.contains("rumqttd"),
            mosquitto_nodelay: match env_num("BENCH_MOSQUITTO_NODELAY", 2u8)? {
                0 => vec![false],
                1 => vec![true],
                _ => vec![true, false],
            },
            smoke,
        })
    }
}

const FAN: usize = 20;
/// Connected clients, each subscribed to a topic of its own, in the last scenario.
const BYSTANDERS: usize = 1000;
/// Offline sessions holding messages in the `--persist` scenario.
const HELD: usize = 1000;

fn scenarios(o: &Options) -> Vec<Scenario> {
    let mut v = Vec::new();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let q = qos.as_u8();
        v.push(Scenario {
            name: format!("fan-in QoS {q} ({FAN} pub → 1 sub)"),
            slug: format!("in{q}"),
            qos,
            publishers: FAN,
            subscribers: 1,
            per_publisher: o.messages / FAN as u64,
            window: 500,
            inflight: 100,
            payload: 64,
            bystanders: 0,
            persistent: false,
            held_sessions: 0,
            ours_only: false,
            rate: None,
            paced_from: None,
            slow: false,
        });
        v.push(Scenario {
            name: format!("fan-out QoS {q} (1 pub → {FAN} sub)"),
            slug: format!("out{q}"),
            qos,
            publishers: 1,
            subscribers: FAN,
            per_publisher: o.messages / FAN as u64,
            window: 500,
            inflight: 500,
            payload: 64,
            bystanders: 0,
            persistent: false,
            held_sessions: 0,
            ours_only: false,
            rate: None,
            paced_from: None,
            slow: false,
        });
    }
    // Routing cost grows with the sessions a broker holds, matching or not.
    v.push(Scenario {
        name: format!("fan-in QoS 0, {BYSTANDERS} other subscribers"),
        slug: "in0-many".into(),
        bystanders: BYSTANDERS,
        ..v[0].clone()
    });
    // What `--persist` costs, our broker with and without it: the
    // subscriber's session is kept (so every message is journaled before
    // its PUBACK), beside offline sessions holding 10,000 messages.
    v.push(Scenario {
        name: format!(
            "fan-in QoS 1, persistent subscriber, {HELD} sessions holding {} messages",
            HELD * usize::from(scenario::HELD_EACH)
        ),
        slug: "in1-persist".into(),
        persistent: true,
        held_sessions: if o.smoke { 20 } else { HELD },
        ours_only: true,
        ..v[2].clone()
    });
    // Latency under half load (the "p99 at 50% load"): the QoS 1
    // fan-in and fan-out, paced to half the slowest broker's rate, and to
    // half each broker's own.
    for base in [2, 3] {
        let b = v[base].clone();
        for (pace, name, slug) in [
            (Pace::Slowest, "at half the slowest broker's peak", "half"),
            (Pace::Own, "at half its own peak", "ownhalf"),
        ] {
            v.push(Scenario {
                name: format!("{}, {name}", b.name),
                slug: format!("{}-{slug}", b.slug),
                paced_from: Some((b.slug.clone(), pace)),
                ..b.clone()
            });
        }
    }
    // The slow reader, which may lose QoS 0 messages but not its
    // connection, and no QoS 1 message: beside a subscriber that keeps up,
    // one that takes about 4 MB/s, sent the whole run's messages (6.4 MB
    // of payload at the default 100,000) so that it falls behind.
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let q = qos.as_u8();
        v.push(Scenario {
            name: format!("QoS {q}, 1 pub → 1 sub and one slow subscriber"),
            slug: format!("slow{q}"),
            qos,
            subscribers: 1,
            per_publisher: o.messages,
            slow: true,
            ..v[1].clone()
        });
    }
    if let Some(f) = &o.filter {
        let wanted = |s: &Scenario| s.name.contains(f.as_str()) || s.slug == *f;
        // A paced scenario needs the one it is paced from.
        let bases: Vec<String> = v
            .iter()
            .filter(|s| wanted(s))
            .filter_map(|s| s.paced_from.clone().map(|(base, _)| base))
            .collect();
        v.retain(|s| wanted(s) || bases.contains(&s.slug));
    }
    v
}

/// `target/` of this build: the bench runs from `target/release/deps/`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .filter(|d| d.ends_with("target") || d.join("release").is_dir())
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

fn mosquitto_version(exe: &std::path::Path) -> String {
    std::process::Command::new(exe)
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "mosquitto (version unknown)".into())
}

async fn bench(o: Options) -> Result<Report, String> {
    let mut brokers: Vec<BrokerProcess> = Vec::new();
    let mut header = vec![
        format!(
            "{} runs per scenario and broker after one warm-up run, brokers alternating; median reported",
            o.runs
        ),
        format!(
            "{} deliveries per run, 64-byte payloads, MQTT 3.1.1 over loopback TCP; {} CPUs shared by the brokers and the load generator",
            o.messages,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        "closed loop: publishers stay at most 500 messages ahead of the slowest subscriber; QoS 1 publishers keep ≤ 100 (fan-in) / 500 (fan-out) PUBLISH unacknowledged".into(),
        "latency: PUBLISH written by the publisher → decoded by the subscriber, under that full load".into(),
        "broker CPU per delivery: user + system time of the broker process over the measured runs (connection set-up included) ÷ deliveries; unlike msgs/s it does not depend on how the CPUs are shared with other processes".into(),
        format!("load average at start: {}", load_average()),
    ];
    if o.ours {
        let b = brokers::start_reference()?;
        println!("reference-broker: pid {} on {}", b.pid(), b.addr);
        header.push("reference-broker: release build, default configuration (in-flight 20, queue 1000 per session)".into());
        brokers.push(b);
        let b = brokers::start_reference_persisting()?;
        println!("{}: pid {} on {}", b.name, b.pid(), b.addr);
        header.push(format!(
            "{}: the same with `--persist` on a scratch directory (journal, one fsync per batch), in the last scenario only",
            b.name
        ));
        brokers.push(b);
    }
    if o.mosquitto {
        match brokers::mosquitto_path() {
            Some(exe) => {
                header.push(format!(
                    "{}: listener on 127.0.0.1, allow_anonymous, persistence false, max_queued_messages 1000000, max_inflight_messages 100 (its default is 20; 100 is our default and rumqttd's), log_dest none; \
                     run twice, with `set_tcp_nodelay true` as our broker (\"mosquitto\") and with its default, Nagle on (\"mosquitto (Nagle)\"), \
                     since either can be the faster depending on the load; ratios compare with the faster of the two",
                    mosquitto_version(&exe),
                ));
                for &nodelay in &o.mosquitto_nodelay {
                    let b = brokers::start_mosquitto(&exe, nodelay)?;
                    println!("{}: pid {} on {}", b.name, b.pid(), b.addr);
                    brokers.push(b);
                }
            }
            None => header.push("mosquitto not found: set MOSQUITTO=/path/to/mosquitto".into()),
        }
    }
    if o.rumqttd {
        match brokers::rumqttd_path() {
            Some(exe) => {
                header.push(
                    "rumqttd 0.20.0 (built from the crate's source by targets/rumqttd-v4/install.sh): the router and \
                     3.1.1 listener settings of its sample configuration (in-flight 100, max_outgoing_packet_count 200), \
                     no delay between accepts; it leaves Nagle on (no TCP_NODELAY), which its QoS 0 fan-in feels"
                        .into(),
                );
                let b = brokers::start_rumqttd(&exe)?;
                println!("{}: pid {} on {}", b.name, b.pid(), b.addr);
                brokers.push(b);
            }
            None => header.push(
                "rumqttd not built, left out: run targets/rumqttd-v4/install.sh (about 5 minutes) or set RUMQTTD=/path/to/rumqttd"
                    .into(),
            ),
        }
    }

    let mut memory = Vec::new();
    if o.idle > 0 {
        for b in brokers.iter().filter(|b| b.name != brokers::PERSISTING) {
            let m = idle::measure(b, o.idle).await;
            match &m {
                Ok(m) => println!(
                    "{}: {:.1} KiB per idle connection",
                    b.name,
                    m.per_connection() / 1024.0
                ),
                Err(e) => println!("{}: idle memory failed: {e}", b.name),
            }
            memory.push((b.name, m));
        }
    }

    let mut results = Vec::new();
    for sc in scenarios(&o) {
        let mut runs: Vec<Vec<_>> = brokers.iter().map(|_| Vec::new()).collect();
        let takes_part = |b: &BrokerProcess| {
            if sc.ours_only {
                b.name.starts_with("reference-broker")
            } else {
                b.name != brokers::PERSISTING
            }
        };
        for run in 0..=o.runs {
            for (i, b) in brokers.iter_mut().enumerate() {
                if !takes_part(b) {
                    continue;
                }
                b.check_alive()?;
                let mut sc = sc.clone();
                if let Some((base, pace)) = &sc.paced_from {
                    let peaks = results
                        .iter()
                        .filter(|(s, _): &&(Scenario, Vec<(&str, Summary)>)| s.slug == *base)
                        .flat_map(|(_, r)| r.iter())
                        .filter(|(name, _)| *pace == Pace::Slowest || *name == b.name)
                        .map(|(_, m)| m.rate_median);
                    let Some(peak) = peaks.reduce(f64::min).filter(|p| *p > 0.0) else {
                        continue;
                    };
                    sc.rate = Some(peak / 2.0);
                }
                let cpu = b.cpu_time()?;
                let mut stats = scenario::run_once(b.addr, &sc, run)
                    .await
                    .map_err(|e| format!("{} / {}: {e}", sc.name, b.name))?;
                stats.broker_cpu = b.cpu_time()?.saturating_sub(cpu);
                if let Some(slow) = &mut stats.slow {
                    slow.broker_rss = b.rss_bytes().ok();
                }
                println!(
                    "{:<34} {:<17} run {run}{}: {:>12}  p50 {:>9}  p99 {:>9}  {}/{}{}",
                    sc.name,
                    b.name,
                    if run == 0 { " (warm-up)" } else { "" },
                    report::rate(stats.rate()),
                    report::ms(percentile_quick(&stats.latencies, 50)),
                    report::ms(percentile_quick(&stats.latencies, 99)),
                    stats.deliveries,
                    stats.expected,
                    stats
                        .problem
                        .as_deref()
                        .map(|p| format!("  [{p}]"))
                        .unwrap_or_default()
                );
                if run > 0 {
                    runs[i].push(stats);
                }
            }
        }
        let summaries = brokers
            .iter()
            .zip(runs.iter_mut())
            .filter(|(b, _)| takes_part(b))
            .map(|(b, r)| (b.name, Summary::of(r)))
            .collect();
        results.push((sc, summaries));
    }
    drop(brokers);
    header.push(format!("load average at end: {}", load_average()));
    Ok(Report {
        header,
        scenarios: results,
        memory,
    })
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews msgs/s.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn percentile_quick(v: &[u64], p: usize) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get((s.len() * p / 100).min(s.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    client::epoch();
    let smoke = options.smoke;
    match runtime.block_on(bench(options)) {
        Ok(report) => {
            let md = report.markdown();
            println!("\n{md}");
            if smoke {
                println!("smoke run (no --bench): target/broker-bench.md left as it was");
                return ExitCode::SUCCESS;
            }
            let path = target_dir().join("broker-bench.md");
            match std::fs::write(&path, &md) {
                Ok(()) => println!("written to {}", path.display()),
                Err(e) => eprintln!("cannot write {}: {e}", path.display()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
