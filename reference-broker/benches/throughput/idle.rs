//! Memory per idle connection: the broker's resident set before and after
//! `n` clients connect (CONNECT / CONNACK, a keep alive longer than the
//! measurement) and then do nothing.

use std::time::Duration;

use crate::brokers::BrokerProcess;
use crate::client::Client;

/// Connections opened at once, so that the listen backlog never overflows.
const CONCURRENT: usize = 50;
/// Time allowed for the broker to settle before its RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

pub struct IdleMemory {
    pub connections: usize,
    pub before: u64,
    pub after: u64,
}

impl IdleMemory {
    pub fn per_connection(&self) -> f64 {
        self.after.saturating_sub(self.before) as f64 / self.connections.max(1) as f64
    }
}

pub async fn measure(broker: &BrokerProcess, n: usize) -> Result<IdleMemory, String> {
    let addr = broker.addr;
    // One connection first, so that what the first one allocates once
    // (runtime, listener, allocator arenas) is in the baseline.
    Client::connect(addr, "idle-warmup")
        .await?
        .disconnect()
        .await;
    tokio::time::sleep(SETTLE).await;
    let before = broker.rss_bytes()?;
    let mut clients = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let chunk: Vec<_> = (next..n.min(next + CONCURRENT))
            .map(|i| {
                tokio::spawn(async move {
                    Client::connect(addr, &format!("idle-{}-{i}", std::process::id())).await
                })
            })
            .collect();
        next += chunk.len();
        for t in chunk {
            clients.push(t.await.map_err(|e| format!("idle client task: {e}"))??);
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = broker.rss_bytes()?;
    for c in clients {
        c.disconnect().await;
    }
    Ok(IdleMemory {
        connections: n,
        before,
        after,
    })
}
