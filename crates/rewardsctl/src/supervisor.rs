//! Keeps one OS process running: restarts it with back-off when it dies,
//! logs every restart, and stops it with SIGTERM (then SIGKILL) on request.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use platform::CancellationToken;
use tokio::process::{Child, Command};

/// How to start one process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Shown in the runner's messages and names the log file.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// stdout and stderr go here, appended.
    pub log: PathBuf,
}

/// How long a stopping process may drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// A process that ran this long is healthy again: its back-off resets.
const STABLE_AFTER: Duration = Duration::from_secs(60);

impl ProcessSpec {
    fn spawn(&self) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let stderr = log.try_clone()?;
        Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            // Its own process group: Ctrl-C reaches the runner only, which
            // then stops every process in order instead of them all dying at once.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {} ({})", self.name, self.program.display()))
    }
}

/// Runs `spec` until `stop` is cancelled, restarting it whenever it exits.
pub async fn supervise(spec: ProcessSpec, stop: CancellationToken) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let mut child = match spec.spawn() {
            Ok(child) => child,
            Err(error) => {
                eprintln!("[runner] {error:#}");
                return;
            }
        };
        tokio::select! {
            status = child.wait() => {
                if stop.is_cancelled() {
                    return;
                }
                if started.elapsed() > STABLE_AFTER {
                    failures = 0;
                }
                failures = failures.saturating_add(1);
                let delay = platform::backoff(failures, Duration::from_millis(500), Duration::from_secs(30));
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                eprintln!(
                    "[runner] {} exited ({status}); restart #{failures} in {:.1}s (log: {})",
                    spec.name,
                    delay.as_secs_f64(),
                    spec.log.display()
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return,
                }
            }
            () = stop.cancelled() => {
                terminate(&spec.name, &mut child).await;
                return;
            }
        }
    }
}

/// SIGTERM, then SIGKILL if the process does not drain within the grace period.
async fn terminate(name: &str, child: &mut Child) {
    if let Some(pid) = child.id() {
        // `kill` rather than a libc call: this workspace forbids unsafe code.
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            eprintln!("[runner] {name} did not stop within {}s; killing it", STOP_GRACE.as_secs());
            let _ = child.kill().await;
        }
    }
}
