//! `--persist DIR`: the tokio layer's half of persistence. The core turns its
//! state into a [`Snapshot`] and its changes into journal records
//! (`broker/journal.rs`); this writes them to `DIR` and reads them back at
//! start-up.
//!
//! Files: `DIR/state.json`, a snapshot, names the journal that continues it,
//! `DIR/journal.N`; the state is the snapshot with the journal's committed
//! batches applied.
//!
//! When: every dispatch (what one connection's read brought, or a timer)
//! appends the records of what it changed to a buffer under the core's
//! lock, which costs what changed, not what the state holds. Packets that
//! must not leave before their state is on disk (acknowledgements, QoS 2
//! PUBLISH, PUBREL: `journal::waits_for_disk`) are held with the number of
//! the batch they need, and so is everything dispatched after them, so
//! that no packet overtakes another. One writer thread takes the buffer,
//! appends it to the journal and syncs it, outside the core's lock, then
//! sends what was held for it: while it waits for the disk, every
//! connection's changes gather for the next write (group commit, one sync
//! per batch however many connections it serves). Connections are not
//! stopped while a write is under way; but should the disk fall behind by
//! `persist_max_pending_bytes` (64 MiB) of records, no connection is read
//! until the writer has caught up (TCP then slows the clients), so that
//! memory stays bounded however long a sync takes.
//!
//! Compaction: when the journal grows past four times the snapshot (and at
//! least `persist_compact_bytes`, 64 MiB by default: a compaction writes
//! the whole state, ~4 MB at 10,000 queued messages), the writer snapshots the state under the lock,
//! then, outside it, writes the snapshot naming journal N+1 (temporary
//! file, sync, rename, sync the directory), and removes journal N. A crash
//! at any point leaves the old snapshot with its journal, or the new one
//! with its own. The same happens at start-up (after replaying) and at
//! shutdown, and after a failed write: the journal is then behind the
//! state, and only a snapshot is a consistent point again. The packets
//! held for a failed write that must wait for the disk are not sent (the
//! clients will send again); the rest are.
//!
//! Who: one broker per directory. `DIR/lock` is held (an advisory lock,
//! `flock` on Unix) for as long as the broker runs; a second broker given
//! the same directory refuses to start instead of overwriting the first's
//! state with its own.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Shared, State};
use crate::broker::{journal, Action, Broker, Clocks, ConnMap, Journal, Snapshot};
use crate::config::Config;

/// File name of the snapshot inside the persistence directory.
pub const FILE: &str = "state.json";
/// File whose lock says that a broker uses the directory.
pub const LOCK: &str = "lock";
/// Largest snapshot or journal file read at start-up (bytes).
pub const MAX_FILE: u64 = 512 * 1024 * 1024;
/// Longest the writer sleeps without being woken (it then looks whether
/// the broker is gone).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// The journal file of generation `n`.
pub fn journal_file(n: u64) -> String {
    format!("journal.{n}")
}

/// Wakes the writer thread.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    cv: Condvar,
}

#[derive(Default)]
struct SignalState {
    woken: bool,
    /// The writer waits on `cv`. Only then is it notified: std's condition
    /// variable makes a futex call on every notification, waiter or not,
    /// and the core wakes the writer after every dispatch that changed
    /// something (7% of the broker's CPU with `--persist`, perf).
    sleeping: bool,
}

impl Signal {
    fn wake(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.woken = true;
        let sleeping = st.sleeping;
        drop(st);
        if sleeping {
            self.cv.notify_one();
        }
    }

    fn wait(&self, within: Duration) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !st.woken {
            // `sleeping` is set and cleared under the lock the wait
            // releases, so a `wake` sees it whenever a notification is due.
            st.sleeping = true;
            st = self
                .cv
                .wait_timeout(st, within)
                .map_or_else(|e| e.into_inner().0, |r| r.0);
            st.sleeping = false;
        }
        st.woken = false;
    }
}

pub(super) struct Persister {
    dir: PathBuf,
    /// The journal being appended to.
    generation: u64,
    journal: Journal,
    /// Records not yet handed to the writer.
    pending: Vec<u8>,
    /// Batches appended to `pending` since start-up, and how many are on disk.
    appended: u64,
    durable: u64,
    /// Actions waiting for a batch to be on disk, by that batch's number,
    /// in the order the core made them.
    held: VecDeque<(u64, Action)>,
    /// Connections with actions held, and the batch the last one waits for.
    held_for: ConnMap<u64>,
    journal_bytes: u64,
    snapshot_bytes: u64,
    /// `persist_compact_bytes`.
    compact_at: u64,
    /// The next write is a snapshot (a write failed: the journal is behind).
    compact: bool,
    stopping: bool,
    signal: Arc<Signal>,
    /// Set while `pending` is over `max_pending` (`Shared::disk_behind`).
    behind: Arc<AtomicBool>,
    /// `persist_max_pending_bytes`.
    max_pending: usize,
    writer: Option<std::thread::JoinHandle<()>>,
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

/// Reads `path`, at most [`MAX_FILE`] bytes; `None` if it does not exist.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{}: {} bytes is more than the {MAX_FILE} a state file may have",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("{}: more than {MAX_FILE} bytes", path.display()));
    }
    Ok(Some(bytes))
}

/// Reads the state in `dir`, if there is one: the snapshot with its
/// journal's committed batches applied. Errors name the file.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, String> {
    let path = dir.join(FILE);
    let Some(bytes) = read_bounded(&path)? else {
        return Ok(None);
    };
    let mut snapshot = Snapshot::from_json(&bytes).map_err(|e| {
        format!(
            "{}: {e} (move the file away to start with an empty state)",
            path.display()
        )
    })?;
    let path = dir.join(journal_file(snapshot.journal));
    if let Some(log) = read_bounded(&path)? {
        let replayed = journal::replay(&mut snapshot, &log).map_err(|e| {
            format!(
                "{}: {e} (move it away to start from {} alone)",
                path.display(),
                dir.join(FILE).display()
            )
        })?;
        if replayed.discarded > 0 {
            tracing::warn!(
                file = %path.display(),
                records = replayed.discarded,
                "left out the journal's last, unfinished write (nothing in it was acknowledged)"
            );
        }
    }
    Ok(Some(snapshot))
}

/// Writes `snapshot` into `dir` atomically, with the empty journal it
/// names, and removes the older journals; returns the snapshot's size.
pub fn write(dir: &Path, snapshot: &Snapshot) -> std::io::Result<(u64, std::fs::File)> {
    let journal = create(&dir.join(journal_file(snapshot.journal)), true)?;
    journal.sync_all()?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut f = create(&tmp, true)?;
    let json = snapshot.to_json();
    f.write_all(&json)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let current = journal_file(snapshot.journal);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("journal.") && *name != current {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok((json.len() as u64, journal))
}

fn create(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .create(true)
        .truncate(truncate)
        .append(!truncate);
    // Messages and user names: readable by the broker's user only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// What the writer does next, taken under the lock and done outside it.
enum Job {
    Append { bytes: Vec<u8>, upto: u64 },
    Compact { snapshot: Box<Snapshot>, upto: u64 },
}

impl Persister {
    /// Starts a journal of a new generation from the state as it is: the
    /// snapshot to write, which holds every batch appended so far.
    fn compaction(&mut self, broker: &mut Broker) -> (Box<Snapshot>, u64) {
        self.pending.clear();
        self.generation += 1;
        self.compact = false;
        let clocks = clocks();
        self.journal = broker.start_journal(clocks);
        let mut snapshot = broker.snapshot(clocks);
        snapshot.journal = self.generation;
        (Box::new(snapshot), self.appended)
    }

    fn next_job(&mut self, broker: &mut Broker) -> Option<Job> {
        // Never past half of what start-up reads (a journal longer than
        // MAX_FILE would keep the broker from starting again).
        let limit = self
            .compact_at
            .max(self.snapshot_bytes.saturating_mul(4))
            .min(MAX_FILE / 2);
        if self.compact || self.journal_bytes > limit {
            let (snapshot, upto) = self.compaction(broker);
            return Some(Job::Compact { snapshot, upto });
        }
        if self.pending.is_empty() {
            return None;
        }
        Some(Job::Append {
            bytes: std::mem::take(&mut self.pending),
            upto: self.appended,
        })
    }
}

impl Job {
    fn upto(&self) -> u64 {
        match self {
            Job::Append { upto, .. } | Job::Compact { upto, .. } => *upto,
        }
    }

    /// Does the I/O; returns the bytes written.
    fn run(&self, dir: &Path, journal: &mut std::fs::File) -> std::io::Result<u64> {
        match self {
            Job::Append { bytes, .. } => {
                journal.write_all(bytes)?;
                journal.sync_data()?;
                Ok(bytes.len() as u64)
            }
            Job::Compact { snapshot, .. } => {
                let (n, file) = write(dir, snapshot)?;
                *journal = file;
                Ok(n)
            }
        }
    }
}

impl State {
    /// Journals what the core changed and holds the actions that must wait
    /// for the disk, and those for the same connections after them (so
    /// that none overtakes another on its connection); returns the others,
    /// to be carried out now, or `None` when nothing waits (then every
    /// action may go).
    pub(super) fn hold_for_disk(&mut self) -> Option<Vec<Action>> {
        let State {
            broker, persist, ..
        } = self;
        let p = persist.as_mut()?;
        if broker.journal(&mut p.journal, clocks(), &mut p.pending) {
            p.appended += 1;
            p.signal.wake();
            if p.pending.len() > p.max_pending && !p.behind.swap(true, Ordering::Relaxed) {
                tracing::debug!(
                    dir = %p.dir.display(),
                    bytes = p.pending.len(),
                    "the disk is behind: connections wait until the journal is written"
                );
            }
        }
        if p.appended == p.durable && p.held.is_empty() {
            return None;
        }
        let mut ready = Vec::new();
        while let Some(action) = broker.poll_action() {
            let conn = match &action {
                Action::Send { conn, .. } | Action::Close { conn } => *conn,
            };
            let upto = if p.appended > p.durable && journal::waits_for_disk(&action) {
                p.held_for.insert(conn, p.appended);
                p.appended
            } else if let Some(&n) = p.held_for.get(&conn) {
                n
            } else {
                ready.push(action);
                continue;
            };
            p.held.push_back((upto, action));
        }
        Some(ready)
    }

    /// The writer finished a job: sends what waited for it.
    fn written(&mut self, job: &Job, result: std::io::Result<u64>) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        let failed = match result {
            Ok(n) => {
                match job {
                    Job::Append { .. } => p.journal_bytes += n,
                    Job::Compact { .. } => {
                        p.journal_bytes = 0;
                        p.snapshot_bytes = n;
                    }
                }
                false
            }
            Err(e) => {
                tracing::error!(dir = %p.dir.display(), error = %e, "cannot persist the broker state");
                p.compact = true;
                true
            }
        };
        p.durable = p.durable.max(job.upto());
        let durable = p.durable;
        let mut ready = Vec::new();
        let mut later = VecDeque::new();
        for (n, action) in p.held.drain(..) {
            if n <= durable {
                ready.push(action);
            } else {
                later.push_back((n, action));
            }
        }
        p.held = later;
        p.held_for.retain(|_, n| *n > durable);
        // Caught up: every connection may be read again.
        if p.pending.len() <= p.max_pending && p.behind.swap(false, Ordering::Relaxed) {
            for out in self.outbound.values() {
                out.resume();
            }
        }
        for action in ready {
            if failed && journal::waits_for_disk(&action) {
                continue;
            }
            self.carry_out(action);
        }
    }
}

/// The writer thread: see the module's documentation.
fn writer(shared: Weak<Shared>, signal: Arc<Signal>, dir: PathBuf, mut journal: std::fs::File) {
    loop {
        signal.wait(IDLE_WAKE);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        loop {
            let job = {
                let mut st = shared.lock();
                let State {
                    broker, persist, ..
                } = &mut *st;
                match persist.as_mut() {
                    Some(p) if !p.stopping => p.next_job(broker),
                    _ => return,
                }
            };
            let Some(job) = job else { break };
            let result = job.run(&dir, &mut journal);
            shared.lock().written(&job, result);
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
        let mut generation = 0;
        if let Some(snapshot) = load(&dir)? {
            generation = snapshot.journal;
            broker.restore(snapshot, clocks()).map_err(|e| {
                format!(
                    "{}: {e} (move the file away to start with an empty state)",
                    dir.join(FILE).display()
                )
            })?;
        }
        let signal = Arc::new(Signal::default());
        let mut persister = Persister {
            dir: dir.clone(),
            generation,
            journal: Journal::default(),
            pending: Vec::new(),
            appended: 0,
            durable: 0,
            held: VecDeque::new(),
            held_for: ConnMap::default(),
            journal_bytes: 0,
            snapshot_bytes: 0,
            compact_at: config.persist_compact_bytes,
            compact: false,
            stopping: false,
            signal: signal.clone(),
            behind: Arc::default(),
            max_pending: config.persist_max_pending_bytes,
            writer: None,
            _lock: held,
        };
        // What was replayed becomes one snapshot, and a new journal starts;
        // this also fails now, not at the first acknowledgement, if the
        // directory is not writable.
        let (snapshot, _) = persister.compaction(&mut broker);
        let (written, journal) = write(&dir, &snapshot)
            .map_err(|e| format!("cannot write to {}: {e}", dir.display()))?;
        persister.snapshot_bytes = written;
        let shared = Shared::new(config);
        persister.behind = shared.disk_behind.clone();
        {
            let weak = Arc::downgrade(&shared);
            let thread = std::thread::Builder::new()
                .name("persist".into())
                .spawn(move || writer(weak, signal, dir, journal))
                .map_err(|e| format!("cannot start the persistence thread: {e}"))?;
            persister.writer = Some(thread);
            let mut st = shared.lock();
            st.broker = broker;
            st.persist = Some(persister);
        }
        Ok(shared)
    }

    /// Stops the writer, writes the whole state as a snapshot, sends what
    /// waited for it and lets go of the directory, so that another broker
    /// may use it (a restart in the same process); from then on nothing is
    /// persisted. Called when serving ends.
    pub fn release_persistence(&self) {
        let writer = {
            let mut st = self.lock();
            let Some(p) = st.persist.as_mut() else {
                return;
            };
            p.stopping = true;
            p.signal.wake();
            p.writer.take()
        };
        // Not under the lock: the writer takes it to finish its job.
        if let Some(thread) = writer {
            let _ = thread.join();
        }
        let mut st = self.lock();
        let State {
            broker, persist, ..
        } = &mut *st;
        let Some(p) = persist.as_mut() else {
            return;
        };
        // What the last dispatches changed is in the state: one snapshot has it all.
        let (snapshot, upto) = p.compaction(broker);
        let result = write(&p.dir, &snapshot).map(|(n, _)| n);
        st.written(&Job::Compact { snapshot, upto }, result);
        st.persist = None;
    }
}
