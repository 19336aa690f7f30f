"""A real command in a pseudo-terminal, and the screen a terminal would show for its output.

`run_in_terminal` starts a process with its stdin, stdout and stderr on a pty of a given size
(python's `pty`, the kernel's line discipline: `\\n` reaches the terminal as `\\r\\n`) and
returns every byte it wrote, in order. `Screen` replays those bytes as a VT100-style terminal
with unlimited scrollback would: printable text, CR, LF, backspace, cursor up/down/left/right,
column, erase in line and in display, SGR styles (dropped). Any other escape sequence is an
error, so a test sees exactly what reached the terminal and nothing is silently ignored.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TerminalRun:
    returncode: int
    output: str  # every byte written to the terminal, decoded


def run_in_terminal(
    argv: Sequence[str],
    cwd: Path,
    *,
    columns: int = 100,
    rows: int = 30,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> TerminalRun:
    """Run `argv` with a pty of `columns` x `rows` as its terminal; what it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    full_env = {**os.environ, **(env or {}), "TERM": "xterm-256color"}
    full_env.pop("COLUMNS", None)
    full_env.pop("LINES", None)
    proc = subprocess.Popen(
        list(argv), cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=full_env, start_new_session=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no output for {timeout} s from {argv}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        returncode = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return TerminalRun(returncode, b"".join(chunks).decode("utf-8", "replace"))


_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Screen:
    """The text a terminal `columns` wide shows after `feed(output)`, scrollback included."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.lines: list[list[str]] = [[]]
        self.row = 0
        self.column = 0

    def feed(self, output: str) -> Screen:
        index = 0
        while index < len(output):
            char = output[index]
            if char == "\x1b":
                match = _CSI.match(output, index)
                if match is None:
                    raise ValueError(f"unexpected escape sequence at {index}: {output[index : index + 12]!r}")
                self._csi(match.group(1), match.group(2))
                index = match.end()
                continue
            if char == "\r":
                self.column = 0
            elif char == "\n":
                self._down()
            elif char == "\b":
                self.column = max(0, self.column - 1)
            elif char >= " ":
                self._put(char)
            index += 1
        return self

    def text(self) -> list[str]:
        """The screen's lines, trailing spaces and trailing empty lines removed."""
        lines = ["".join(line).rstrip() for line in self.lines]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def _put(self, char: str) -> None:
        if self.column >= self.columns:  # autowrap
            self.column = 0
            self._down()
        line = self.lines[self.row]
        line.extend(" " * (self.column + 1 - len(line)))
        line[self.column] = char
        self.column += 1

    def _down(self) -> None:
        self.row += 1
        if self.row == len(self.lines):
            self.lines.append([])

    def _csi(self, params: str, command: str) -> None:
        count = int(params) if params.isdigit() else 1
        if command == "m" or params.startswith("?"):
            return  # styles; cursor visibility
        if command == "A":
            self.row = max(0, self.row - count)
        elif command == "B":
            for _ in range(count):
                self._down()
        elif command == "C":
            self.column = min(self.columns - 1, self.column + count)
        elif command == "D":
            self.column = max(0, self.column - count)
        elif command == "G":
            self.column = min(self.columns - 1, count - 1)
        elif command == "K" and params in ("", "0"):
            del self.lines[self.row][self.column :]
        elif command == "J" and params in ("", "0"):
            del self.lines[self.row][self.column :]
            del self.lines[self.row + 1 :]
        else:
            raise ValueError(f"unexpected control sequence ESC[{params}{command}")
