//! A PostgreSQL instance of one's own, from Debian's server binaries
//! (`initdb`, `postgres`): its data in a directory of the caller's, on a
//! port of the caller's, so that the caller may kill it and start it again
//! as a crash and a recovery would.
//!
//! PostgreSQL refuses to run as root; when the caller is root, the instance
//! runs as the `postgres` system user that Debian's package creates (the
//! caller applies [`Owner`] to the processes it spawns).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The server binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl Binaries {
    /// Finds them: `$PG_BINDIR`, then the newest `/usr/lib/postgresql/*/bin`
    /// (Debian's layout, which keeps them off `PATH`), then `PATH`.
    pub fn find() -> Option<Self> {
        let in_dir = |dir: &Path| {
            let binaries = Self { initdb: dir.join("initdb"), postgres: dir.join("postgres") };
            (binaries.initdb.exists() && binaries.postgres.exists()).then_some(binaries)
        };
        if let Some(dir) = std::env::var_os("PG_BINDIR") {
            return in_dir(Path::new(&dir));
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
            .collect();
        versions.sort();
        if let Some(found) = versions.iter().rev().find_map(|(_, dir)| in_dir(dir)) {
            return Some(found);
        }
        std::env::split_paths(&std::env::var_os("PATH")?).find_map(|dir| in_dir(&dir))
    }

    /// What to tell a user who has none.
    pub const MISSING: &'static str = "PostgreSQL's server binaries (initdb, postgres) are not installed: \
         install Debian's `postgresql` package (`./dev` does when the recipe needs them) or set PG_BINDIR";
}

/// The user the instance's processes run as, when it is not the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// `None` when the caller may run PostgreSQL itself; for root, the
    /// `postgres` system user.
    ///
    /// # Errors
    /// When the caller is root and there is no `postgres` user.
    pub fn needed() -> anyhow::Result<Option<Self>> {
        let status = std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
        let effective_uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .context("no Uid line in /proc/self/status")?;
        if effective_uid != "0" {
            return Ok(None);
        }
        let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
        let owner = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| Some(Self { uid: fields.get(2)?.parse().ok()?, gid: fields.get(3)?.parse().ok()? }))
                .flatten()
        });
        owner.map(Some).context(
            "PostgreSQL refuses to run as root and there is no `postgres` user to run it as \
             (Debian's postgresql package creates it)",
        )
    }

    /// Runs `command` as this user.
    pub fn apply(self, command: &mut Command) {
        use std::os::unix::process::CommandExt as _;
        command.uid(self.uid).gid(self.gid);
    }

    /// Makes `path` (not its contents) this user's.
    ///
    /// # Errors
    /// When the ownership cannot be changed.
    pub fn own(self, path: &Path) -> anyhow::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .with_context(|| format!("cannot give {} to uid {}", path.display(), self.uid))
    }
}

/// One instance: its data directory and port.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Holds `data/` (the cluster) and `initdb.log`; the instance's owner
    /// must be able to write it.
    pub dir: PathBuf,
    pub port: u16,
}

impl Instance {
    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates the cluster unless it exists: superuser `postgres`, trust
    /// authentication on loopback (the instance listens nowhere else).
    ///
    /// # Errors
    /// When the directory cannot be prepared or initdb fails (its output is
    /// in the error).
    pub fn init(&self, binaries: &Binaries, owner: Option<Owner>) -> anyhow::Result<()> {
        if self.data_dir().join("PG_VERSION").exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        if let Some(owner) = owner {
            owner.own(&self.dir)?;
        }
        let mut command = Command::new(&binaries.initdb);
        command.args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions", "-D"]).arg(self.data_dir());
        if let Some(owner) = owner {
            owner.apply(&mut command);
        }
        let output = command.output().with_context(|| format!("cannot run {}", binaries.initdb.display()))?;
        if !output.status.success() {
            bail!(
                "initdb of {} failed: {}{}",
                self.data_dir().display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// The postmaster's arguments: loopback TCP only (no Unix socket, so no
    /// directory outside the instance's is needed), and room for every
    /// replica's pool.
    pub fn server_args(&self) -> Vec<String> {
        [
            "-D",
            &self.data_dir().display().to_string(),
            "-p",
            &self.port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=400",
            "-c",
            "shared_buffers=128MB",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The URL of `database` on the instance.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Waits until the instance accepts a connection to `postgres`.
    ///
    /// # Errors
    /// When it does not within `within`, with the last refusal.
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let url = format!("{}?connect_timeout=2", self.url("postgres"));
        let deadline = Instant::now() + within;
        loop {
            let attempt = url.clone();
            let connected = tokio::task::spawn_blocking(move || {
                use diesel::Connection as _;
                diesel::PgConnection::establish(&attempt).map(drop)
            })
            .await?;
            match connected {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() > deadline => {
                    bail!("PostgreSQL on port {} not ready after {within:?}: {error}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Creates each of `databases` that does not exist yet.
    ///
    /// # Errors
    /// When the instance refuses.
    pub async fn create_databases(&self, databases: &[&str]) -> anyhow::Result<()> {
        let url = self.url("postgres");
        let databases: Vec<String> = databases.iter().map(|d| (*d).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            use diesel::{Connection as _, RunQueryDsl as _};
            let mut conn = diesel::PgConnection::establish(&url)?;
            for database in databases {
                let exists = diesel::sql_query(format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"))
                    .execute(&mut conn)?;
                if exists == 0 {
                    diesel::sql_query(format!("CREATE DATABASE \"{database}\"")).execute(&mut conn)?;
                }
            }
            anyhow::Ok(())
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_listens_on_loopback_only_on_its_own_port() {
        let instance = Instance { dir: "/tmp/pg".into(), port: 25432 };
        let args = instance.server_args().join(" ");
        assert!(args.starts_with("-D /tmp/pg/data -p 25432"));
        assert!(args.contains("listen_addresses=127.0.0.1") && args.contains("unix_socket_directories="));
        assert_eq!(instance.url("mission"), "postgres://postgres@127.0.0.1:25432/mission");
    }
}
