//! The build script of every crate that embeds diesel migrations (the
//! platform and each service name it as `build` in their Cargo.toml).
//!
//! `embed_migrations!` reads the migration directories at compile time, but
//! a proc macro cannot tell cargo which files it read: without this, adding
//! a migration leaves an incrementally built binary without it until some
//! source file changes. Cargo scans a directory named here for changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
