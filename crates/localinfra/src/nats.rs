//! nats-server with JetStream: alone, or as a cluster of nodes on one
//! machine, and what its monitoring port tells about it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http;

/// Finds nats-server: `$NATS_SERVER_BIN`, the project's `.tools/bin` (where
/// `./dev` installs it), then `PATH`.
pub fn find_server(project_root: &Path) -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return Some(bin.into());
    }
    let local = project_root.join(".tools/bin/nats-server");
    if local.exists() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("nats-server")).find(|candidate| candidate.exists())
}

/// One nats-server process: its name, ports and JetStream store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The server name; unique in a cluster, as JetStream requires.
    pub name: String,
    pub client_port: u16,
    pub monitor_port: u16,
    /// The port of the cluster's routes; unused when the node runs alone.
    pub cluster_port: u16,
    /// Its JetStream file store.
    pub store: PathBuf,
}

impl Node {
    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// The arguments of a server that runs alone.
    pub fn standalone_args(&self) -> Vec<String> {
        let mut args = self.common_args();
        args.extend(["-n".into(), self.name.clone()]);
        args
    }

    /// The arguments of this node as a member of `cluster` (itself included),
    /// which every member routes to.
    pub fn cluster_args(&self, cluster_name: &str, cluster: &[Node]) -> Vec<String> {
        let routes: Vec<String> = cluster
            .iter()
            .filter(|peer| peer.name != self.name)
            .map(|peer| format!("nats://127.0.0.1:{}", peer.cluster_port))
            .collect();
        let mut args = self.common_args();
        args.extend([
            "--server_name".into(),
            self.name.clone(),
            "--cluster_name".into(),
            cluster_name.into(),
            "--cluster".into(),
            format!("nats://127.0.0.1:{}", self.cluster_port),
            "--routes".into(),
            routes.join(","),
        ]);
        args
    }

    fn common_args(&self) -> Vec<String> {
        vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.client_port.to_string(),
            "-m".into(),
            self.monitor_port.to_string(),
            "-js".into(),
            "-sd".into(),
            self.store.display().to_string(),
        ]
    }
}

/// The client URLs of every node, comma-separated, as the services take them.
pub fn urls(nodes: &[Node]) -> String {
    nodes.iter().map(Node::url).collect::<Vec<_>>().join(",")
}

const MONITOR_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the node answers `/healthz` with JetStream current (in a
/// cluster: a member that has caught up with the meta leader).
pub async fn is_healthy(monitor_port: u16) -> bool {
    matches!(http::get(monitor_port, "/healthz?js-enabled-only=true", MONITOR_TIMEOUT).await, Ok((200, _)))
}

/// Whether every one of `nodes` answers `/healthz` with JetStream current.
pub async fn all_healthy(nodes: &[Node]) -> bool {
    for node in nodes {
        if !is_healthy(node.monitor_port).await {
            return false;
        }
    }
    true
}

/// Whether every one of `nodes` names the same meta leader and that leader
/// counts every other node as a current peer: the meta group has formed
/// with all of them, so losing any one node leaves a quorum that elects a
/// new leader. (A node answers `/healthz` as soon as JetStream is enabled,
/// before it has joined the group.)
pub async fn meta_group_complete(nodes: &[Node]) -> bool {
    let mut leaders = Vec::with_capacity(nodes.len());
    for node in nodes {
        match meta_leader(node.monitor_port).await {
            Ok(Some(leader)) => leaders.push(leader),
            _ => return false,
        }
    }
    let Some(leader) = leaders.first().filter(|first| leaders.iter().all(|l| l == *first)) else { return false };
    let Some(at_leader) = nodes.iter().find(|n| &n.name == leader) else { return false };
    let Ok(jsz) = http::get_json(at_leader.monitor_port, "/jsz", MONITOR_TIMEOUT).await else { return false };
    let replicas = jsz.pointer("/meta_cluster/replicas").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    let current = replicas.iter().filter(|r| r.get("current").and_then(serde_json::Value::as_bool) == Some(true));
    current.count() + 1 >= nodes.len()
}

/// Whether `nodes` have a meta leader and every one of them is current.
pub async fn is_cluster_healthy(nodes: &[Node]) -> bool {
    leader_of(nodes, None).await.is_some() && all_healthy(nodes).await
}

/// The name of the JetStream meta leader as the node sees it, `None` while
/// there is none.
///
/// # Errors
/// When the node does not answer.
pub async fn meta_leader(monitor_port: u16) -> anyhow::Result<Option<String>> {
    let jsz = http::get_json(monitor_port, "/jsz", MONITOR_TIMEOUT).await?;
    Ok(jsz.pointer("/meta_cluster/leader").and_then(|l| l.as_str()).filter(|l| !l.is_empty()).map(str::to_owned))
}

/// The name of the node leading `stream` as the node sees it, `None` when
/// the node holds no replica of it or it has no leader now.
///
/// # Errors
/// When the node does not answer.
pub async fn stream_leader(monitor_port: u16, stream: &str) -> anyhow::Result<Option<String>> {
    let jsz = http::get_json(monitor_port, "/jsz?accounts=true&streams=true", MONITOR_TIMEOUT).await?;
    let accounts = jsz.get("account_details").and_then(|a| a.as_array()).into_iter().flatten();
    let leader = accounts
        .filter_map(|account| account.get("stream_detail")?.as_array())
        .flatten()
        .find(|detail| detail.get("name").and_then(|n| n.as_str()) == Some(stream))
        .and_then(|detail| detail.pointer("/cluster/leader")?.as_str())
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    Ok(leader)
}

/// The leader among `nodes` that the live ones agree on: `meta` for the
/// meta leader, or the leader of the stream named. Asks each node in turn
/// and returns the index of the first leader named.
pub async fn leader_of(nodes: &[Node], stream: Option<&str>) -> Option<usize> {
    for node in nodes {
        let leader = match stream {
            None => meta_leader(node.monitor_port).await,
            Some(stream) => stream_leader(node.monitor_port, stream).await,
        };
        // A node may still name a leader that died (it has not noticed yet):
        // ask the next one rather than answer with none.
        if let Ok(Some(name)) = leader
            && let Some(index) = nodes.iter().position(|n| n.name == name)
        {
            return Some(index);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u16) -> Node {
        Node {
            name: format!("n{n}"),
            client_port: 4000 + n,
            monitor_port: 8000 + n,
            cluster_port: 6000 + n,
            store: PathBuf::from(format!("/tmp/n{n}")),
        }
    }

    #[test]
    fn a_member_routes_to_every_other_member() {
        let cluster = [node(1), node(2), node(3)];
        let args = cluster[1].cluster_args("rewards", &cluster);
        let after = |flag: &str| args.iter().position(|a| a == flag).map(|i| args[i + 1].clone());
        assert_eq!(after("--routes").unwrap(), "nats://127.0.0.1:6001,nats://127.0.0.1:6003");
        assert_eq!(after("--cluster").unwrap(), "nats://127.0.0.1:6002");
        assert_eq!(after("--server_name").unwrap(), "n2");
        assert_eq!(after("-sd").unwrap(), "/tmp/n2");
        assert!(args.contains(&"-js".to_owned()));
    }

    #[test]
    fn clients_get_every_node() {
        assert_eq!(urls(&[node(1), node(2)]), "nats://127.0.0.1:4001,nats://127.0.0.1:4002");
    }
}
