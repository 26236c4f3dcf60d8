//! A three-node (or any size) JetStream cluster of real nats-server
//! processes, owned by one test, whose nodes the test kills and restarts.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use localinfra::nats::{self, Node};

/// Real nats-server processes clustered with JetStream, each with its own
/// store; killed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    children: Vec<Option<Child>>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until they have elected a meta leader
    /// and every node is current.
    ///
    /// # Errors
    /// When nats-server is missing or the cluster does not form within 30 s.
    pub async fn start(size: usize) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("nats-cluster-").tempdir()?;
        let mut nodes = Vec::with_capacity(size);
        for n in 1..=size {
            let take = || localinfra::ports::TESTS.take();
            nodes.push(Node {
                name: format!("n{n}"),
                client_port: take()?,
                monitor_port: take()?,
                cluster_port: take()?,
                store: dir.path().join(format!("n{n}")),
            });
        }
        let mut cluster = Self { dir, children: (0..size).map(|_| None).collect(), nodes };
        for node in 0..size {
            cluster.spawn(node)?;
        }
        cluster.wait_healthy(Duration::from_secs(30)).await?;
        // A test kills a node next: every node must be in the meta group
        // first, or the two left may not be a quorum of it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !nats::meta_group_complete(&cluster.nodes).await {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the meta group did not take in every node within 30 s (logs in {})",
                    cluster.dir.path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(cluster)
    }

    fn spawn(&mut self, node: usize) -> anyhow::Result<()> {
        let binary = crate::nats_server_binary()?;
        let args = self.nodes[node].cluster_args("rewards-test", &self.nodes);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", self.nodes[node].name)))?;
        let child = Command::new(binary)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot spawn nats-server")?;
        self.children[node] = Some(child);
        Ok(())
    }

    /// Every node's client URL, comma-separated, as the services take them.
    pub fn urls(&self) -> String {
        nats::urls(&self.nodes)
    }

    /// The client URL of `node`.
    pub fn url(&self, node: usize) -> String {
        self.nodes[node].url()
    }

    /// The number of nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Whether `node` runs.
    pub fn is_running(&self, node: usize) -> bool {
        self.children[node].is_some()
    }

    fn live(&self) -> Vec<Node> {
        self.nodes.iter().zip(&self.children).filter(|(_, c)| c.is_some()).map(|(n, _)| n.clone()).collect()
    }

    /// The index of the JetStream meta leader.
    ///
    /// # Errors
    /// When no live node names one.
    pub async fn meta_leader(&self) -> anyhow::Result<usize> {
        let name = self.leader(None).await?;
        self.index(&name)
    }

    /// The index of the node leading `stream`.
    ///
    /// # Errors
    /// When no live node names one.
    pub async fn stream_leader(&self, stream: &str) -> anyhow::Result<usize> {
        let name = self.leader(Some(stream)).await?;
        self.index(&name)
    }

    async fn leader(&self, stream: Option<&str>) -> anyhow::Result<String> {
        let live = self.live();
        let index = nats::leader_of(&live, stream)
            .await
            .with_context(|| format!("no live node names a leader of {}", stream.unwrap_or("the meta group")))?;
        Ok(live[index].name.clone())
    }

    fn index(&self, name: &str) -> anyhow::Result<usize> {
        self.nodes.iter().position(|n| n.name == name).with_context(|| format!("{name} is not a node"))
    }

    /// Kills `node` at once (SIGKILL), as a crash would.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.children[node].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `node` again on its ports and store; it rejoins the cluster.
    ///
    /// # Errors
    /// When it cannot be spawned.
    pub fn restart(&mut self, node: usize) -> anyhow::Result<()> {
        self.kill(node);
        self.spawn(node)
    }

    /// Waits until a meta leader is known and every running node reports
    /// itself healthy (JetStream current).
    ///
    /// # Errors
    /// When that does not happen within `within`.
    pub async fn wait_healthy(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if nats::is_cluster_healthy(&self.live()).await {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the cluster is not healthy after {within:?} (logs in {})", self.dir.path().display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node);
        }
    }
}
