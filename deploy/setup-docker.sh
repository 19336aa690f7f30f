#!/usr/bin/env bash
# Make this Debian machine able to run orchestrate's container stacks: docker.io, mmdebstrap,
# and a Docker engine that answers. Idempotent; run as root. Used by CI and by hand, before
# deploy/images/build.sh. There is no systemd here, so dockerd is started in the background.
set -euo pipefail

ENGINE_WAIT_SECONDS="${ENGINE_WAIT_SECONDS:-60}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"

log() { printf 'setup-docker: %s\n' "$*"; }
die() { printf 'setup-docker: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (needs apt-get and dockerd)"

missing=()
# The machine image may ship a docker client alone: the engine (dockerd) is what counts.
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q docker.io mmdebstrap
else
    log "docker and mmdebstrap already installed"
fi

if docker info >/dev/null 2>&1; then
    log "Docker engine answers ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

command -v dockerd >/dev/null 2>&1 || die "dockerd not found although docker is installed"
if ! pgrep -x dockerd >/dev/null 2>&1; then
    # A machine handed over after its processes were ended keeps their pid files; an engine
    # that finds one of a dead process may refuse to start.
    rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
fi
log "starting dockerd in the background (log: $DOCKERD_LOG)"
nohup dockerd >"$DOCKERD_LOG" 2>&1 &

deadline=$((SECONDS + ENGINE_WAIT_SECONDS))
until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        die "Docker engine did not answer within ${ENGINE_WAIT_SECONDS}s; last lines of $DOCKERD_LOG: $(tail -n 5 "$DOCKERD_LOG" | tr '\n' ' ')"
    fi
    sleep 0.5
done
log "Docker engine answers ($(docker version --format '{{.Server.Version}}'))"
