# syntax=docker/dockerfile:1.7
#
# The Game Rewards services in one image: every service binary (mission,
# reward, wallet, gift, mypage, settlement, gateway) sits in /usr/local/bin and
# the Kubernetes workload picks one with `command:` (see helm/game-rewards).
#
#   docker build -t game-rewards-mesh:0.1.0 .
#   docker run --rm -p 50051:50051 game-rewards-mesh:0.1.0 /usr/local/bin/gift
#
# Why one image: the binaries share almost all their code (platform, api,
# tonic, diesel, async-nats), so one `cargo build` compiles the dependency
# graph once; one tag moves every service together, matching the chart's
# single appVersion. A one-binary image is still possible:
#   docker build --build-arg BINARIES=gateway -t game-rewards-gateway .
#
# Build needs: BuildKit (cache mounts). No protoc (protox compiles the protos),
# no system SQLite or libpq (both bundled). Runtime needs glibc, libgcc_s and
# OpenSSL 3 (libpq, bundled by pq-src, links the system libssl/libcrypto),
# all of which distroless/cc-debian12 provides; the builder is bookworm too,
# so the OpenSSL and glibc versions match.

ARG RUST_VERSION=1
ARG BINARIES="mission reward wallet gift mypage settlement gateway"

# The player's page (web/), production build: TypeScript generated from
# proto/ by buf and protoc-gen-es (both npm packages, pinned by
# web/package-lock.json), bundled by Vite, with gzip copies the gateway serves.
FROM node:20-bookworm-slim AS page
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY proto /src/proto
COPY web/ ./
RUN npm run build

FROM rust:${RUST_VERSION}-bookworm AS builder
ARG BINARIES
WORKDIR /src
# The whole workspace: Cargo.lock lists every member, so a partial copy would
# not build with --locked (see .dockerignore for what is left out).
COPY . .
# Registry, git checkouts and target/ are BuildKit caches shared across
# builds; the binaries are copied out of the cached target/ in the same step.
# (Word splitting of ${BINARIES} and ${packages} is intended.)
# hadolint ignore=SC2086
RUN --mount=type=cache,id=game-rewards-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=game-rewards-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=game-rewards-target,target=/src/target,sharing=locked \
    set -eux; \
    packages=""; \
    for binary in ${BINARIES}; do packages="${packages} -p ${binary}"; done; \
    cargo build --release --locked ${packages}; \
    mkdir -p /out/bin; \
    for binary in ${BINARIES}; do install -m 0755 "target/release/${binary}" /out/bin/; done

# distroless/cc: glibc, libgcc_s, libssl3, CA certificates, tzdata; no shell,
# no package manager. `nonroot` is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG BINARIES
LABEL org.opencontainers.image.title="game-rewards-mesh" \
      org.opencontainers.image.description="Game Rewards mesh services: ${BINARIES}" \
      org.opencontainers.image.source="https://github.com/game-rewards/game-rewards-mesh" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/bin/ /usr/local/bin/
# The gateway serves it at / when GATEWAY_WEB_ROOT names it (the chart's
# `web.enabled`); read once at start, so a read-only root filesystem is fine.
COPY --from=page /src/web/dist/ /usr/local/share/game-rewards/web/
# The nonroot user's home (owned by 65532 in the base image): outside
# Kubernetes the default DATABASE_URL, data/<service>.sqlite, lands in
# /home/nonroot/data (mount a volume there to keep it). The chart sets
# DATABASE_URL=/data/<service>.sqlite on a PersistentVolumeClaim instead and
# keeps the root filesystem read-only.
WORKDIR /home/nonroot
# Container defaults: listen on every interface, logs as JSON, metrics on 9464.
# The chart sets these (and DATABASE_URL, NATS_URL) explicitly as well.
ENV GRPC_ADDR=0.0.0.0:50051 \
    GATEWAY_ADDR=0.0.0.0:8080 \
    METRICS_ADDR=0.0.0.0:9464 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 50051 8080 9464
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# SIGTERM starts the drain (health NOT_SERVING, calls in flight finish,
# consumers stop, outbox flushed) within SHUTDOWN_GRACE_MS.
STOPSIGNAL SIGTERM
