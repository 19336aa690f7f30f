"""The wire format: msgpack frames, tagged and versioned. The only module that imports msgpack.

Used on every boundary: worker process -> agent (a pipe), agent -> coordinator (bytes through
Ray or a thread queue), and the duration store on disk. Every message is a map with a type tag
("$t") and the format version ("$v"); a reader refuses a version it does not know instead of
guessing at its fields.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import msgpack

FORMAT_VERSION = 1


class WireError(ValueError):
    """Bytes that are not a message of a version this code understands."""


def pack(obj: Any) -> bytes:
    """Encode plain data (maps, lists, str, bytes, numbers, None) as one msgpack object."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode one msgpack object; raise WireError on anything that is not exactly that."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise WireError(f"not a msgpack document: {exc}") from exc


def message(tag: str, **fields: Any) -> dict[str, Any]:
    """A tagged, versioned message."""
    return {"$t": tag, "$v": FORMAT_VERSION, **fields}


def check(msg: Any) -> tuple[str, dict[str, Any]]:
    """Return (tag, message) after checking the tag and version."""
    if not isinstance(msg, dict) or "$t" not in msg:
        raise WireError(f"untagged message: {msg!r:.200}")
    if msg.get("$v") != FORMAT_VERSION:
        raise WireError(f"message format version {msg.get('$v')!r} is not {FORMAT_VERSION}")
    return msg["$t"], msg


class FrameWriter:
    """Writes messages to a file descriptor (a pipe), one msgpack object each."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, msg: Any) -> None:
        """Write one object: a tagged message, or the bytes of an encoded batch."""
        data = pack(msg)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        os.close(self._fd)


class FrameUnpacker:
    """Splits bytes read from a stream into the objects they encode (for a non-blocking reader)."""

    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1 << 30)

    def feed(self, chunk: bytes) -> list[Any]:
        """Every object completed by `chunk` (a partial one waits for the next chunk)."""
        self._unpacker.feed(chunk)
        try:
            return list(self._unpacker)
        except (ValueError, msgpack.FormatError, msgpack.StackError) as exc:
            raise WireError(f"not a msgpack stream: {exc}") from exc


class FrameReader:
    """Reads messages from a file descriptor; iteration ends at end of file."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=1 << 30)

    def __iter__(self) -> Iterator[Any]:
        while True:
            yield from self._unpacker
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                return
            self._unpacker.feed(chunk)

    def close(self) -> None:
        os.close(self._fd)
