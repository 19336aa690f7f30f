"""The set-up state cache's key: what a stack's state after `setup` depends on, as one digest.

Pure (no docker): agents/stack/images.py keeps the committed images under this key. The key hashes

- the stack file as parsed (services, images' names, env, setup commands...: a StackSpec with
  its path left out, so the same file read from elsewhere gives the same key and a comment
  changes nothing);
- the id of every service's image (a rebuilt `orchestrate/postgres:15` is another key);
- the contents and relative paths of the files `setup` depends on: `x-orchestrate.setup_inputs`
  (glob patterns relative to the run's directory, `**` for any depth), else DEFAULT_INPUTS:
  every file in the stack file's folder and below, except tests (`test_*.py`, `*_test.py`,
  `conftest.py`), caches and hidden files. A pattern matching nothing adds nothing.

Two runs with the same key start every agent from the same committed images and run no setup.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable, Mapping
from fnmatch import fnmatch
from pathlib import Path

from agents.stack.compose import StackSpec

__all__ = ["KEY_VERSION", "cache_key", "input_files"]

# Bumped when what a committed image holds changes meaning (a new capture method).
KEY_VERSION = "1"
# Files of the stack's folder that are never setup inputs by default: tests and caches.
_NOT_INPUTS = ("test_*.py", "*_test.py", "conftest.py", "*.pyc")
_SKIPPED_FOLDERS = ("__pycache__", "node_modules")
_CHUNK = 1 << 20


def input_files(spec: StackSpec, cwd: Path) -> list[Path]:
    """The files `setup` depends on, relative to `cwd`, sorted: see the module docstring."""
    if spec.setup_inputs is not None:
        found: set[Path] = set()
        for pattern in spec.setup_inputs:
            found.update(path for path in cwd.glob(pattern) if path.is_file())
            if pattern.endswith("**"):  # Path.glob's "dir/**" lists folders only before 3.13
                found.update(path for path in cwd.glob(pattern + "/*") if path.is_file())
        return sorted(path.relative_to(cwd) for path in found)
    folder = (cwd / spec.path).parent if not spec.path.is_absolute() else spec.path.parent
    return sorted(path.relative_to(cwd) if path.is_relative_to(cwd) else path for path in _tree(folder))


def cache_key(spec: StackSpec, image_ids: Mapping[str, str], cwd: Path) -> str:
    """The hex digest naming the state of `spec`'s services after setup (see the module docstring).

    `image_ids` maps each service's image name to the engine's id of it.
    """
    digest = hashlib.sha256()
    digest.update(f"orchestrate-stack-cache {KEY_VERSION}\n".encode())
    # When the worker starts changes nothing setup leaves.
    digest.update(repr(dataclasses.replace(spec, path=Path("stack.yml"), early_worker=False)).encode())
    for image in sorted({service.image for service in spec.services.values()}):
        digest.update(f"\nimage {image} {image_ids.get(image, '')}".encode())
    for relative in input_files(spec, cwd):
        digest.update(f"\nfile {relative.as_posix()} ".encode())
        digest.update(_file_digest(cwd / relative).encode())
    return digest.hexdigest()


def _tree(folder: Path) -> Iterable[Path]:
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in _SKIPPED_FOLDERS)
        for name in files:
            if not name.startswith(".") and not any(fnmatch(name, pattern) for pattern in _NOT_INPUTS):
                yield Path(root) / name


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:  # vanished or unreadable since the glob: part of the key, not an error
        return f"unreadable:{type(exc).__name__}"
    return digest.hexdigest()
