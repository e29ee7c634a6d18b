//! The whole scenario library's wall time (`cargo bench --bench suite`):
//! against the embedded reference broker, then against a local mosquitto that
//! the bench starts on a free loopback port, three runs each, with the median.
//!
//! The target is the whole suite in under 10 s on a 2-core machine. Cases run
//! in parallel, so a run lasts about as long as its slowest case: the ten
//! slowest cases of the last run are printed to show where the time goes
//! (usually a spec timer: keep alive, will delay, message expiry).
//!
//! `MOSQUITTO=/path/to/mosquitto` overrides `/usr/sbin/mosquitto`; without
//! mosquitto that half is reported as not run.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqtt_harness::client::Target;
use mqtt_harness::cmd::run::{start_setups, EmbeddedBroker};
use mqtt_harness::results::RunReport;
use mqtt_harness::run::{self as runner, RunOptions};
use mqtt_harness::scenario::{self, Scenario};

const RUNS: usize = 3;
const TARGET: Duration = Duration::from_secs(10);

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scenarios = match scenario::load_paths(&[root.join("scenarios")]) {
        Ok(s) => s,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "suite: {} scenarios from {}, {RUNS} runs per target, {} cores",
        scenarios.len(),
        root.join("scenarios").display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let mut slow = false;
    slow |= bench(
        &runtime,
        "embedded reference broker",
        &scenarios,
        None,
        None,
    );

    let mosquitto = std::env::var_os("MOSQUITTO")
        .map_or_else(|| PathBuf::from("/usr/sbin/mosquitto"), PathBuf::from);
    match Mosquitto::start(&mosquitto) {
        Ok(m) => {
            let target = Target::parse(&format!("mqtt://127.0.0.1:{}", m.port)).ok();
            // As CI runs it: with its profile (its keep-alive sweep).
            let profile =
                mqtt_harness::profile::load_profile(&root.join("profiles/mosquitto.yaml"))
                    .ok()
                    .map(std::sync::Arc::new);
            slow |= bench(&runtime, "mosquitto", &scenarios, target, profile);
            drop(m);
        }
        Err(e) => println!("\nmosquitto: not run: {e}"),
    }
    if slow {
        println!("\nover the {} s target", TARGET.as_secs());
    }
}

/// Runs the suite `RUNS` times against `target` (embedded when `None`) and
/// prints each wall time and the median. Returns whether the median is over target.
fn bench(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    scenarios: &[Scenario],
    target: Option<Target>,
    profile: Option<std::sync::Arc<mqtt_harness::profile::Profile>>,
) -> bool {
    println!("\n{name}:");
    let mut times = Vec::new();
    let mut last: Option<RunReport> = None;
    for i in 1..=RUNS {
        let started = Instant::now();
        // The embedded broker is started for each run, as `run` does.
        let report = runtime.block_on(async {
            let mut brokers = Vec::new();
            let mut opts = match &target {
                Some(t) => RunOptions::new(t.clone()),
                None => {
                    let b = EmbeddedBroker::start(Default::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut opts = RunOptions::new(b.target());
                    brokers = start_setups(scenarios, &Default::default(), &mut opts).await?;
                    brokers.push(b);
                    opts
                }
            };
            opts.profile = profile.clone();
            let report = runner::run(scenarios.to_vec(), &opts, |_| {}).await;
            for b in brokers {
                b.stop().await;
            }
            Ok::<_, String>(report)
        });
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                println!("  run {i}: could not run: {e}");
                return true;
            }
        };
        let wall = started.elapsed();
        let s = report.summary();
        println!(
            "  run {i}: {:>6.2} s  {} cases: {} passed, {} failed, {} skipped, {} errors",
            wall.as_secs_f64(),
            report.cases.len(),
            s.passed,
            s.failed,
            s.skipped,
            s.errors
        );
        times.push(wall);
        last = Some(report);
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!(
        "  median: {:.2} s for {} scenarios ({})",
        median.as_secs_f64(),
        scenarios.len(),
        if median < TARGET {
            "under the 10 s target"
        } else {
            "OVER the 10 s target"
        }
    );
    if let Some(r) = last {
        let mut cases: Vec<_> = r.cases.iter().collect();
        cases.sort_by_key(|c| std::cmp::Reverse(c.duration));
        println!("  slowest cases of the last run:");
        for c in cases.iter().take(10) {
            println!(
                "    {:>6} ms  {} [{}] {}",
                c.duration.as_millis(),
                c.id,
                c.protocol,
                c.status
            );
        }
    }
    median >= TARGET
}

/// A mosquitto on a free loopback port, stopped on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Mosquitto {
    fn start(binary: &Path) -> Result<Mosquitto, String> {
        if !binary.exists() {
            return Err(format!(
                "{} is not installed (apt-get install mosquitto)",
                binary.display()
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-mosquitto-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .map_err(|e| format!("{}: {e}", conf.display()))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut m = Mosquitto {
            child,
            port,
            _dir: dir,
        };
        // Ready when it accepts a connection; give up after 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(m);
            }
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(format!("mosquitto exited at start: {status}"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "mosquitto did not listen on port {port} within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
