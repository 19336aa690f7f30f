"""The set-up state cache on the local engine: committed images, the setup lock, the size limit.

A stack's state after `setup` is kept as one image per service, `orchestrate-cache/<service>:
<key[:20]>`, made by `docker commit` of the set-up container once it was stopped cleanly (so a
database has flushed and shut down as after any clean stop), labelled `orchestrate.cache=<key>`
(agents/stack/cache.py makes the key) with what the setup cost. Every agent, the one that ran
setup included, then starts its services from those images: the clone is exact for whatever a
service keeps in its container's filesystem (not in tmpfs mounts or volumes, which start empty).

One setup per key on one engine: the agent that creates the lock container `orch-cache-lock-
<key[:20]>` (a name the engine gives once) runs setup; the others wait on the engine's events
stream for that container's `destroy`, then find the images (or, if that setup failed, race for
the lock again). A holder that died without removing it (its lease stale, its coordinator
gone) is found once per STALE_SECONDS of waiting, and its lock broken. The lock carries the stack's labels, so `sweep` and `remove_run` remove it
with a dead run's containers. Docker errors become StackFailed / DockerUnavailable here.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.stack._sdk import Container, docker
from agents.stack.containers import LABEL_AGENT, LABEL_OWNER, LABEL_RUN, one_line, safe_name
from agents.stack.lease import STALE_SECONDS, stale_leases
from agents.stack.probes import owner_is_dead
from orchestrator.protocol.errors import StackFailed

__all__ = [
    "LABEL_CACHE",
    "LABEL_CACHE_LOCK",
    "LABEL_CACHE_SERVICE",
    "LABEL_SETUP_SECONDS",
    "LABEL_STATE",
    "STATE_PATH",
    "CachedStack",
    "commit_services",
    "find_cached",
    "image_ids",
    "prune_cache",
    "read_state",
    "release_lock",
    "remove_cache",
    "take_lock_or_wait",
]

LABEL_CACHE = "orchestrate.cache"
LABEL_CACHE_SERVICE = "orchestrate.cache.service"
LABEL_SETUP_SECONDS = "orchestrate.cache.setup_seconds"
LABEL_CACHE_LOCK = "orchestrate.cache.lock"
# On a cached image whose clones load a state file (STATE_PATH) once ready.
LABEL_STATE = "orchestrate.cache.state"
STATE_PATH = "/.orchestrate-cache-state"
_LABEL_BASE = "orchestrate.cache.base"
_REPOSITORY = "orchestrate-cache"
_TAG_CHARS = 20
_STOP_SECONDS = 30


@dataclass(frozen=True, slots=True)
class CachedStack:
    """The cached images of one key: service name -> image id, and what the setup once cost."""

    images: dict[str, str]
    setup_seconds: float
    # services whose clone loads the image's state file once ready
    with_state: frozenset[str] = frozenset()


def image_ids(client: docker.DockerClient, images: Sequence[str]) -> dict[str, str]:
    """The engine's id of each image name; a missing image is left out (`up` then names it)."""
    ids: dict[str, str] = {}
    for image in images:
        with contextlib.suppress(docker.errors.ImageNotFound):
            ids[image] = str(client.api.inspect_image(image)["Id"])
    return ids


def find_cached(client: docker.DockerClient, key: str, services: Sequence[str]) -> CachedStack | None:
    """The cached images of `key` when there is one for every service in `services`, else None."""
    found = client.api.images(filters={"label": f"{LABEL_CACHE}={key}"})
    images: dict[str, str] = {}
    with_state: set[str] = set()
    seconds = 0.0
    for image in found:
        labels = image.get("Labels") or {}
        service = labels.get(LABEL_CACHE_SERVICE)
        if isinstance(service, str) and service in services:
            images[service] = str(image["Id"])
            if labels.get(LABEL_STATE):
                with_state.add(service)
            with contextlib.suppress(ValueError):
                seconds = max(seconds, float(labels.get(LABEL_SETUP_SECONDS, "0")))
    if set(images) != set(services):
        return None
    return CachedStack(images, seconds, frozenset(with_state))


def take_lock_or_wait(
    client: docker.DockerClient,
    key: str,
    services: Sequence[str],
    image: str,
    labels: Mapping[str, str],
    timeout: float,
    on_wait: Callable[[], None] | None = None,
) -> CachedStack | None:
    """The cached images of `key`, or None once this process holds the setup lock (it sets up).

    Waits (on events, up to `timeout` seconds) while another agent holds the lock, calling
    `on_wait()` once when it starts to; raises StackFailed when the wait runs out.
    """
    lock_name = _lock_name(key)
    deadline = time.monotonic() + timeout
    waiting = False
    while True:
        # Opened before looking, so a `destroy` between the look and the wait is not missed.
        stream = client.events(
            decode=True,
            filters={"type": "container", "event": ["destroy"], "label": [f"{LABEL_CACHE_LOCK}={key}"]},
        )
        try:
            cached = find_cached(client, key, services)
            if cached is not None:
                return cached
            if _create_lock(client, lock_name, key, image, labels):
                return None
            if not waiting and on_wait is not None:
                on_wait()
            waiting = True
            remaining = deadline - time.monotonic()
            if _wait_for_event(stream, min(remaining, STALE_SECONDS)):
                continue
            if remaining > STALE_SECONDS:
                _break_if_abandoned(client, lock_name)
                continue
            raise StackFailed(
                f"waited {timeout:.0f}s for another agent's stack setup (lock {lock_name}); "
                "remove it with `orchestrate clean` if its run is gone"
            )
        finally:
            with contextlib.suppress(docker.errors.DockerException, OSError):
                stream.close()


def release_lock(client: docker.DockerClient, key: str) -> None:
    """Remove the setup lock of `key` (the waiting agents then find the images)."""
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_container(_lock_name(key), force=True)


def commit_services(
    client: docker.DockerClient,
    containers: Mapping[str, Container],
    key: str,
    setup_seconds: float,
    base_images: Mapping[str, str],
    states: Mapping[str, bytes],
) -> CachedStack:
    """Stop each set-up container cleanly and commit it as the cache image of `key`.

    `containers` maps service name -> its container; `base_images` service -> image name;
    `states` service -> what a clone loads once it is ready (an in-memory server's data), kept
    in the image at STATE_PATH.
    """
    for container in containers.values():
        container.stop(timeout=_STOP_SECONDS)
    for service, state in states.items():
        containers[service].put_archive("/", _tar_of(STATE_PATH.lstrip("/"), state))
    images: dict[str, str] = {}
    for service, container in containers.items():
        labels = {
            LABEL_CACHE: key,
            LABEL_CACHE_SERVICE: service,
            LABEL_SETUP_SECONDS: f"{setup_seconds:.3f}",
            _LABEL_BASE: str(client.api.inspect_image(base_images[service])["Id"]),
        }
        if service in states:
            labels[LABEL_STATE] = "1"
        committed = container.commit(
            repository=f"{_REPOSITORY}/{safe_name(service).lower()}",
            tag=key[:_TAG_CHARS],
            conf={"Labels": {**(container.labels or {}), **labels}},
        )
        images[service] = str(committed.id)
    return CachedStack(images, setup_seconds, frozenset(states))


def prune_cache(client: docker.DockerClient, max_bytes: int, keep: str) -> int:
    """Remove the oldest cached keys (never `keep`) until the cache holds at most `max_bytes`.

    Returns how many images went; 0 for no limit. An image still in use stays (the engine refuses).
    """
    if max_bytes <= 0:
        return 0
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for image in client.api.images(filters={"label": LABEL_CACHE}):
        by_key.setdefault((image.get("Labels") or {})[LABEL_CACHE], []).append(image)
    sizes: dict[str, int] = {}
    total = sum(_layer_bytes(client, image, sizes) for images in by_key.values() for image in images)
    removed = 0
    oldest_first = sorted(by_key.items(), key=lambda item: min(int(i.get("Created", 0)) for i in item[1]))
    for key, images in oldest_first:
        if total <= max_bytes:
            break
        if key == keep:
            continue
        for image in images:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(image["Id"], force=False)
                removed += 1
            total -= _layer_bytes(client, image, sizes)
    return removed


def remove_cache(client: docker.DockerClient, key: str | None = None) -> int:
    """Remove the cached set-up images of `key` (None: all) on this engine; returns how many went."""
    removed = 0
    label = LABEL_CACHE if key is None else f"{LABEL_CACHE}={key}"
    for image in client.api.images(filters={"label": label}):
        try:
            client.api.remove_image(image["Id"], force=True)
            removed += 1
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            raise StackFailed(f"cannot remove cached image {image['Id'][:19]}: {one_line(exc)}") from exc
    return removed


def read_state(container: Container) -> bytes:
    """The state a cached image keeps at STATE_PATH (see `commit_services`), from its container."""
    chunks, _ = container.get_archive(STATE_PATH)
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        member = archive.extractfile(STATE_PATH.rsplit("/", 1)[-1])
        assert member is not None, "the state is a regular file"
        return member.read()


def _tar_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _break_if_abandoned(client: docker.DockerClient, lock_name: str) -> None:
    """Remove the lock `lock_name` when its holder is gone: its agent's lease went stale (the agent
    died; agents/stack/lease.py) or its coordinator no longer runs. Checked once per STALE_SECONDS
    of waiting, so a dead holder costs the others half a minute, not the whole wait."""
    try:
        labels = client.api.inspect_container(lock_name)["Config"].get("Labels") or {}
    except docker.errors.NotFound:
        return
    holder = (labels.get(LABEL_RUN, ""), labels.get(LABEL_AGENT, ""))
    if holder in stale_leases() or owner_is_dead(labels.get(LABEL_OWNER, "")):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(lock_name, force=True)


def _lock_name(key: str) -> str:
    return f"orch-cache-lock-{key[:_TAG_CHARS]}"


def _create_lock(
    client: docker.DockerClient, name: str, key: str, image: str, labels: Mapping[str, str]
) -> bool:
    """True if this call created the lock container `name` (never started); False if it exists."""
    try:
        client.api.create_container(
            image, command=["true"], name=name, labels={**labels, LABEL_CACHE_LOCK: key}
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            return False
        raise
    return True


def _wait_for_event(stream: Any, timeout: float) -> bool:
    """True when `stream` yields an event within `timeout` seconds; False when the time ran out."""
    if timeout <= 0:
        return False
    timed_out = threading.Event()

    def cut() -> None:
        timed_out.set()
        with contextlib.suppress(docker.errors.DockerException, OSError):
            stream.close()

    # The SDK's read has no timeout; closing its CancellableStream ends it from this timer.
    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        for _ in stream:
            return True
        return False
    except (docker.errors.DockerException, OSError, ValueError):
        if timed_out.is_set():
            return False
        raise
    finally:
        timer.cancel()


def _layer_bytes(client: docker.DockerClient, image: Mapping[str, Any], sizes: dict[str, int]) -> int:
    """What `image` holds beyond its base image's layers (the base is shared, never cached)."""
    base = (image.get("Labels") or {}).get(_LABEL_BASE, "")
    if base not in sizes:
        try:
            sizes[base] = int(client.api.inspect_image(base).get("Size") or 0) if base else 0
        except docker.errors.ImageNotFound:
            sizes[base] = 0
    return max(0, int(image.get("Size") or 0) - sizes[base])
