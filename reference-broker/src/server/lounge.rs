//! Parked connections: a connection that had nothing to read, write or
//! hold back between two of the timer task's asks (`Config::park_after`),
//! or a new one quiet after its CONNECT, gives up its task (about 770
//! bytes with tokio's header) and waits here in about 110: its socket,
//! its outbox and its decoder, in a slot of one table that one task serves
//! (the socket's registration with tokio, 256 bytes, stays as it was).
//! When its socket has bytes (or ends) or its outbox a signal (a packet, a
//! close, a resume), the connection gets a task of its own again.
//!
//! A parked connection is told the [`Bell`] of its slot and gives the
//! waker that rings it (for a connection, its outbox: no allocation of its
//! own). Ringing queues the slot and wakes the lounge's task, which looks
//! at the queued slots only, never at the whole table. A waker left behind
//! by an earlier tenant of a slot can only make the lounge look at it for
//! nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

/// Slots looked at per turn of the lounge's task before it lets others run.
const TURN: usize = 256;

/// A parked connection.
pub(super) trait Sleeper: Send {
    /// Called once, when parked: what rings `bell` from now on.
    fn hang(&mut self, bell: Bell);
    /// A waker that rings the bell given to [`Sleeper::hang`].
    fn waker(&self) -> Waker;
    /// Ready when the connection has something to do; otherwise `cx` (the
    /// sleeper's own waker) is woken when it has.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Gives the connection a task again.
    fn wake_up(self: Box<Self>);
}

/// What tells the lounge that the sleeper in a slot may have something to do.
#[derive(Clone, Debug)]
pub struct Bell {
    lounge: Weak<Lounge>,
    slot: usize,
}

impl Bell {
    pub fn ring(&self) {
        if let Some(lounge) = self.lounge.upgrade() {
            let mut inner = lounge.lock();
            inner.ready.push_back(self.slot);
            let task = inner.task.take();
            drop(inner);
            if let Some(task) = task {
                task.wake();
            }
        }
    }
}

/// The table of parked connections of one broker.
#[derive(Default, Debug)]
pub struct Lounge {
    inner: Mutex<Inner>,
    /// The number parked, published on every change (under `inner`'s
    /// lock, so in order), so that a test or a metrics reader can wait
    /// for a count.
    count: tokio::sync::watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    /// `None`: free (listed in `free`), or its sleeper is being looked at.
    slots: Vec<Option<Box<dyn Sleeper>>>,
    free: Vec<usize>,
    /// Slots woken since the lounge's task last looked, oldest first (a
    /// turn takes at most [`TURN`]; none waits behind later wake-ups).
    ready: VecDeque<usize>,
    parked: usize,
    /// Whether the lounge's task runs (it ends when nobody is parked).
    running: bool,
    /// The lounge's task, while it waits.
    task: Option<Waker>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lounge")
            .field("parked", &self.parked)
            .field("running", &self.running)
            .finish()
    }
}

impl Lounge {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections parked now (for tests and metrics).
    pub fn parked(&self) -> usize {
        self.lock().parked
    }

    /// Waits until exactly `n` connections are parked, or `within`
    /// passes; returns whether the count was reached.
    pub async fn parked_become(&self, n: usize, within: std::time::Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(within, rx.wait_for(|&c| c == n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Parks `sleeper` until it has something to do; starts the lounge's
    /// task if none runs. Must be called within the tokio runtime.
    pub(super) fn park(self: &Arc<Lounge>, mut sleeper: Box<dyn Sleeper>) {
        let mut inner = self.lock();
        let slot = match inner.free.pop() {
            Some(slot) => slot,
            None => {
                inner.slots.push(None);
                inner.slots.len() - 1
            }
        };
        sleeper.hang(Bell {
            lounge: Arc::downgrade(self),
            slot,
        });
        inner.slots[slot] = Some(sleeper);
        inner.parked += 1;
        self.count.send_replace(inner.parked);
        // Looked at once at once: that registers its wakers (and finds what
        // came in meanwhile).
        inner.ready.push_back(slot);
        if !inner.running {
            inner.running = true;
            drop(inner);
            tokio::spawn(run(self.clone()));
        } else if let Some(task) = inner.task.take() {
            drop(inner);
            task.wake();
        }
    }

    /// One turn of the lounge's task: looks at up to [`TURN`] woken slots,
    /// gives those with something to do a task again; ready once nobody is
    /// parked.
    fn poll_turn(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        for _ in 0..TURN {
            let Some(slot) = inner.ready.pop_front() else {
                if inner.parked == 0 {
                    inner.running = false;
                    return Poll::Ready(());
                }
                inner.task = Some(cx.waker().clone());
                return Poll::Pending;
            };
            // Taken out to be looked at without the lock: its wakers may be
            // called meanwhile, from another thread.
            let Some(mut sleeper) = inner.slots[slot].take() else {
                continue;
            };
            drop(inner);
            let waker = sleeper.waker();
            let woken = sleeper
                .poll_wake(&mut Context::from_waker(&waker))
                .is_ready();
            if woken {
                sleeper.wake_up();
                inner = self.lock();
                inner.free.push(slot);
                inner.parked -= 1;
                self.count.send_replace(inner.parked);
            } else {
                inner = self.lock();
                inner.slots[slot] = Some(sleeper);
            }
        }
        drop(inner);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The lounge's task: runs while anybody is parked.
async fn run(lounge: Arc<Lounge>) {
    std::future::poll_fn(|cx| lounge.poll_turn(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sleeper woken by a flag, counting its wake-ups.
    struct Flag {
        set: Arc<Mutex<(bool, Option<Waker>)>>,
        woken: Arc<AtomicUsize>,
        bell: Arc<Ringer>,
    }

    #[derive(Default)]
    struct Ringer(Mutex<Option<Bell>>);

    impl std::task::Wake for Ringer {
        fn wake(self: Arc<Self>) {
            if let Some(bell) = self.0.lock().expect("lock").clone() {
                bell.ring();
            }
        }
    }

    impl Sleeper for Flag {
        fn hang(&mut self, bell: Bell) {
            *self.bell.0.lock().expect("lock") = Some(bell);
        }

        fn waker(&self) -> Waker {
            Waker::from(self.bell.clone())
        }

        fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            let mut s = self.set.lock().expect("lock");
            if s.0 {
                Poll::Ready(())
            } else {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }

        fn wake_up(self: Box<Self>) {
            self.woken.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn raise(set: &Mutex<(bool, Option<Waker>)>) {
        let w = {
            let mut s = set.lock().expect("lock");
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Yields until `what` holds; fails the test after ten seconds.
    async fn until(what: impl Fn() -> bool) {
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !what() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the lounge did not get there");
    }

    /// Each sleeper is woken up once, when its own flag is raised; the
    /// lounge's task ends when nobody is left, and a later park starts it
    /// again, reusing the freed slots.
    #[tokio::test]
    async fn sleepers_wake_up_when_their_flag_is_raised() {
        let lounge = Arc::new(Lounge::default());
        let woken = Arc::new(AtomicUsize::new(0));
        let flags: Vec<_> = (0..3)
            .map(|_| Arc::new(Mutex::new((false, None))))
            .collect();
        for set in &flags {
            lounge.park(Box::new(Flag {
                set: set.clone(),
                woken: woken.clone(),
                bell: Arc::default(),
            }));
        }
        // The lounge's task has looked at each and waits.
        until(|| {
            let inner = lounge.lock();
            inner.ready.is_empty() && inner.task.is_some()
        })
        .await;
        assert_eq!(lounge.parked(), 3);
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        raise(&flags[1]);
        until(|| lounge.parked() == 2).await;
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        raise(&flags[0]);
        raise(&flags[2]);
        until(|| !lounge.lock().running).await;
        assert_eq!(woken.load(Ordering::SeqCst), 3);
        assert_eq!(lounge.parked(), 0);

        // Raised before it is parked: woken up at the first look.
        lounge.park(Box::new(Flag {
            set: flags[0].clone(),
            woken: woken.clone(),
            bell: Arc::default(),
        }));
        until(|| !lounge.lock().running).await;
        assert_eq!(woken.load(Ordering::SeqCst), 4);
        assert_eq!(lounge.lock().slots.len(), 3, "the slots were reused");
    }
}
