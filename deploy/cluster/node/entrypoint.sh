#!/usr/bin/env bash
# Entry point of an orchestrate cluster node container: `head` or `worker HEAD_ADDRESS`.
# A worker first starts its own dockerd (Docker-in-Docker, /var/lib/docker on a volume of its own)
# so its agents' stacks run on this node's engine and publish on this node's 127.0.0.1. The
# container runs with all capabilities (or --privileged), in a private cgroup namespace: the
# cgroup hierarchies are mounted afresh and writable, rooted at this container's own cgroup, so
# what the inner dockerd creates stays inside the node and goes with it. Token authentication: RAY_AUTH_MODE=token and the token file
# in RAY_AUTH_TOKEN_PATH are set by whoever starts the container.
set -euo pipefail

role="${1:?usage: orchestrate-node head | worker HEAD_ADDRESS}"
OBJECT_STORE_BYTES="${ORCHESTRATE_OBJECT_STORE_BYTES:-200000000}"
AGENT_SLOTS="${ORCHESTRATE_AGENT_SLOTS:-8}"

case "$role" in
    head)
        # num_cpus=0: no task or actor that asks for a CPU lands here; agents ask for the
        # orchestrate_agent resource, which only worker nodes have.
        # No Ray Client server: it needs ray[client] (grpcio); coordinators run on the head.
        exec ray start --head --block --port=6379 \
            --num-cpus=0 --include-dashboard=false --disable-usage-stats \
            --object-store-memory="$OBJECT_STORE_BYTES"
        ;;
    worker)
        head="${2:?worker needs the head address host:port}"
        mount -o remount,rw /sys
        if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
            for dir in /sys/fs/cgroup/*/; do
                controller="$(basename "$dir")"
                options="$controller"
                [ "$controller" = systemd ] && options=none,name=systemd
                umount "$dir" && mount -t cgroup -o "$options" cgroup "$dir"
            done
        else
            umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
        fi
        # A node restarted after a kill finds its dockerd's and containerd's old pid files and
        # sockets (runtime state only; images and containers are in /var/lib/docker): none runs yet.
        rm -rf /var/run/docker.pid /var/run/docker
        dockerd --host=unix:///var/run/docker.sock --storage-driver=overlay2 >/var/log/dockerd.log 2>&1 &
        for _ in $(seq 1 120); do
            docker info >/dev/null 2>&1 && break
            sleep 0.5
        done
        docker info >/dev/null 2>&1 || { echo "orchestrate-node: dockerd did not start:" >&2; tail -n 20 /var/log/dockerd.log >&2; exit 1; }
        # ORCHESTRATE_EXTRA_RESOURCES: custom Ray resources of this node only (a JSON object).
        resources="$(python3 -c 'import json, os, sys
extra = json.loads(os.environ.get("ORCHESTRATE_EXTRA_RESOURCES") or "{}")
print(json.dumps({"orchestrate_agent": int(sys.argv[1]), **extra}))' "$AGENT_SLOTS")"
        exec ray start --address="$head" --block --disable-usage-stats \
            --num-cpus="$(nproc)" --resources="$resources" \
            --object-store-memory="$OBJECT_STORE_BYTES"
        ;;
    *)
        echo "orchestrate-node: unknown role '$role' (head | worker HEAD_ADDRESS)" >&2
        exit 4
        ;;
esac
