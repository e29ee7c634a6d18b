//! The brokers under test, each a child process on a free loopback port,
//! killed when its guard is dropped (also on panic or early return).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a broker has to start accepting connections.
const STARTUP: Duration = Duration::from_secs(15);

/// A running broker process; dropping it kills the process.
pub struct BrokerProcess {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    /// Removed on drop (mosquitto's generated configuration).
    scratch: Option<PathBuf>,
}

impl BrokerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size of the broker process, from /proc/PID/status.
    pub fn rss_bytes(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .ok_or_else(|| format!("{path} has no VmRSS line"))?;
        let kib: u64 = line
            .trim_start_matches("VmRSS:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .map_err(|e| format!("{path}: bad VmRSS {line:?}: {e}"))?;
        Ok(kib * 1024)
    }

    /// CPU time the broker process has used (user + system), from
    /// /proc/PID/stat in clock ticks of 1/100 s.
    pub fn cpu_time(&self) -> Result<Duration, String> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        // The command name (field 2) is in parentheses and may hold spaces:
        // count fields from the last ')'. utime and stime are fields 14, 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> Result<u64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("{path}: no field {}", i + 3))
        };
        let total = ticks(11)? + ticks(12)?;
        Ok(Duration::from_millis(total * 10))
    }

    /// Fails when the process has exited (it crashed or was refused its port).
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited: {status}", self.name)),
            Err(e) => Err(format!("{}: cannot query process: {e}", self.name)),
        }
    }

    fn spawn(
        name: &'static str,
        mut cmd: Command,
        addr: SocketAddr,
        scratch: Option<PathBuf>,
    ) -> Result<Self, String> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        let mut broker = BrokerProcess {
            name,
            addr,
            child,
            scratch,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not listen on {} within {STARTUP:?}",
                    self.name, self.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A loopback port that was free a moment ago: bind port 0, read it, close.
fn free_port() -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))
}

/// A scratch directory for the broker `name` on `addr` (removed with the
/// process's guard) holding `file` with `text`: its path and the file's.
fn scratch_config(
    name: &str,
    addr: SocketAddr,
    file: &str,
    text: &str,
) -> Result<(PathBuf, PathBuf), String> {
    let dir = std::env::temp_dir().join(format!(
        "broker-bench-{name}-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let conf = dir.join(file);
    std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    Ok((dir, conf))
}

/// The release binary cargo built for this bench, listening on `addr`,
/// with `--threads $BENCH_THREADS` when that is set.
fn reference_command(addr: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reference-broker"));
    cmd.arg("--listen").arg(addr.to_string());
    if let Some(n) = std::env::var_os("BENCH_THREADS") {
        cmd.arg("--threads").arg(n);
    }
    cmd
}

/// Our broker.
pub fn start_reference() -> Result<BrokerProcess, String> {
    let addr = free_port()?;
    let cmd = reference_command(addr);
    BrokerProcess::spawn("reference-broker", cmd, addr, None)
}

/// Name of our broker with `--persist`.
pub const PERSISTING: &str = "reference-broker --persist";

/// Our broker with `--persist` on a scratch directory (removed with it).
pub fn start_reference_persisting() -> Result<BrokerProcess, String> {
    let addr = free_port()?;
    let (dir, _) = scratch_config(
        "persist",
        addr,
        "README",
        "reference-broker --persist dir\n",
    )?;
    let mut cmd = reference_command(addr);
    cmd.arg("--persist").arg(dir.join("state"));
    BrokerProcess::spawn(PERSISTING, cmd, addr, Some(dir))
}

/// The mosquitto executable: `$MOSQUITTO`, else the Debian path, else `PATH`.
pub fn mosquitto_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/sbin/mosquitto");
    if debian.exists() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("mosquitto"))
            .find(|p| p.exists())
    })
}

/// mosquitto with a generated configuration: anonymous, no persistence, no
/// logging, queues large enough that the bench's bounded windows never make
/// it drop, the in-flight window the other two brokers have by default (100
/// QoS 1/2 messages towards a client; its own default, 20, caps a single
/// subscriber at 20 per round trip); Nagle off as in our broker unless
/// `nodelay` is false.
pub fn start_mosquitto(exe: &std::path::Path, nodelay: bool) -> Result<BrokerProcess, String> {
    let addr = free_port()?;
    let text = format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence false\n\
         max_queued_messages 1000000\n\
         max_inflight_messages 100\n\
         set_tcp_nodelay {nodelay}\n\
         log_dest none\n",
        port = addr.port()
    );
    let (dir, conf) = scratch_config("mosquitto", addr, "mosquitto.conf", &text)?;
    let mut cmd = Command::new(exe);
    cmd.arg("-c").arg(&conf);
    let name = if nodelay {
        "mosquitto"
    } else {
        "mosquitto (Nagle)"
    };
    BrokerProcess::spawn(name, cmd, addr, Some(dir))
}

/// The rumqttd executable: `$RUMQTTD`, else the one
/// `targets/rumqttd-v4/install.sh` builds (0.20.0, from the crate's source)
/// in `$MQTT_HARNESS_CACHE` (default `~/.cache/mqtt-harness`).
pub fn rumqttd_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RUMQTTD") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("MQTT_HARNESS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mqtt-harness"))
        })?;
    Some(cache.join("rumqttd/bin/rumqttd")).filter(|p| p.exists())
}

/// rumqttd with a generated configuration: its sample's router and MQTT
/// 3.1.1 listener settings (as `targets/rumqttd-v4/rumqttd.toml`), with room
/// for every connection the bench opens and no delay between accepts, so
/// that the idle-memory run does not wait a millisecond per connection.
pub fn start_rumqttd(exe: &std::path::Path) -> Result<BrokerProcess, String> {
    let addr = free_port()?;
    let text = format!(
        "id = 0\n\
         [router]\n\
         id = 0\n\
         max_connections = 100000\n\
         max_outgoing_packet_count = 200\n\
         max_segment_size = 104857600\n\
         max_segment_count = 10\n\
         [v4.1]\n\
         name = \"v4-1\"\n\
         listen = \"{addr}\"\n\
         next_connection_delay_ms = 0\n\
         [v4.1.connections]\n\
         connection_timeout_ms = 60000\n\
         max_payload_size = 20480\n\
         max_inflight_count = 100\n\
         dynamic_filters = true\n"
    );
    let (dir, conf) = scratch_config("rumqttd", addr, "rumqttd.toml", &text)?;
    let mut cmd = Command::new(exe);
    cmd.arg("-c").arg(&conf);
    BrokerProcess::spawn("rumqttd", cmd, addr, Some(dir))
}
