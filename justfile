# Recipes of the game rewards mesh. On a fresh machine, run them through
# ./dev (it installs just, nats-server, grpcurl and buf into .tools/ first).

set shell := ["bash", "-euo", "pipefail", "-c"]

export PATH := justfile_directory() / ".tools/bin" + ":" + env("PATH")

# List the recipes.
default:
    @just --list

# Run every test: unit, integration (real nats-server, SQLite, PostgreSQL when reachable).
test:
    cargo test --workspace --all-targets

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
