#!/usr/bin/env bash
# Build the local images orchestrate's stacks run: orchestrate/debian:bookworm (a minbase root
# filesystem from mmdebstrap, imported), orchestrate/postgres:15 and orchestrate/redis:7 (Debian's
# packages on that base). No container registry is needed, only Debian's package mirror.
# Idempotent: an image that exists is skipped unless --force is given.
#
#   usage: deploy/images/build.sh [--force]
#   env:   DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument '$arg' (try --help)" >&2; exit 4 ;;
    esac
done

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE=orchestrate/debian:bookworm

log() { printf 'build.sh: %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }

docker info >/dev/null 2>&1 || { echo "build.sh: no Docker engine answers; run deploy/setup-docker.sh" >&2; exit 4; }

started="$(now)"
build_log="$(mktemp /tmp/orchestrate-build.XXXXXX.log)"
built=()
skipped=()

if [ "$force" -eq 0 ] && exists "$BASE"; then
    skipped+=("$BASE")
else
    command -v mmdebstrap >/dev/null 2>&1 || { echo "build.sh: mmdebstrap missing; run deploy/setup-docker.sh" >&2; exit 4; }
    t="$(now)"
    log "building $BASE with mmdebstrap from $MIRROR"
    mmdebstrap --quiet --variant=minbase --format=tar \
        --aptopt='Acquire::Retries "3"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm - "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
        | docker import \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["/bin/bash"]' \
            --change 'LABEL orchestrate.image=debian' \
            --message "mmdebstrap --variant=minbase bookworm" \
            - "$BASE" >/dev/null
    built+=("$BASE ($(since "$t") s)")
fi

for name in postgres redis; do
    case "$name" in
        postgres) tag=orchestrate/postgres:15 ;;
        redis) tag=orchestrate/redis:7 ;;
    esac
    if [ "$force" -eq 0 ] && exists "$tag"; then
        skipped+=("$tag")
        continue
    fi
    t="$(now)"
    log "building $tag"
    # The legacy builder (no BuildKit) needs no buildx plugin; its output is kept for errors only.
    if ! DOCKER_BUILDKIT=0 docker build --force-rm -t "$tag" "$here/$name" >"$build_log" 2>&1; then
        tail -n 30 "$build_log" >&2
        echo "build.sh: building $tag failed (full log: $build_log)" >&2
        exit 1
    fi
    built+=("$tag ($(since "$t") s)")
done

[ "${#built[@]}" -gt 0 ] && log "built: ${built[*]}"
[ "${#skipped[@]}" -gt 0 ] && log "already present, skipped (use --force to rebuild): ${skipped[*]}"
rm -f "$build_log"
if [ "$force" -eq 1 ]; then
    # The images just replaced are now untagged; drop them (only ours, by label).
    docker image prune --force --filter label=orchestrate.image >/dev/null
fi
log "done in $(since "$started") s"
