//! The hexagon's rules, checked on the sources and the lock file: every
//! service's domain is pure (it names no database, broker, RPC framework,
//! generated contract or platform), no use case names a diesel type, and
//! this crate, which the domains stand on, depends on no IO.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Crates a domain must not name: the IO a use case reaches through ports,
/// and the contracts adapters translate from.
const NOT_IN_A_DOMAIN: &[&str] =
    &["diesel", "async_nats", "tonic", "prost", "prost_types", "api", "platform", "tokio", "opentelemetry"];

/// What a use case must not name: diesel, and the platform's diesel-facing types.
const DIESEL_TYPES: &[&str] = &["diesel", "DbConnection", "DbError", "DbTx", "Database"];

/// Packages this crate must never depend on, directly or not.
const IO_PACKAGES: &[&str] = &[
    "diesel",
    "async-nats",
    "tonic",
    "prost",
    "tokio",
    "mio",
    "hyper",
    "h2",
    "opentelemetry",
    "libsqlite3-sys",
    "pq-sys",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every service's crate directory.
fn services() -> Vec<PathBuf> {
    let mut services: Vec<PathBuf> = fs::read_dir(repo().join("services"))
        .expect("services/ is readable")
        .map(|entry| entry.expect("services/ lists").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    services.sort();
    services
}

/// `module.rs` and every file under `module/`, those that exist.
fn module_files(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.expect("a module directory lists").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The names among `names` that `source` names outside `//` comments: a
/// crate when used as the head of a path (`diesel::…`; `crate::api::…` is
/// a module of the service, not the crate), a type (capitalised) wherever
/// it stands as a word.
fn named<'n>(source: &str, names: &[&'n str]) -> BTreeSet<&'n str> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for &name in names {
            let is_type = name.starts_with(char::is_uppercase);
            let mut from = 0;
            while let Some(at) = code[from..].find(name) {
                let (start, end) = (from + at, from + at + name.len());
                from = end;
                let (before, after) = (&code[..start], &code[end..]);
                let is_word = !before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    && !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
                let heads_a_path = !before.ends_with("::") && after.starts_with("::");
                if is_word && (is_type || heads_a_path) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_rule_finds_crates_used_as_paths_and_types_named_but_not_comments() {
    assert_eq!(named("use diesel::prelude::*;", DIESEL_TYPES), BTreeSet::from(["diesel"]));
    assert_eq!(named("fn f(c: &mut DbConnection) {}", DIESEL_TYPES), BTreeSet::from(["DbConnection"]));
    assert_eq!(named("use platform::kernel::Points;", NOT_IN_A_DOMAIN), BTreeSet::from(["platform"]));
    assert_eq!(named("    let s = tonic::Status::ok(\"\");", NOT_IN_A_DOMAIN), BTreeSet::from(["tonic"]));
    assert!(named("// the diesel store behind the port", DIESEL_TYPES).is_empty());
    assert!(named("/// the player API, over tonic", NOT_IN_A_DOMAIN).is_empty());
    assert!(named("use crate::api::Thing; let apis = 1;", NOT_IN_A_DOMAIN).is_empty());
    assert!(named("struct DatabaseUrl;", DIESEL_TYPES).is_empty());
    assert_eq!(named("Err(platform::db::DbError::Panicked)", DIESEL_TYPES), BTreeSet::from(["DbError"]));
}

#[test]
fn every_domain_is_free_of_io_contracts_and_the_platform() {
    let mut offences = Vec::new();
    let mut domains = 0;
    for service in services() {
        for file in module_files(&service.join("src"), "domain") {
            domains += 1;
            let found = named(&read(&file), NOT_IN_A_DOMAIN);
            if !found.is_empty() {
                offences.push(format!("{} names {found:?}", file.display()));
            }
        }
    }
    assert!(domains >= 6, "found only {domains} domain files: has the layout changed?");
    assert!(offences.is_empty(), "domains must stay pure:\n{}", offences.join("\n"));
}

#[test]
fn no_use_case_names_a_diesel_type() {
    let mut offences = Vec::new();
    for service in services() {
        for file in module_files(&service.join("src"), "app") {
            let found = named(&read(&file), DIESEL_TYPES);
            if !found.is_empty() {
                offences.push(format!("{} names {found:?}: use the service's store port", file.display()));
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}

/// The packages `package` depends on, transitively, as `Cargo.lock` records them.
fn dependencies_in_lock(package: &str) -> BTreeSet<String> {
    let lock = read(&repo().join("Cargo.lock"));
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in block.lines() {
            let line = line.trim();
            if let Some(value) = line.strip_prefix("name = ") {
                name = Some(value.trim_matches('"').to_owned());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line == "]" {
                in_deps = false;
            } else if in_deps {
                // `"name"` or `"name version"` when several versions are locked.
                let dep = line.trim_end_matches(',').trim_matches('"');
                deps.push(dep.split(' ').next().unwrap_or(dep).to_owned());
            }
        }
        if let Some(name) = name {
            graph.entry(name).or_default().extend(deps);
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn the_kernel_depends_on_no_io() {
    let deps = dependencies_in_lock("kernel");
    assert!(deps.contains("uuid"), "the lock file does not list the kernel's dependencies: {deps:?}");
    let io: Vec<_> = deps.iter().filter(|d| IO_PACKAGES.iter().any(|io| d.starts_with(io))).collect();
    assert!(io.is_empty(), "the kernel must stay free of IO, but depends on {io:?}");
    assert!(dependencies_in_lock("platform").contains("diesel"), "the lock-file reading finds IO where it is");
}
