#!/usr/bin/env bash
# Build the node image of the local containerised Ray cluster, orchestrate-cluster-node:<key>, and
# prints its tag on stdout. No registry: it starts from orchestrate/debian:bookworm (made by
# deploy/images/build.sh) and installs, with no network inside `docker build`, wheels downloaded
# here by pip (from PyPI, through this machine's pip configuration) into a wheelhouse kept in
# .orchestrate/cluster/wheelhouse, and orchestrate itself as a wheel built from this checkout.
#
# Cached twice: <key> hashes everything the image is made of (the base image, this directory, the
# pinned versions, orchestrate's sources), so an unchanged checkout builds nothing; and when only
# orchestrate's sources change, Docker's layer cache keeps the dependency layer.
#
#   usage: deploy/cluster/build.sh
#   env:   PYTHON  the Python whose installed versions pin the image's (default .venv/bin/python)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
BASE=orchestrate/debian:bookworm
REPO=orchestrate-cluster-node

log() { printf 'cluster/build.sh: %s\n' "$*" >&2; }
die() { printf 'cluster/build.sh: error: %s\n' "$1" >&2; exit "${2:-1}"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

docker info >/dev/null 2>&1 || die "no Docker engine answers; run deploy/setup-docker.sh" 4
docker image inspect "$BASE" >/dev/null 2>&1 || die "$BASE is missing; run deploy/images/build.sh" 4
[ -x "$PYTHON" ] || die "no Python at $PYTHON (run make setup, or set PYTHON)" 4

started="$(now)"
ctx="$(mktemp -d /tmp/orchestrate-cluster-build.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT

# The versions the developer's environment runs, as constraints: the image gets the same ray,
# pytest... (only the packages it installs; the rest of the list is ignored by pip).
"$PYTHON" -m pip freeze --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9._-]+==' >"$ctx/constraints.txt"
cp "$here/node/Dockerfile" "$here/node/entrypoint.sh" "$ctx/"
# What every node runs: orchestrate's dependencies and the example suite's (psycopg, redis).
REQUIREMENTS=(ray pytest pytest-xdist docker msgpack rich PyYAML 'psycopg[binary]' redis)
# The node's Python is Debian bookworm's python3 (3.11.2): wheels are chosen for it. pip download
# still evaluates python_full_version markers with the Python running it, so what the node needs
# below 3.11.3 is listed by hand: async-timeout (redis).
NODE_PYTHON_VERSION=3.11.2
REQUIREMENTS+=(async-timeout)

sources=$(cd "$root" && git ls-files -co --exclude-standard -- pyproject.toml orchestrator agents | sort)
key=$(
    {
        docker image inspect --format '{{.Id}}' "$BASE"
        cat "$ctx/Dockerfile" "$ctx/entrypoint.sh" "$ctx/constraints.txt"
        echo "${REQUIREMENTS[@]}" "$NODE_PYTHON_VERSION"
        (cd "$root" && sha256sum $sources)
    } | sha256sum | cut -c1-12
)
tag="$REPO:$key"
if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag is up to date ($(since "$started") s)"
    echo "$tag"
    exit 0
fi

t="$(now)"
wheelhouse="$root/.orchestrate/cluster/wheelhouse"
mkdir -p "$wheelhouse"
"$PYTHON" -m pip download --quiet --only-binary=:all: --python-version "$NODE_PYTHON_VERSION" --dest "$wheelhouse" \
    --constraint "$ctx/constraints.txt" "${REQUIREMENTS[@]}" >"$ctx/download.log" 2>&1 \
    || { grep -v 'is ignored' "$ctx/download.log" | tail -n 20 >&2; die "downloading the wheels failed"; }
# Only the wheels this resolution chose: the wheelhouse may hold older ones too.
mkdir "$ctx/wheelhouse"
"$PYTHON" -m pip download --quiet --only-binary=:all: --python-version "$NODE_PYTHON_VERSION" --no-index --find-links "$wheelhouse" --dest "$ctx/wheelhouse" \
    --constraint "$ctx/constraints.txt" "${REQUIREMENTS[@]}" >>"$ctx/download.log" 2>&1 \
    || { tail -n 20 "$ctx/download.log" >&2; die "collecting the wheels failed"; }
log "collected $(ls "$ctx/wheelhouse" | wc -l) wheels ($(since "$t") s)"
t="$(now)"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$ctx/wheels" "$root" >"$ctx/wheel.log" 2>&1 \
    || { tail -n 20 "$ctx/wheel.log" >&2; die "building the orchestrate wheel failed"; }
log "built the orchestrate wheel ($(since "$t") s); building $tag"
t="$(now)"
# The legacy builder (no BuildKit) needs no buildx plugin; its output is kept for errors only.
if ! DOCKER_BUILDKIT=0 docker build --force-rm --label orchestrate.cluster=node -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
    tail -n 30 "$ctx/build.log" >&2
    die "docker build of $tag failed"
fi
log "built $tag ($(since "$t") s; $(grep -c 'Using cache' "$ctx/build.log" || true) cached steps)"
# Older node images of this repository only take disk space: drop their tags (layers still shared
# with the new image stay).
docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep -vxF "$tag" | xargs -r docker image rm >/dev/null 2>&1 || true
echo "$tag"
