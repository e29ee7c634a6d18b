//! Command-line tools as processes under deadlines: run one to the end, or
//! start one and wait for a line it prints (a subscription made, a proxy
//! listening) before going on, never sleeping a fixed time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long any one tool gets before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What a finished process printed.
#[derive(Debug)]
pub struct Done {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// A process started with piped output, read line by line on threads.
pub struct Running {
    pub child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

fn lines(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `exe args`; `stdin` is written and closed (none: an open pipe is kept).
pub fn start(exe: &str, args: &[&str], stdin: Option<&[u8]>) -> Running {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{exe} starts: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input).expect("write stdin");
    }
    let out = lines(child.stdout.take().expect("piped stdout"));
    let err = lines(child.stderr.take().expect("piped stderr"));
    Running {
        child,
        out,
        err,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

/// Runs `exe args` to the end.
pub fn run(exe: &str, args: &[&str], stdin: Option<&[u8]>) -> Done {
    start(exe, args, Some(stdin.unwrap_or_default())).finish()
}

impl Running {
    /// Waits for a line of stdout (`on_stderr` false) or stderr that `pred`
    /// accepts, keeping every line read; panics at the deadline or when the
    /// process ends first.
    pub fn wait_for(&mut self, on_stderr: bool, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (rx, kept) = if on_stderr {
                (&self.err, &mut self.stderr)
            } else {
                (&self.out, &mut self.stdout)
            };
            match rx.recv_timeout(left) {
                Ok(line) => {
                    kept.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "no such line within {DEADLINE:?}; stdout {:?} stderr {:?}",
                        self.stdout, self.stderr
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the process ended first; stdout {:?} stderr {:?}",
                        self.stdout, self.stderr
                    )
                }
            }
        }
    }

    /// Waits for the process to end (killing it at the deadline, and failing).
    pub fn finish(self) -> Done {
        self.finish_within(DEADLINE)
    }

    /// [`Running::finish`] with a deadline of `bound`. The end is the event
    /// of both output pipes closing (the reader threads hang up when the
    /// process exits); the exit status is then collected.
    pub fn finish_within(mut self, bound: Duration) -> Done {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + bound;
        let mut open = [true, true];
        while let Some(i) = open.iter().position(|o| *o) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (rx, kept) = if i == 0 {
                (&self.out, &mut self.stdout)
            } else {
                (&self.err, &mut self.stderr)
            };
            match rx.recv_timeout(left) {
                Ok(line) => kept.push(line),
                Err(RecvTimeoutError::Disconnected) => open[i] = false,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "still running after {bound:?}; stdout {:?} stderr {:?}",
                        self.stdout, self.stderr
                    );
                }
            }
        }
        let status = self.child.wait().expect("wait");
        Done {
            status,
            stdout: self.stdout.iter().map(|l| format!("{l}\n")).collect(),
            stderr: self.stderr.iter().map(|l| format!("{l}\n")).collect(),
        }
    }

    /// Kills the process at once (SIGKILL): its sockets close without goodbye.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
