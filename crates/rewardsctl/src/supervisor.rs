//! Keeps one OS process running: restarts it with back-off when it dies,
//! logs every restart, stops it with SIGTERM (then SIGKILL) on request,
//! kills it with SIGKILL when the chaos test says so, and replaces it
//! gracefully (SIGTERM, drain, start again) for a rolling update.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use platform::CancellationToken;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

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
    /// Whether restarts are announced on the runner's stderr too; they are
    /// always written to the process's own log.
    pub announce: bool,
    /// The user it runs as, when not the runner's (PostgreSQL refuses root).
    pub owner: Option<localinfra::postgres::Owner>,
}

/// How long a stopping process may drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// A process that ran this long is healthy again: its back-off resets.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// A process killed on purpose comes back after this, without back-off:
/// the kill says nothing about its health.
pub const RESTART_AFTER_KILL: Duration = Duration::from_millis(250);

impl ProcessSpec {
    fn spawn(&self) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let stderr = log.try_clone()?;
        let mut command = Command::new(&self.program);
        if let Some(owner) = self.owner {
            command.uid(owner.uid).gid(owner.gid);
        }
        command
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

    /// Tells what happened, in the process's log (with the time, as the
    /// process's own lines have it) and, when announced, on stderr.
    fn report(&self, message: &str) {
        if self.announce {
            eprintln!("[runner] {message}");
        }
        if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = writeln!(log, "{} [runner] {message}", clock());
        }
    }
}

/// What a supervisor is asked to do to its running process; the reply says
/// whether a running process was there to act on.
#[derive(Debug)]
enum Request {
    /// SIGKILL, as a crash would; restarted after the given time.
    Kill(oneshot::Sender<bool>, Duration),
    /// SIGTERM and wait for the drain (SIGKILL after the grace period), then
    /// start it again at once: one step of a rolling update.
    Replace(oneshot::Sender<bool>),
}

impl Request {
    fn answer(self, done: bool) {
        let (Self::Kill(reply, _) | Self::Replace(reply)) = self;
        let _ = reply.send(done);
    }
}

/// A supervised process, seen from outside: it can be killed or replaced,
/// and tells how often it was started.
#[derive(Debug, Clone)]
pub struct ProcessHandle {
    name: String,
    requests: mpsc::UnboundedSender<Request>,
    starts: Arc<AtomicU64>,
    /// The running process's id; 0 while it is down. The benchmarks read
    /// its memory and CPU time from `/proc`.
    pid: Arc<AtomicU32>,
}

impl ProcessHandle {
    /// The process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kills the process with SIGKILL, as a crash would; its supervisor
    /// restarts it. Returns whether a running process was killed (not when
    /// it was already down, waiting to restart).
    pub async fn kill(&self) -> bool {
        self.kill_for(RESTART_AFTER_KILL).await
    }

    /// Kills the process with SIGKILL and keeps it down for `down` before
    /// its supervisor starts it again: an outage, not just a crash.
    pub async fn kill_for(&self, down: Duration) -> bool {
        self.ask(|reply| Request::Kill(reply, down)).await
    }

    /// Stops the process as an orchestrator would (SIGTERM, so that it
    /// drains) and starts a new one as soon as it has exited. Returns
    /// whether a running process was replaced; the new one may not serve yet.
    pub async fn replace(&self) -> bool {
        self.ask(Request::Replace).await
    }

    async fn ask(&self, request: impl FnOnce(oneshot::Sender<bool>) -> Request) -> bool {
        let (reply, done) = oneshot::channel();
        if self.requests.send(request(reply)).is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// How many times the process was started (restarts + 1).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::SeqCst)
    }

    /// The OS process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::SeqCst)).filter(|pid| *pid != 0)
    }
}

/// Prepares the supervision of `spec`: the handle, and the future that runs
/// it until `stop` is cancelled, restarting it whenever it exits.
pub fn supervised(
    spec: ProcessSpec,
    stop: CancellationToken,
) -> (ProcessHandle, impl Future<Output = ()> + Send + 'static) {
    let (sender, requests) = mpsc::unbounded_channel();
    let starts = Arc::new(AtomicU64::new(0));
    let pid = Arc::new(AtomicU32::new(0));
    let handle =
        ProcessHandle { name: spec.name.clone(), requests: sender, starts: Arc::clone(&starts), pid: Arc::clone(&pid) };
    (handle, supervise(spec, stop, requests, starts, pid))
}

async fn supervise(
    spec: ProcessSpec,
    stop: CancellationToken,
    mut requests: mpsc::UnboundedReceiver<Request>,
    starts: Arc<AtomicU64>,
    pid: Arc<AtomicU32>,
) {
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let mut child = match spec.spawn() {
            Ok(child) => child,
            Err(error) => {
                spec.report(&format!("{error:#}"));
                eprintln!("[runner] {error:#}");
                return;
            }
        };
        starts.fetch_add(1, Ordering::SeqCst);
        pid.store(child.id().unwrap_or_default(), Ordering::SeqCst);
        let delay = tokio::select! {
            status = child.wait() => {
                pid.store(0, Ordering::SeqCst);
                if stop.is_cancelled() {
                    return;
                }
                if started.elapsed() > STABLE_AFTER {
                    failures = 0;
                }
                failures = failures.saturating_add(1);
                let delay = platform::backoff(failures, Duration::from_millis(500), Duration::from_secs(30));
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                spec.report(&format!(
                    "{} exited ({status}); restart #{failures} in {:.1}s (log: {})",
                    spec.name,
                    delay.as_secs_f64(),
                    spec.log.display()
                ));
                delay
            }
            Some(request) = requests.recv() => match request {
                Request::Kill(reply, down) => {
                    // The whole process group, as a crashed container goes: a
                    // postmaster's backends die with it instead of holding its
                    // shared memory and delaying the restart.
                    if let Some(pid) = child.id() {
                        let group = format!("-{pid}");
                        let _ = Command::new("kill").args(["-KILL", "--", &group]).status().await;
                    }
                    let killed = child.start_kill().is_ok();
                    let _ = child.wait().await;
                    pid.store(0, Ordering::SeqCst);
                    spec.report(&format!(
                        "{} killed with SIGKILL on request; restarting in {:.1}s",
                        spec.name,
                        down.as_secs_f64()
                    ));
                    let _ = reply.send(killed);
                    down
                }
                Request::Replace(reply) => {
                    spec.report(&format!("{} stopping (SIGTERM) to be replaced", spec.name));
                    terminate(&spec.name, &mut child).await;
                    pid.store(0, Ordering::SeqCst);
                    spec.report(&format!("{} stopped; starting its replacement", spec.name));
                    let _ = reply.send(true);
                    Duration::ZERO
                }
            },
            () = stop.cancelled() => {
                terminate(&spec.name, &mut child).await;
                return;
            }
        };
        let resume = tokio::time::sleep(delay);
        tokio::pin!(resume);
        loop {
            tokio::select! {
                () = &mut resume => break,
                // Nothing runs to be killed or replaced while it waits to restart.
                Some(request) = requests.recv() => request.answer(false),
                () = stop.cancelled() => return,
            }
        }
    }
}

/// The UTC time of day, `HH:MM:SS.mmmZ`.
fn clock() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (now.as_secs() % 86_400, now.subsec_millis());
    format!("{:02}:{:02}:{:02}.{millis:03}Z", secs / 3600, secs % 3600 / 60, secs % 60)
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
