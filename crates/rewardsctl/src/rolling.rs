//! A rolling update of one service's replicas, as an orchestrator does it:
//! one replica at a time is stopped with SIGTERM (it turns NOT_SERVING,
//! finishes its calls in flight and drains), replaced by a new process, and
//! the next one waits until the new one serves and the gateway has had time
//! to put it back in its balance.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::mesh::{Member, Mesh, is_serving};

/// How long a replacement may take to serve.
const START_WITHIN: Duration = Duration::from_secs(60);

/// One replica's swap.
#[derive(Debug, Clone)]
pub struct Swap {
    pub replica: String,
    /// From SIGTERM until the old process had drained and exited.
    pub drained_in: Duration,
    /// From then until the new process served.
    pub serving_in: Duration,
}

/// Replaces every replica of `service`, one after the other. `ready_for` is
/// how long a new replica must serve before the next one goes (Kubernetes'
/// `minReadySeconds`): long enough for the gateway's health round to route
/// to it again.
///
/// # Errors
/// When the service has fewer than two replicas (the update would take it
/// away), or a replacement does not serve in time.
pub async fn rolling_update(mesh: &Mesh, service: &str, ready_for: Duration) -> anyhow::Result<Vec<Swap>> {
    let members: Vec<&Member> = mesh.layout().members_of(service).collect();
    if members.len() < 2 {
        bail!(
            "a rolling update of {service} needs at least two replicas, so that one serves while the other is replaced"
        );
    }
    let mut swaps = Vec::with_capacity(members.len());
    for member in members {
        let process = mesh.process(&member.name).with_context(|| format!("{} is not running", member.name))?;
        let stopping = Instant::now();
        if !process.replace().await {
            bail!("{} was not running when its turn came", member.name);
        }
        let drained_in = stopping.elapsed();
        let starting = Instant::now();
        while !is_serving(member).await {
            if starting.elapsed() > START_WITHIN {
                bail!("the replacement of {} did not serve within {}s", member.name, START_WITHIN.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        swaps.push(Swap { replica: member.name.clone(), drained_in, serving_in: starting.elapsed() });
        tokio::time::sleep(ready_for).await;
    }
    Ok(swaps)
}
