//! The README's table of environment variables is complete and true: every
//! variable the services, the gateway and the platform read is in it, and
//! every variable in it is read (by our code, or by the OpenTelemetry SDK).
//!
//! Variables are found where code reads them: the literal names passed to
//! `platform::config::Env`'s methods and to `std::env::var`, the
//! dependency-prefixed names of `ResilienceConfig::read` (the circuit
//! breaker's and retries'), and the catalogue's `*_URL` variables.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Calls whose first argument is the name of a variable read.
const READERS: &[&str] = &[".or(", ".optional(", ".millis(", ".above_zero(", ".above_zero_millis(", "std::env::var("];

/// Variables in the table that the OpenTelemetry SDK reads (telemetry.rs
/// only asks whether the endpoints are set, to turn export on).
const READ_BY_THE_SDK: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a source directory lists").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The variable names passed as a string literal right after each `call`.
fn names_after(source: &str, call: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices(call) {
        let rest = source[at + call.len()..].trim_start();
        let Some(quoted) = rest.strip_prefix('"') else { continue };
        let name: String = quoted.chars().take_while(|c| *c != '"').collect();
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            names.push(name);
        }
    }
    names
}

/// Every variable the services, the gateway and the platform read.
fn variables_read() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&repo().join("crates/platform/src"), &mut files);
    for service in fs::read_dir(repo().join("services")).expect("services/ lists") {
        let src = service.expect("services/ lists").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    // Unit tests read variables of their own making.
    let sources: Vec<String> = files
        .iter()
        .map(|f| fs::read_to_string(f).expect("a source reads"))
        .map(|source| source.split("#[cfg(test)]\nmod tests").next().unwrap_or_default().to_owned())
        .collect();
    let mut read = BTreeSet::new();
    for source in &sources {
        for call in READERS {
            read.extend(names_after(source, call));
        }
    }
    // `ResilienceConfig::read(env, "GIFT", …)` reads `GIFT_` + each `var("…")` of resilience.rs.
    let suffixes = names_after(
        &fs::read_to_string(repo().join("crates/platform/src/resilience.rs")).expect("resilience.rs reads"),
        "&var(",
    );
    assert!(suffixes.len() >= 10, "the resilience settings are no longer read as `&var(\"…\")`: {suffixes:?}");
    for source in &sources {
        for (at, _) in source.match_indices("ResilienceConfig::read(") {
            let after_env = source[at..].split_once(',').map_or("", |(_, rest)| rest).trim_start();
            let prefix = after_env
                .strip_prefix('"')
                .and_then(|quoted| quoted.split_once('"'))
                .map(|(prefix, _)| prefix)
                .expect("ResilienceConfig::read names its prefix as a literal");
            read.extend(suffixes.iter().map(|suffix| format!("{prefix}_{suffix}")));
        }
    }
    read.extend(api::catalogue::SERVICES.iter().map(|s| s.url_variable.to_owned()));
    read
}

/// The variables named in the first column of the README's table.
fn variables_in_readme() -> BTreeSet<String> {
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md reads");
    let section = readme.split("\n## Configuration\n").nth(1).expect("README.md has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn every_variable_read_in_code_is_in_the_readme_table() {
    let read = variables_read();
    assert!(
        read.contains("GRPC_ADDR") && read.contains("GIFT_BREAKER_COOL_DOWN_MS"),
        "the scan finds nothing: {read:?}"
    );
    let listed = variables_in_readme();
    let missing: Vec<_> = read.difference(&listed).collect();
    assert!(missing.is_empty(), "read in code but missing from README.md's table (## Configuration): {missing:?}");
}

#[test]
fn every_variable_in_the_readme_table_is_read() {
    let mut read = variables_read();
    read.extend(READ_BY_THE_SDK.iter().map(|name| (*name).to_owned()));
    let stale: Vec<_> = variables_in_readme().into_iter().filter(|name| !read.contains(name)).collect();
    assert!(stale.is_empty(), "in README.md's table but read nowhere: {stale:?}");
}

#[test]
fn the_scan_finds_names_passed_to_the_readers() {
    let source =
        "env.above_zero(\n    \"GATEWAY_MAX_CONCURRENT_STREAMS\",\n    1,\n); env.or(name, 1); x.or(\"lower\")";
    assert_eq!(names_after(source, ".above_zero("), ["GATEWAY_MAX_CONCURRENT_STREAMS"]);
    assert!(names_after(source, ".or(").is_empty());
}
