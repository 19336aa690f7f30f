"""The live status area: kept at the bottom of the terminal while pytest's lines scroll above it.

A StatusDisplay (orchestrator/report/status.py) driven by the session's loop, on its thread:
no thread of its own, no rich `Live` (which would redirect stdout and fight pytest's
TerminalWriter). pytest stays the only writer of its lines; the area lives in the rows below
pytest's current line, and the cursor is always left where pytest expects it:

- drawn: a newline, the area's lines (rendered by rich, cropped to the terminal's width), then
  the cursor moves back up to pytest's line and to the column pytest's writer is at;
- erased: before pytest writes anything (its writer's file is wrapped here), one "erase from
  the cursor to the end of the screen", so pytest's text goes exactly where it would have gone
  and nothing of the area is left between its lines;
- redrawn by `update`: from the lines rendered last as soon as pytest's writing erased it (at
  most every `REDRAW_SECONDS`), re-rendered from a fresh RunStatus when events arrived (at most
  every `RENDER_SECONDS`) and every `TICK_SECONDS` for the elapsed time;
- gone at `close`, before pytest's summary, which then reads as plain pytest's.

What the lines say is orchestrator/report/live_view.py (pure, unit-tested); this module is the
terminal's side only. Styles follow pytest's own writer (`hasmarkup`: --color, NO_COLOR,
PY_COLORS, FORCE_COLOR).
"""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.text import Text

from orchestrator.report.live_view import ViewLine, view_lines
from orchestrator.report.status import RunStatus

__all__ = ["REDRAW_SECONDS", "RENDER_SECONDS", "TICK_SECONDS", "LiveArea", "TerminalWriter"]

RENDER_SECONDS = 0.25
TICK_SECONDS = 1.0
REDRAW_SECONDS = 0.05
# ECMA-48: erase from the cursor to the end of the screen; cursor up N; cursor to column N.
_ERASE_BELOW = "\x1b[J"


class TerminalWriter(Protocol):
    """What the area needs of pytest's TerminalWriter (`config.get_terminal_writer()`)."""

    _file: TextIO
    hasmarkup: bool

    @property
    def fullwidth(self) -> int: ...

    @property
    def width_of_current_line(self) -> int: ...

    def line(self, s: str = "", **markup: bool) -> None: ...


class _EraseFirst:
    """pytest's writer's file, wrapped: the area is erased before anything is written."""

    def __init__(self, raw: TextIO, area: LiveArea) -> None:
        self._raw = raw
        self._area = area

    def write(self, text: str) -> int:
        if text:
            self._area.erase()
        return self._raw.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class LiveArea:
    """The live status area below pytest's output in a terminal (a StatusDisplay)."""

    def __init__(
        self,
        writer: TerminalWriter,
        now: float,
        height: Callable[[], int] = lambda: shutil.get_terminal_size().lines,
    ) -> None:
        self._writer = writer
        self._raw = writer._file
        self._color = bool(writer.hasmarkup)
        self._height = height
        # The lines rendered last (with their escapes) and how many rows of them are on screen.
        self._lines: list[str] = []
        self._drawn = 0
        self._changed = True
        self._rendered_at = -math.inf
        self._drawn_at = -math.inf
        self._started_at = now
        self._closed = False
        writer._file = _EraseFirst(self._raw, self)  # type: ignore[assignment]

    # -- StatusDisplay ----------------------------------------------------------------------

    def wake_at(self) -> float:
        if self._closed:
            return math.inf
        if not self._drawn and self._lines:
            return self._drawn_at + REDRAW_SECONDS
        return self._rendered_at + TICK_SECONDS

    def update(self, now: float, changed: bool, status: Callable[[], RunStatus]) -> None:
        if self._closed:
            return
        self._changed = self._changed or changed
        since = now - self._rendered_at
        if since >= TICK_SECONDS or (self._changed and since >= RENDER_SECONDS):
            self._lines = self._render(view_lines(status()))
            self._rendered_at = now
            self._changed = False
            self._draw(now)
        elif not self._drawn and self._lines and now - self._drawn_at >= REDRAW_SECONDS:
            self._draw(now)

    def notice(self, text: str) -> None:
        if self._writer.width_of_current_line:
            self._writer.line()  # the progress so far keeps its line; pytest's goes on below
        self._writer.line(text)

    def close(self) -> None:
        """Erase the area and give pytest's writer its file back."""
        if self._closed:
            return
        self.erase()
        self._raw.flush()
        self._writer._file = self._raw
        self._closed = True

    # -- the terminal -----------------------------------------------------------------------

    def erase(self) -> None:
        """Take the area off the screen (the cursor is on pytest's line, where pytest left it)."""
        if self._drawn:
            self._raw.write(_ERASE_BELOW)
            self._drawn = 0

    def _draw(self, now: float) -> None:
        """Put the area below pytest's current line and the cursor back where pytest left it."""
        column = self._writer.width_of_current_line % max(1, self._writer.fullwidth)
        room = max(1, self._height() - 2)
        lines = self._lines[:room]
        if not lines:
            return
        out = [_ERASE_BELOW if self._drawn else ""]
        if column:
            out.append("\r\n")
        out.append("\r\n".join(lines))
        rows_below = len(lines) if column else len(lines) - 1
        if rows_below:
            out.append(f"\x1b[{rows_below}A")
        out.append(f"\r\x1b[{column}C" if column else "\r")
        self._raw.write("".join(out))
        self._raw.flush()
        self._drawn = len(lines)
        self._drawn_at = now

    def _render(self, lines: tuple[ViewLine, ...]) -> list[str]:
        """The lines as the terminal gets them: styled by rich, cropped to the terminal's width."""
        width = max(20, self._writer.fullwidth - 1)
        console = Console(
            file=io.StringIO(),
            width=width,
            force_terminal=True,
            color_system="standard" if self._color else None,
            highlight=False,
            markup=False,
            emoji=False,
            legacy_windows=False,
        )
        with console.capture() as captured:
            for line in lines:
                text = Text()
                for piece, style in line:
                    text.append(piece, style=(style or None) if self._color else None)
                console.print(text, no_wrap=True, overflow="ellipsis", crop=True)
        return captured.get().rstrip("\n").split("\n")
