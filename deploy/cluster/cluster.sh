#!/usr/bin/env bash
# A real multi-node Ray cluster on this machine, as containers: one head and N worker nodes on a
# private Docker network, token authentication on. Each worker node runs its own dockerd
# (privileged, Docker-in-Docker) holding the stack images, so its agents' stacks start on that
# node and publish on that node's 127.0.0.1. The nodes have no checkout: code reaches them
# through Ray's runtime_env working_dir.
#
#   usage: deploy/cluster/cluster.sh build               build the node image, save the stack images
#          deploy/cluster/cluster.sh up [--workers N] [--worker1-resources JSON]
#                                                        start the cluster (default 2 workers), wait until ready;
#                                                        worker 1 also gets the Ray resources in JSON ('{"gpu_sim": 1}')
#          deploy/cluster/cluster.sh exec CMD...         run CMD in the head container (e.g. orchestrate run ...)
#          deploy/cluster/cluster.sh copy                copy this checkout to /srv/suite in the head
#          deploy/cluster/cluster.sh demo                build, up, run the example suite on 4 agents, down
#          deploy/cluster/cluster.sh status              the cluster's containers and Ray's view of its nodes
#          deploy/cluster/cluster.sh down                remove containers, network, volumes (the dind state)
#   env:   ORCHESTRATE_CLUSTER  name prefix of everything it creates (default orchestrate-cluster-demo)
#          UP_TIMEOUT           seconds `up` may take (default 180)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
NAME="${ORCHESTRATE_CLUSTER:-orchestrate-cluster-demo}"
UP_TIMEOUT="${UP_TIMEOUT:-180}"
LABEL="orchestrate.cluster=$NAME"
NETWORK="$NAME-net"
HEAD="$NAME-head"
SUITE_DIR=/srv/suite
STACK_IMAGES=(orchestrate/postgres:15 orchestrate/redis:7)
CACHE="$root/.orchestrate/cluster"
# What a worker node needs to run its own dockerd. --privileged would do, but fails where the
# host's capability bounding set lacks one (here CAP_SYS_RESOURCE: "runc create failed: unable to
# apply caps: operation not permitted"); this is privileged minus that capability. A private
# cgroup namespace roots the node's cgroup mounts at its own cgroup (see node/entrypoint.sh).
if [ "${ORCHESTRATE_NODE_PRIVILEGED:-0}" = 1 ]; then
    DIND_OPTIONS=(--privileged --cgroupns private)
else
    DIND_OPTIONS=(--cap-add ALL --cap-drop SYS_RESOURCE --cgroupns private
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined
        --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm')
fi

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$1" >&2; exit "${2:-1}"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

case "$NAME" in orchestrate-cluster-*) ;; *) die "ORCHESTRATE_CLUSTER must start with orchestrate-cluster- (got '$NAME')" 4 ;; esac

node_image() { bash "$here/build.sh"; }

# The stack images as one tar, saved once per set of image ids; every worker's dockerd loads it.
stack_images_tar() {
    local image ids key tar
    for image in "${STACK_IMAGES[@]}"; do
        docker image inspect "$image" >/dev/null 2>&1 || die "$image is missing; run deploy/images/build.sh" 4
    done
    ids=$(docker image inspect --format '{{.Id}}' "${STACK_IMAGES[@]}")
    key=$(echo "$ids" | sha256sum | cut -c1-12)
    tar="$CACHE/stack-images-$key.tar"
    if [ ! -s "$tar" ]; then
        mkdir -p "$CACHE"
        rm -f "$CACHE"/stack-images-*.tar
        local t
        t="$(now)"
        docker save "${STACK_IMAGES[@]}" -o "$tar.tmp" && mv "$tar.tmp" "$tar"
        log "saved ${STACK_IMAGES[*]} to $tar ($(since "$t") s)"
    fi
    echo "$tar"
}

cmd_build() {
    local t
    t="$(now)"
    node_image >/dev/null
    stack_images_tar >/dev/null
    log "build done ($(since "$t") s)"
}

# Create (not start) a node container, give it the cluster's token, then start it: the token is
# never in the environment or on a command line, where `docker inspect` or `ps` would show it.
# Arguments: NAME TOKEN_FILE [DOCKER CREATE OPTIONS...] IMAGE ROLE [HEAD]. Never pulls.
start_node() {
    local name="$1" token="$2"
    shift 2
    # The hostname is the role alone (head, worker-1): short enough for the report's host column.
    docker create --pull never --name "$name" --hostname "${name#"$NAME"-}" --label "$LABEL" --network "$NETWORK" \
        --shm-size=512m --env RAY_AUTH_MODE=token "$@" >/dev/null
    docker cp "$token" "$name:/root/.ray/auth_token" || die "could not copy the token into $name"
    docker start "$name" >/dev/null
}

cmd_up() {
    local workers=2 worker1_resources=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --workers) workers="${2:?--workers needs a number}"; shift 2 ;;
            --worker1-resources) worker1_resources="${2:?--worker1-resources needs a JSON object}"; shift 2 ;;
            *) die "up: unknown argument '$1'" 4 ;;
        esac
    done
    [ "$workers" -ge 1 ] 2>/dev/null || die "--workers must be a positive number" 4
    docker info >/dev/null 2>&1 || die "no Docker engine answers; run deploy/setup-docker.sh" 4
    if [ -n "$(docker ps -aq --filter "label=$LABEL")" ]; then
        die "cluster $NAME already exists; run: $0 down" 4
    fi
    local started image tar token w pids=()
    started="$(now)"
    image="$(node_image)"
    tar="$(stack_images_tar)"
    log "starting $NAME: head + $workers worker node(s) from $image"
    docker network create --label "$LABEL" "$NETWORK" >/dev/null
    token="$(mktemp /tmp/orchestrate-cluster-token.XXXXXX)"
    TOKEN_FILE="$token"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token"
    # Nothing is published: the coordinator runs on the head (cluster.sh exec), as a Ray driver.
    start_node "$HEAD" "$token" "$image" head
    for w in $(seq 1 "$workers"); do
        docker volume create --label "$LABEL" "$NAME-worker-$w-docker" >/dev/null
        local extra=()
        # Custom resources only one node has: what @pytest.mark.orchestrate(resources=...) selects.
        [ "$w" -eq 1 ] && [ -n "$worker1_resources" ] && extra=(--env "ORCHESTRATE_EXTRA_RESOURCES=$worker1_resources")
        start_node "$NAME-worker-$w" "$token" "${DIND_OPTIONS[@]}" "${extra[@]}" \
            --volume "$NAME-worker-$w-docker:/var/lib/docker" "$image" worker "$HEAD:6379"
    done
    # Each worker's dockerd gets the stack images, all workers at once.
    for w in $(seq 1 "$workers"); do
        load_images "$NAME-worker-$w" "$tar" &
        pids+=($!)
    done
    local failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    [ "$failed" -eq 0 ] || die "loading the stack images into the worker nodes failed (see above; $0 down cleans up)"
    rm -f "$token"
    wait_nodes $((workers + 1))
    log "up in $(since "$started") s: Ray at $HEAD:6379 on network $NETWORK"
}

load_images() {
    local node="$1" tar="$2" deadline=$((SECONDS + UP_TIMEOUT)) t
    t="$(now)"
    until docker exec "$node" docker info >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ] || [ "$(docker inspect --format '{{.State.Running}}' "$node")" != true ]; then
            docker logs --tail 20 "$node" >&2 || true
            die "the Docker engine in $node did not start"
        fi
        sleep 0.5
    done
    docker exec -i "$node" docker load -q <"$tar" >/dev/null || die "docker load in $node failed"
    log "$node: dockerd up, stack images loaded ($(since "$t") s)"
}

# Wait until Ray sees `count` live nodes (the head and every worker joined, token accepted).
wait_nodes() {
    local count="$1"
    docker exec "$HEAD" python - "$count" "$UP_TIMEOUT" <<'PY' || die "the cluster did not come up; $0 status shows the nodes"
import sys, time
count, timeout = int(sys.argv[1]), float(sys.argv[2])
deadline = time.monotonic() + timeout
while True:  # the head's GCS may not answer yet
    try:
        import ray
        ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"cluster: ray.init on the head failed: {exc}")
        time.sleep(1)
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= count:
        break
    if time.monotonic() > deadline:
        sys.exit(f"cluster: {len(alive)} of {count} nodes joined within {timeout:.0f} s")
    time.sleep(0.5)
# A node is in the node table when it registers, in the scheduler's view of resources a moment
# later; an agent placed on a node not yet in that view goes elsewhere (its affinity is soft).
# So wait until the agent slots of every node are there too.
slots = sum((n.get("Resources") or {}).get("orchestrate_agent", 0) for n in alive)
while ray.available_resources().get("orchestrate_agent", 0) < slots:
    if time.monotonic() > deadline:
        sys.exit(f"cluster: the scheduler sees {ray.available_resources().get('orchestrate_agent', 0)} of {slots} agent slots")
    time.sleep(0.2)
PY
}

cmd_copy() {
    # The checkout as git sees it (tracked and untracked, not ignored): no .venv, no .git.
    docker exec "$HEAD" find "$SUITE_DIR" -mindepth 1 -delete
    (cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) \
        | docker exec -i "$HEAD" tar -xf - -C "$SUITE_DIR"
    log "copied the checkout to $HEAD:$SUITE_DIR"
}

cmd_exec() {
    [ $# -gt 0 ] || die "exec needs a command" 4
    # stdin is passed on (a script can be piped in); a terminal only when there is one.
    local tty=(-i)
    [ -t 0 ] && [ -t 1 ] && tty=(-it)
    docker exec "${tty[@]}" --workdir "$SUITE_DIR" "$HEAD" "$@"
}

cmd_status() {
    docker ps -a --filter "label=$LABEL" --format 'table {{.Names}}\t{{.Status}}'
    docker exec "$HEAD" ray status 2>/dev/null || true
}

cmd_down() {
    local t containers
    t="$(now)"
    containers=$(docker ps -aq --filter "label=$LABEL")
    # The dind engines and their stacks die with their node containers; their state is in volumes.
    [ -z "$containers" ] || docker rm -f -v $containers >/dev/null
    docker network ls -q --filter "label=$LABEL" | xargs -r docker network rm >/dev/null
    docker volume ls -q --filter "label=$LABEL" | xargs -r docker volume rm >/dev/null
    log "$NAME is down ($(since "$t") s)"
}

cmd_demo() {
    local rc=0 t
    t="$(now)"
    cmd_build
    DOWN_ON_EXIT=1
    cmd_up --workers 2
    cmd_copy
    log "running the example suite on 4 agents over 2 worker nodes"
    cmd_exec orchestrate run examples/integration --stack examples/integration/stack.yml --agents 4 \
        --address "$HEAD:6379" --junitxml .orchestrate/cluster-demo-junit.xml || rc=$?
    log "demo finished with exit code $rc ($(since "$t") s in all)"
    return "$rc"
}

TOKEN_FILE=""
DOWN_ON_EXIT=0
on_exit() {
    local rc=$?
    [ -z "$TOKEN_FILE" ] || rm -f "$TOKEN_FILE"
    [ "$DOWN_ON_EXIT" -eq 0 ] || cmd_down
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

sub="${1:-}"
[ $# -gt 0 ] && shift
case "$sub" in
    build) cmd_build ;;
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    copy) cmd_copy ;;
    exec) cmd_exec "$@" ;;
    status) cmd_status ;;
    demo) cmd_demo ;;
    -h|--help|help) sed -n '2,21p' "$0" ;;
    *) die "unknown command '$sub' (try --help)" 4 ;;
esac
