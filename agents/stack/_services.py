"""Validate one service of a stack file (its image, environment, command, ports, health
check, tmpfs) into a ServiceSpec.

Called by agents/stack/compose.py's validator for each entry of `services`, on the checks
shared in agents/stack/_checks.py; the format and its limits are in compose.py's docstring.
Pure: no docker.
"""

from __future__ import annotations

import re
import shlex

from agents.stack._checks import YamlChecker
from agents.stack.spec import PUBLISH_HOST, HealthcheckSpec, ServiceSpec

__all__ = ["ServiceChecker"]

_SERVICE_KEYS = ("image", "environment", "command", "entrypoint", "ports", "healthcheck", "tmpfs")
# Compose keys people will reasonably write; named so the error says "not supported", not "unknown".
_UNSUPPORTED_SERVICE_KEYS = {
    "build": "images are built beforehand (see deploy/images/build.sh)",
    "volumes": "a stack is thrown away after the run; use tmpfs",
    "depends_on": "services start concurrently and setup runs after all are ready",
    "networks": "each agent gets its own network; services reach each other by name",
    "container_name": "names are generated per run and agent",
    "network_mode": "each agent gets its own network",
    "expose": "list the port under 'ports'",
    "restart": "a service that exits fails the stack",
    "env_file": "write the variables under 'environment'",
}
_HEALTHCHECK_KEYS = ("test", "interval", "timeout", "retries", "start_period", "disable")

_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_PORT = re.compile(r"(?P<port>\d{1,5})(?:/(?P<proto>[a-z]+))?\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ServiceChecker(YamlChecker):
    """Turns one loaded service mapping into a ServiceSpec, naming the place of the first problem."""

    def service(self, name: object, raw: object, place: str) -> ServiceSpec:
        """The service `name` (a key of `services`) whose mapping is `raw`, at `place`."""
        if not isinstance(name, str) or not _SERVICE_NAME.match(name):
            raise self.fail(place, "invalid service name (use letters, digits, '_' and '-')")
        body = self.mapping(raw, place)
        self.check_keys(body, place, _SERVICE_KEYS, _UNSUPPORTED_SERVICE_KEYS)
        image = body.get("image")
        if image is None:
            raise self.fail(place, "missing key 'image'")
        if not isinstance(image, str) or not image.strip():
            raise self.fail(f"{place}.image", "must be an image name such as 'orchestrate/postgres:15'")
        return ServiceSpec(
            name=name,
            image=image.strip(),
            environment=self.environment(body.get("environment"), f"{place}.environment"),
            command=self.argv(body.get("command"), f"{place}.command"),
            entrypoint=self.argv(body.get("entrypoint"), f"{place}.entrypoint"),
            ports=self.ports(body.get("ports"), f"{place}.ports"),
            healthcheck=self.healthcheck(body.get("healthcheck"), f"{place}.healthcheck"),
            tmpfs=self.tmpfs(body.get("tmpfs"), f"{place}.tmpfs"),
        )

    def environment(self, raw: object, place: str) -> dict[str, str]:
        if raw is None:
            return {}
        pairs: list[tuple[object, object]] = []
        if isinstance(raw, dict):
            pairs = list(raw.items())
        elif isinstance(raw, list):
            for index, item in enumerate(raw):
                if not isinstance(item, str) or "=" not in item:
                    raise self.fail(f"{place}[{index}]", "must be a 'KEY=VALUE' string")
                name, _, text = item.partition("=")
                pairs.append((name, text))
        else:
            raise self.fail(place, "must be a mapping or a list of 'KEY=VALUE' strings")
        environment: dict[str, str] = {}
        for key, value in pairs:
            if not isinstance(key, str) or not key:
                raise self.fail(place, f"invalid variable name {key!r}")
            if value is None:
                raise self.fail(
                    f"{place}.{key}", "has no value (passing the host's value through is not supported)"
                )
            environment[key] = self.scalar_text(value, f"{place}.{key}")
        return environment

    def argv(self, raw: object, place: str) -> tuple[str, ...] | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            try:
                return tuple(shlex.split(raw))
            except ValueError as exc:
                raise self.fail(place, f"cannot split the command: {exc}") from exc
        if isinstance(raw, list):
            return tuple(self.scalar_text(item, f"{place}[{index}]") for index, item in enumerate(raw))
        raise self.fail(place, "must be a string or a list of strings")

    def ports(self, raw: object, place: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(place, "must be a list of container ports, e.g. ['5432']")
        ports: list[str] = []
        for index, item in enumerate(raw):
            here = f"{place}[{index}]"
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise self.fail(here, "must be a container port such as 5432 or '5432/tcp'")
            text = str(item).strip()
            if ":" in text:
                raise self.fail(
                    here,
                    f"'{text}' maps a host port; give the container port only (e.g. "
                    f"'{text.rsplit(':', 1)[-1]}'): orchestrate publishes every port on "
                    f"{PUBLISH_HOST} at a random host port so that agents never collide",
                )
            match = _PORT.match(text)
            if match is None or not 1 <= int(match["port"]) <= 65535:
                raise self.fail(here, f"'{text}' is not a container port such as 5432 or '5432/tcp'")
            protocol = match["proto"] or "tcp"
            if protocol != "tcp":
                raise self.fail(here, f"only tcp ports are supported, not '{protocol}'")
            port = f"{int(match['port'])}/tcp"
            if port in ports:
                raise self.fail(here, f"port {port} is listed twice")
            ports.append(port)
        return tuple(ports)

    def healthcheck(self, raw: object, place: str) -> HealthcheckSpec | None:
        if raw is None:
            return None
        body = self.mapping(raw, place)
        self.check_keys(body, place, _HEALTHCHECK_KEYS)
        if body.get("disable") is True:
            if set(body) - {"disable"}:
                raise self.fail(place, "'disable: true' cannot be combined with other keys")
            return HealthcheckSpec(test=("NONE",))
        if "disable" in body and body["disable"] is not False:
            raise self.fail(f"{place}.disable", "must be true or false")
        if "test" not in body:
            raise self.fail(place, "missing key 'test'")
        test = self.health_test(body["test"], f"{place}.test")
        retries = body.get("retries")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 1):
            raise self.fail(f"{place}.retries", "must be a whole number of at least 1")
        return HealthcheckSpec(
            test=test,
            interval=self.duration(body.get("interval"), f"{place}.interval", minimum=0.001),
            timeout=self.duration(body.get("timeout"), f"{place}.timeout", minimum=0.001),
            retries=retries,
            start_period=self.duration(body.get("start_period"), f"{place}.start_period", minimum=0.0),
        )

    def health_test(self, raw: object, place: str) -> tuple[str, ...]:
        if isinstance(raw, str):
            if not raw.strip():
                raise self.fail(place, "is empty")
            return ("CMD-SHELL", raw)
        if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
            kind = raw[0]
            if kind == "NONE" and len(raw) == 1:
                return ("NONE",)
            if kind in ("CMD", "CMD-SHELL") and len(raw) > 1:
                return tuple(raw)
            raise self.fail(
                place, "a list must start with 'CMD' or 'CMD-SHELL' followed by the command, or be ['NONE']"
            )
        raise self.fail(place, "must be a shell command string or a list like ['CMD', 'pg_isready']")

    def duration(self, raw: object, place: str, minimum: float) -> float | None:
        """A Compose duration ("1m30s", "500ms") or a plain number of seconds."""
        if raw is None:
            return None
        if isinstance(raw, bool):
            raise self.fail(place, "must be a duration such as '1s' or '500ms'")
        if isinstance(raw, int | float):
            seconds = float(raw)
        elif isinstance(raw, str):
            text = raw.strip()
            parts = _DURATION_PART.findall(text)
            if not text or "".join(number + unit for number, unit in parts) != text:
                raise self.fail(place, f"'{raw}' is not a duration such as '1s', '500ms' or '1m30s'")
            seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
        else:
            raise self.fail(place, "must be a duration such as '1s' or '500ms'")
        if seconds < minimum or (minimum > 0 and seconds == 0):
            raise self.fail(place, f"must be at least {minimum * 1000:g}ms")
        return seconds

    def tmpfs(self, raw: object, place: str) -> dict[str, str]:
        if raw is None:
            return {}
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list):
            raise self.fail(place, "must be a path or a list of paths (optionally 'path:options')")
        mounts: dict[str, str] = {}
        for index, item in enumerate(items):
            here = f"{place}[{index}]"
            if not isinstance(item, str) or not item.startswith("/"):
                raise self.fail(here, "must be an absolute path, optionally followed by ':options'")
            mount, _, options = item.partition(":")
            mounts[mount] = options
        return mounts
