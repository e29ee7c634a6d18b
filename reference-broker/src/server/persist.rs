//! `--persist DIR`: the tokio layer's half of persistence. The core turns its
//! state into a [`Snapshot`]; this writes it to `DIR/state.json` and reads
//! it back at start-up.
//!
//! When: before any acknowledgement leaves (CONNACK, PUBACK, PUBREC, PUBCOMP,
//! SUBACK, UNSUBACK), the state that it acknowledges is written and synced:
//! `State::dispatch` calls `State::persist_before_acks` before it sends
//! anything. Changes that acknowledge nothing (a subscriber's PUBACK, a QoS 0
//! message, a timer) are written with the next write, within
//! [`FLUSH_INTERVAL`] by a background task, and on shutdown. Should a write fail, the
//! acknowledgements waiting on it are not sent (the client will retry), and
//! the error is logged.
//!
//! How: the whole snapshot goes to `state.json.tmp`, which is synced and then
//! renamed over `state.json`, and the directory is synced: a crash at any
//! point leaves the old file or the new one, never half of one.
//!
//! Who: one broker per directory. `DIR/lock` is held (an advisory lock,
//! `flock` on Unix) for as long as the broker runs; a second broker given
//! the same directory refuses to start instead of overwriting the first's
//! state with its own.
//!
//! Cost: each write serialises every persistent session and retained
//! message and waits for the disk, under the core's lock. A connection's
//! burst of packets (what one read brought) is handled in one dispatch, so
//! one write covers all of its acknowledgements: a pipelining QoS 1
//! publisher (`mosquitto_pub -q 1 -l`, 5,000 messages) reaches ~11,000
//! messages/s here, against ~1,900 with a write per packet and ~25,000
//! without --persist. That is a fine trade for a reference broker; a
//! high-volume one would log changes instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Shared, State};
use crate::broker::{Broker, Clocks, Snapshot};
use crate::config::Config;

/// File name of the snapshot inside the persistence directory.
pub const FILE: &str = "state.json";
/// File whose lock says that a broker uses the directory.
pub const LOCK: &str = "lock";
/// Largest snapshot file read at start-up (bytes).
pub const MAX_FILE: u64 = 512 * 1024 * 1024;
/// Longest a change that acknowledges nothing waits to be written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Persister {
    dir: PathBuf,
    dirty: bool,
    last_write: Instant,
    /// Holds the directory's lock until the broker is dropped.
    _lock: std::fs::File,
}

/// Takes the lock on `dir` (see the module's documentation).
fn lock(dir: &Path) -> Result<std::fs::File, String> {
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{} is in use by another broker (it holds {}); stop that broker or persist elsewhere",
            dir.display(),
            path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

fn clocks() -> Clocks {
    Clocks {
        now: Instant::now().into_std(),
        wall: SystemTime::now(),
    }
}

/// Reads the snapshot in `dir`, if there is one. Errors name the file.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, String> {
    let path = dir.join(FILE);
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{}: {} bytes is more than the {MAX_FILE} a snapshot may have",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("{}: more than {MAX_FILE} bytes", path.display()));
    }
    Snapshot::from_json(&bytes).map(Some).map_err(|e| {
        format!(
            "{}: {e} (move the file away to start with an empty state)",
            path.display()
        )
    })
}

/// Writes `snapshot` into `dir` atomically (temporary file, sync, rename, sync the directory).
pub fn write(dir: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // Messages and user names: readable by the broker's user only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(&snapshot.to_json())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Persister {
    fn write_now(&mut self, broker: &Broker) -> std::io::Result<()> {
        write(&self.dir, &broker.snapshot(clocks()))?;
        self.dirty = false;
        self.last_write = Instant::now();
        Ok(())
    }
}

impl State {
    /// Makes the core's state durable before acknowledgements go out.
    pub(super) fn persist_before_acks(&mut self) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        p.dirty = true;
        let acks = self.broker.acknowledges();
        if !acks && p.last_write.elapsed() < FLUSH_INTERVAL {
            return;
        }
        if let Err(e) = p.write_now(&self.broker) {
            tracing::error!(dir = %p.dir.display(), error = %e, "cannot persist the broker state");
            if acks {
                self.broker.drop_acknowledgements();
            }
        }
    }
}

impl Shared {
    /// A broker for `config`; with `config.persist_dir`, its state is read
    /// from that directory (created if need be) and kept there.
    pub fn open(config: Config) -> Result<Arc<Shared>, String> {
        let Some(dir) = config.persist_dir.clone() else {
            return Ok(Shared::new(config));
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Before anything is read: the state is the lock holder's.
        let held = lock(&dir)?;
        let mut broker = Broker::new(config.clone());
        if let Some(snapshot) = load(&dir)? {
            broker.restore(snapshot, clocks()).map_err(|e| {
                format!(
                    "{}: {e} (move the file away to start with an empty state)",
                    dir.join(FILE).display()
                )
            })?;
        }
        let mut persister = Persister {
            dir,
            dirty: false,
            last_write: Instant::now(),
            _lock: held,
        };
        // Fail now, not at the first acknowledgement, if the directory is not writable.
        persister
            .write_now(&broker)
            .map_err(|e| format!("cannot write to {}: {e}", persister.dir.display()))?;
        let shared = Shared::new(config);
        {
            let mut st = shared.lock();
            st.broker = broker;
            st.persist = Some(persister);
        }
        // Changes that acknowledge nothing reach the disk within FLUSH_INTERVAL.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&shared);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_INTERVAL).await;
                    match weak.upgrade() {
                        Some(shared) => shared.flush(),
                        None => break,
                    }
                }
            });
        }
        Ok(shared)
    }

    /// Writes what is not yet durable and lets go of the directory, so that
    /// another broker may use it (a restart in the same process); from then
    /// on nothing is persisted. Called when serving ends.
    pub fn release_persistence(&self) {
        self.flush();
        self.lock().persist = None;
    }

    /// Writes what is not yet durable (on shutdown).
    pub fn flush(&self) {
        let mut st = self.lock();
        let State {
            broker, persist, ..
        } = &mut *st;
        if let Some(p) = persist.as_mut().filter(|p| p.dirty) {
            if let Err(e) = p.write_now(broker) {
                tracing::error!(dir = %p.dir.display(), error = %e, "cannot persist the broker state");
            }
        }
    }
}
