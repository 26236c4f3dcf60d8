//! A PostgreSQL instance of a test's own, which the test kills (SIGKILL of
//! the postmaster and its backends, as a crash of its host) and restarts on
//! the same port and data.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use localinfra::postgres::{Binaries, Instance, Owner};

/// A private PostgreSQL server on a free port; killed on drop.
#[derive(Debug)]
pub struct PostgresServer {
    // Declared before `dir`, so the server is gone before its data is removed.
    child: Option<Child>,
    instance: Instance,
    binaries: Binaries,
    owner: Option<Owner>,
    _dir: tempfile::TempDir,
}

impl PostgresServer {
    /// Creates a cluster in a fresh directory and starts it; `None` when the
    /// server binaries are missing, so the test skips.
    ///
    /// # Errors
    /// When it cannot be started, or when the binaries are missing and
    /// `REQUIRE_POSTGRES=1` (as in CI), so that nothing is skipped quietly.
    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some(binaries) = Binaries::find() else {
            if std::env::var("REQUIRE_POSTGRES").as_deref() == Ok("1") {
                bail!("REQUIRE_POSTGRES=1 but {}", Binaries::MISSING);
            }
            eprintln!("{}; skipping the test that needs a PostgreSQL server of its own", Binaries::MISSING);
            return Ok(None);
        };
        let dir = tempfile::Builder::new().prefix("postgres-test-").tempdir()?;
        let owner = Owner::needed()?;
        let instance = Instance { dir: dir.path().join("cluster"), port: localinfra::ports::TESTS.take()? };
        if let Some(owner) = owner {
            // A temporary directory is its creator's alone; the server's user must reach its data.
            owner.own(dir.path())?;
        }
        let (init_instance, init_binaries) = (instance.clone(), binaries.clone());
        tokio::task::spawn_blocking(move || init_instance.init(&init_binaries, owner)).await??;
        let mut server = Self { child: None, instance, binaries, owner, _dir: dir };
        server.restart().await?;
        Ok(Some(server))
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        self.instance.url(database)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.instance.port
    }

    /// Creates `database` unless it exists.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn create_database(&self, database: &str) -> anyhow::Result<()> {
        self.instance.create_databases(&[database]).await
    }

    /// Kills the server at once (SIGKILL of the postmaster and every
    /// backend), as a crash of its host would: clients see their connections
    /// reset and new ones refused. Killing the postmaster alone would leave
    /// each backend to notice on its own, answering a query or two meanwhile
    /// on a busy machine.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The server runs in a process group of its own (see `spawn`).
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the postmaster runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the server again on the same port and data (crash recovery
    /// runs first) and waits until it accepts connections.
    ///
    /// # Errors
    /// When it does not within 30 seconds.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.child.is_none() {
                self.spawn()?;
            }
            let ready = self.instance.wait_ready(Duration::from_millis(500)).await;
            if ready.is_ok() {
                return Ok(());
            }
            // A postmaster started while the killed one's backends still hold
            // its shared memory exits at once: start it again once they are gone.
            if let Some(child) = self.child.as_mut()
                && child.try_wait()?.is_some()
            {
                self.child = None;
            }
            if tokio::time::Instant::now() > deadline {
                return ready.with_context(|| format!("see {}", self.instance.dir.join("postgres.log").display()));
            }
        }
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.instance.dir.join("postgres.log"))
            .context("cannot open the server's log")?;
        let mut command = Command::new(&self.binaries.postgres);
        command.args(self.instance.server_args()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // Its own group, so that `kill` reaches the backends too.
        command.process_group(0);
        if let Some(owner) = self.owner {
            owner.apply(&mut command);
        }
        self.child = Some(command.spawn().context("cannot spawn postgres")?);
        Ok(())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}
