//! nginx as the peer proxy the gateway is measured beside: Debian's
//! `nginx` (`./dev bench` installs it when missing), `grpc_pass` to the same
//! service the gateway proxies, no authentication, its own configuration
//! and logs in the run's directory, as many workers as the machine has
//! cores.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    child: tokio::process::Child,
    /// Where it listens, `http://127.0.0.1:<port>`.
    pub url: String,
    /// `nginx/1.22.1`.
    pub version: String,
}

/// The nginx binary: on the PATH, or where Debian puts it.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// Whether `version` (`nginx/1.25.1`) wants `http2 on;` rather than
/// `listen … http2` (deprecated from 1.25.1).
pub fn http2_directive(version: &str) -> bool {
    let numbers: Vec<u32> =
        version.rsplit('/').next().unwrap_or_default().split('.').map_while(|part| part.trim().parse().ok()).collect();
    numbers.as_slice() >= [1, 25, 1].as_slice()
}

/// The configuration: `grpc_pass` from 127.0.0.1:`port` to `upstream`
/// (`host:port`), keep-alive on both sides, no access log, every path
/// under `dir`.
pub fn config(dir: &Path, port: u16, upstream: &str, workers: usize, http2_on: bool) -> String {
    let dir = dir.display();
    let (listen, http2) = if http2_on { ("", "\n        http2 on;") } else { (" http2", "") };
    format!(
        "daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # The load keeps its connections for the whole run.
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream service {{
        server {upstream};
        keepalive 64;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port}{listen};{http2}
        location / {{
            grpc_pass grpc://service;
        }}
    }}
}}
"
    )
}

impl Nginx {
    /// Starts nginx in `dir`, proxying to `upstream_url` (`http://host:port`),
    /// and waits until it accepts connections.
    ///
    /// # Errors
    /// When nginx is missing or does not start.
    pub async fn start(dir: &Path, upstream_url: &str) -> anyhow::Result<Self> {
        let Some(nginx) = binary() else {
            bail!("nginx is missing: `./dev bench` installs Debian's package (apt-get install -y nginx)");
        };
        let version = std::process::Command::new(&nginx)
            .arg("-v")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stderr).trim().rsplit(' ').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        std::fs::create_dir_all(dir)?;
        let dir = std::path::absolute(dir)?;
        let port = localinfra::ports::RUNNER.take()?;
        let upstream = upstream_url.trim_start_matches("http://").trim_end_matches('/');
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, port, upstream, workers, http2_directive(&version)))?;
        let child = tokio::process::Command::new(&nginx)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log"))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", nginx.display()))?;
        let mut nginx = Self { child, url: format!("http://127.0.0.1:{port}"), version };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                bail!("nginx exited ({status}); see {}", dir.join("error.log").display());
            }
            if Instant::now() > deadline {
                nginx.stop().await;
                bail!("nginx did not listen within 10 s; see {}", dir.join("error.log").display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(nginx)
    }

    /// Stops the master, which stops its workers.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_1_25_1_say_http2_on() {
        assert!(!http2_directive("nginx/1.22.1"));
        assert!(!http2_directive("nginx/1.25.0"));
        assert!(http2_directive("nginx/1.25.1"));
        assert!(http2_directive("nginx/1.26.3"));
        assert!(http2_directive("nginx/2.0"));
        assert!(!http2_directive(""));
    }

    #[test]
    fn the_configuration_passes_grpc_to_the_service_and_keeps_everything_in_the_run() {
        let text = config(Path::new("/run/x"), 8443, "127.0.0.1:9000", 2, false);
        assert!(text.contains("listen 127.0.0.1:8443 http2;"), "{text}");
        assert!(text.contains("server 127.0.0.1:9000;"), "{text}");
        assert!(text.contains("grpc_pass grpc://service;"), "{text}");
        assert!(text.contains("pid /run/x/nginx.pid;"), "{text}");
        assert!(text.contains("worker_processes 2;"), "{text}");
        let newer = config(Path::new("/run/x"), 8443, "127.0.0.1:9000", 2, true);
        assert!(newer.contains("listen 127.0.0.1:8443;") && newer.contains("http2 on;"), "{newer}");
    }
}
