//! A real Prometheus beside the local mesh (`rewardsctl up --prometheus`,
//! and the dashboard test): Debian's `prometheus` binary, supervised like
//! every other process, scraping the `/metrics` of every process of the mesh
//! (each replica of each service, and the gateway) and itself.
//!
//! Every target carries the labels a Kubernetes scrape gives the same pod —
//! `namespace`, `pod`, `app` — so the chart's Grafana dashboard and alerts
//! run unchanged against it (namespace [`NAMESPACE`]). nats-server is not a
//! target: it serves its monitoring as JSON (`/varz`, `/jsz`), not in
//! Prometheus's format; its state reaches Prometheus through the services'
//! consumer-lag and outbox metrics.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use platform::CancellationToken;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;

use crate::mesh::Layout;
use crate::supervisor::{ProcessSpec, supervised};

/// The `namespace` label of every local target (the dashboard's `$namespace`).
pub const NAMESPACE: &str = "local";

/// The port `rewardsctl up --prometheus` serves Prometheus on.
pub const DEFAULT_PORT: u16 = 9090;

/// A running Prometheus; dropping it stops it.
#[derive(Debug)]
pub struct Prometheus {
    port: u16,
    /// Where its configuration, data and log are.
    dir: PathBuf,
    stop: CancellationToken,
    supervision: JoinSet<()>,
}

/// Finds the prometheus binary: `$PROMETHEUS_BIN`, then `PATH` (Debian's
/// package installs `/usr/bin/prometheus`; `./dev up --prometheus` installs it).
pub fn find_binary() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("PROMETHEUS_BIN") {
        return Some(bin.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|candidate| candidate.exists())
}

/// The scrape configuration of `layout`: one job for the mesh's processes,
/// one for Prometheus itself, every `interval`.
pub fn config(layout: &Layout, port: u16, interval: Duration) -> String {
    let interval = format!("{}ms", interval.as_millis().max(1));
    let mut text = format!(
        "# Written by rewardsctl: every process of the local mesh, labelled as in Kubernetes.\n\
         global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\n\
         scrape_configs:\n  - job_name: game-rewards\n    metrics_path: /metrics\n    static_configs:\n"
    );
    for member in &layout.members {
        text.push_str(&format!(
            "      - targets: ['127.0.0.1:{port}']\n        labels: {{namespace: {NAMESPACE}, pod: {pod}, app: {app}}}\n",
            port = member.metrics_port,
            pod = member.name,
            app = member.service.name,
        ));
    }
    text.push_str(&format!(
        "  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        \
         labels: {{namespace: {NAMESPACE}, pod: prometheus, app: prometheus}}\n"
    ));
    text
}

impl Prometheus {
    /// Writes the configuration under `run_dir/prometheus`, starts Prometheus
    /// supervised on 127.0.0.1:`port` and waits until it is ready.
    ///
    /// # Errors
    /// When the binary is missing or Prometheus does not become ready.
    pub async fn start(
        layout: &Layout,
        run_dir: &Path,
        port: u16,
        interval: Duration,
        announce: bool,
    ) -> anyhow::Result<Self> {
        let program = find_binary().context(
            "prometheus not found: `./dev up --prometheus` installs Debian's `prometheus` package (or set PROMETHEUS_BIN)",
        )?;
        let dir = run_dir.join("prometheus");
        std::fs::create_dir_all(dir.join("data")).with_context(|| format!("cannot create {}", dir.display()))?;
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config(layout, port, interval))?;
        let spec = ProcessSpec {
            name: "prometheus".into(),
            program,
            args: vec![
                format!("--config.file={}", config_file.display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--storage.tsdb.retention.time=1d".into(),
            ],
            env: Vec::new(),
            log: dir.join("prometheus.log"),
            announce,
            owner: None,
        };
        let stop = CancellationToken::new();
        let (_handle, supervision) = supervised(spec, stop.clone());
        let mut tasks = JoinSet::new();
        tasks.spawn(supervision);
        let prometheus = Self { port, dir, stop, supervision: tasks };
        prometheus.wait_until_ready(Duration::from_secs(30)).await?;
        Ok(prometheus)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its directory (configuration, data, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn wait_until_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok((200, _)) = self.get("/-/ready").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Prometheus not ready on port {} after {}s (see {})",
                    self.port,
                    within.as_secs(),
                    self.dir.join("prometheus.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Evaluates `promql` now (`/api/v1/query`) and returns the JSON answer's
    /// `data` (Prometheus's `resultType` and `result`).
    ///
    /// # Errors
    /// When Prometheus does not answer or the query fails (the message is
    /// Prometheus's own: a parse error, an unknown function…).
    pub async fn query(&self, promql: &str) -> anyhow::Result<serde_json::Value> {
        self.api(&format!("/api/v1/query?query={}", percent_encode(promql))).await
    }

    /// The values of label `name` over the series `matcher` selects
    /// (`/api/v1/label/<name>/values`, what Grafana's `label_values()` asks).
    ///
    /// # Errors
    /// As [`Prometheus::query`].
    pub async fn label_values(&self, name: &str, matcher: &str) -> anyhow::Result<Vec<String>> {
        let data = self.api(&format!("/api/v1/label/{name}/values?match[]={}", percent_encode(matcher))).await?;
        Ok(data
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    async fn api(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let (status, body) = self.get(path).await?;
        let answer: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("HTTP {status} from Prometheus: {body}"))?;
        if answer["status"] != "success" {
            bail!("{}: {}", answer["errorType"].as_str().unwrap_or("error"), answer["error"].as_str().unwrap_or(&body));
        }
        Ok(answer["data"].clone())
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            anyhow::Ok(response)
        };
        let response =
            tokio::time::timeout(Duration::from_secs(10), exchange).await.context("Prometheus timed out")??;
        let (head, body) = response.split_once("\r\n\r\n").context("not an HTTP response")?;
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status")?;
        Ok((status, body.to_owned()))
    }

    /// Stops Prometheus (SIGTERM, then SIGKILL) and waits until it is gone.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.supervision.join_next().await.is_some() {}
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop.cancel();
        self.supervision.abort_all();
    }
}

/// Tells where Prometheus is and what it scrapes.
pub fn print_started(prometheus: &Prometheus, layout: &Layout) {
    println!(
        "\n  prometheus                       {}  scraping {} processes every 5 s (namespace=\"{NAMESPACE}\")",
        prometheus.url(),
        layout.members.len()
    );
    println!(
        "  targets: {}/targets; the chart's dashboard queries work with $namespace = {NAMESPACE}; data in {}",
        prometheus.url(),
        prometheus.dir().display()
    );
}

/// `text` as a URL query value: unreserved characters stay, every other
/// byte becomes `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::Replicas;

    #[test]
    fn every_process_of_the_mesh_is_a_target_labelled_as_a_pod() {
        let layout = Layout::well_known(crate::mesh::Shape::Single, &Replicas::parse("reward=2").unwrap_or_default());
        let text = config(&layout, 9090, Duration::from_secs(1));
        for member in &layout.members {
            let target = format!("targets: ['127.0.0.1:{}']", member.metrics_port);
            assert!(text.contains(&target), "{} is not scraped:\n{text}", member.name);
        }
        assert!(text.contains("labels: {namespace: local, pod: reward-2, app: reward}"), "{text}");
        assert!(text.contains("scrape_interval: 1000ms"), "{text}");
        assert!(text.contains("targets: ['127.0.0.1:9090']"), "Prometheus scrapes itself:\n{text}");
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(percent_encode("sum(rate(x{a=\"b\"}[1m]))"), "sum%28rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29%29");
        assert_eq!(percent_encode("a b+c"), "a%20b%2Bc");
    }
}
