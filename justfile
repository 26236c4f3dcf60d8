# Recipes of the game rewards mesh. On a fresh machine, run them through
# ./dev (it installs just, nats-server, grpcurl and buf into .tools/ first).

set shell := ["bash", "-euo", "pipefail", "-c"]

export PATH := justfile_directory() / ".tools/bin" + ":" + env("PATH")

# List the recipes.
default:
    @just --list

# Run the whole system locally: nats-server and every service, supervised, with
# SQLite files under .run/. `just up --demo` also plays the player's story;
# `just up --prometheus` also runs a Prometheus on :9090 scraping every process
# (`./dev up --prometheus` installs Debian's prometheus first). `just up --cluster`
# runs the production shape instead: three clustered nats-servers, a PostgreSQL of
# its own (`./dev up --cluster` installs Debian's postgresql first) and two
# replicas of every service and of the gateway. Ctrl-C stops it.
up *args:
    npm --prefix web run --silent build:dev
    cargo build --workspace --bins
    "${CARGO_TARGET_DIR:-target}/debug/rewardsctl" up {{args}}

# Play the player's story against a running system (see `just up`).
demo *args:
    cargo build --workspace --bins
    "${CARGO_TARGET_DIR:-target}/debug/rewardsctl" demo {{args}}

# A bearer token for grpcurl, signed with the development key of `just up`:
# `TOKEN=$(just token player-1)`, or `just token --role operator`.
# The recipes that run a built rewardsctl build what `just up` builds, with the
# same command: `cargo build -p rewardsctl` alone would resolve the features of
# rewardsctl's dependencies without the rest of the workspace (bitflags without
# `std`, for one) and so rebuild diesel, platform and rewardsctl itself, about
# 30 s, instead of answering at once after `just up`.
token *args:
    @cargo build --quiet --workspace --bins
    @"${CARGO_TARGET_DIR:-target}/debug/rewardsctl" token {{args}}

# The chaos test: the whole system with 2 replicas of reward, wallet and mypage,
# 2,000 missions and 300 exchanges while random processes (and nats-server) are
# SIGKILLed; then every invariant is checked. `just chaos --cluster` runs it on the
# production shape, killing NATS leaders and stopping PostgreSQL too.
# `just chaos --help` lists the options.
chaos *args:
    cargo build --workspace --bins
    "${CARGO_TARGET_DIR:-target}/debug/rewardsctl" chaos {{args}}

# The exchange under pressure: gift slowed down beyond the wallet's deadline, then
# recovered, while players exchange and others achieve missions; watch the breaker
# open, players get "try again later" at once, and the breaker close again.
overload *args:
    cargo build --workspace --bins
    "${CARGO_TARGET_DIR:-target}/debug/rewardsctl" overload {{args}}

# The benchmarks, on a release build: this machine's baselines (bare tonic,
# JetStream, SQLite) and the bare chain (the chain's hops, commits, publishes
# and consumes in one process with no logic), then the whole system — five
# runs of 30 s at 1,000 missions/s (latency, CPU per mission by process), a
# search for the highest rate held with p99 <= 50 ms, the exchange healthy
# and with the breaker open, the gateway's cost — and issue 15's targets,
# each met or NOT MET beside the same run's baselines. Writes
# .run/bench-<time>/results.json. `just bench --quick` takes a few minutes
# (one 10 s run at 1,000/s: its latency is indicative); `just bench --cluster`
# adds the production shape beside the single box; `just bench compare`
# sets the newest run against the start of issue 15's work (the run the
# repository keeps in docs/bench/, or one `just bench save-start` kept in
# .run/), or `compare A.json B.json`. Not run by CI.
bench *args:
    cargo build --release --workspace --bins
    "${CARGO_TARGET_DIR:-target}/release/rewardsctl" bench {{args}}

# The edge under hostile load, on a release build: the whole system, then each
# attack of issue 17 (forged signatures, floods, stalled streams, connection and
# stream floods, rapid reset, header limits) for 20 s beside a canary player; a
# table of the canary's success and p99, the gateway's CPU and memory, and each
# target met or NOT MET. `just attack --only stalled-streams --secs 10` runs one.
attack *args:
    cargo build --release --workspace --bins
    "${CARGO_TARGET_DIR:-target}/release/rewardsctl" attack {{args}}

# Dead letters: `just dead-letters list`, `just dead-letters redrive SEQUENCE`.
dead-letters *args:
    cargo build --workspace --bins
    "${CARGO_TARGET_DIR:-target}/debug/rewardsctl" dead-letters {{args}}

# Run every test: unit, integration (real nats-server, SQLite, PostgreSQL when
# reachable), the Python client generated from proto/ (grpcio-tools,
# installed into .tools/venv here; required, not skipped), the page's own
# tests (vitest) and the page in Chromium against the whole mesh (Playwright;
# required, not skipped: ./dev installs chromium and the npm packages).
test:
    .tools/venv/bin/pip install --quiet --disable-pip-version-check -r scripts/python_client/requirements.txt
    npm --prefix web test --silent
    npm --prefix web run --silent build:dev
    REQUIRE_PYTHON_CLIENT=1 REQUIRE_BROWSER=1 cargo test --workspace --all-targets

# The player's page: `just web` builds what the chart serves (web/dist, with
# gzip copies); `just web build:dev` the development build `just up` serves
# (web/dist-dev: development sign-in, "play a match"); `just web dev` runs
# Vite's development server on :5173 against the gateway of `just up`.
web script="build":
    npm --prefix web run {{script}}

# Python stubs of every contract into DIR (default .run/python-stubs), with grpcio-tools.
python-stubs dir=".run/python-stubs":
    .tools/venv/bin/pip install --quiet --disable-pip-version-check -r scripts/python_client/requirements.txt
    mkdir -p {{dir}}
    .tools/venv/bin/python -m grpc_tools.protoc -Iproto --python_out={{dir}} --grpc_python_out={{dir}} $(find proto -name '*.proto' | sort)
    @echo "stubs in {{dir}}: PYTHONPATH={{dir}} python -c 'from game.wallet.v1 import wallet_pb2_grpc'"

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Offline checks of the deployment (no cluster needed): the Istio manifests of
# mesh/ against the CRD schemas of the oldest and newest supported Istio
# (vendored), the Helm chart (its vendored dependency, lint, package) rendered
# with every value set and validated object by object, the mesh's policies
# path by path, and the alerts with promtool (check rules, test rules);
# broken fixtures must be rejected. ./dev installs promtool (Debian's prometheus).
check-deploy:
    .tools/venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-deploy.txt
    .tools/venv/bin/python scripts/validate_manifests.py mesh --self-test
    .tools/venv/bin/python scripts/check_chart.py
    .tools/venv/bin/python scripts/check_alerts.py

# The contracts: buf lint, and buf breaking against the last released set
# (contracts/released.binpb). Golden event fixtures are checked by `just test`.
contracts:
    buf lint
    buf breaking --against contracts/released.binpb

# Records the current contracts as the released set `buf breaking` compares against.
release-contracts:
    buf build -o contracts/released.binpb
