"""What every command shows, the same way: progress of long work and tables of results; a rich bar and rich tables
on a terminal, plain lines without one (``nohup``, SLURM, a pipe: full width, never wrapped, no terminal codes).

Under ``nohup``, SLURM or a pipe a rich bar draws nothing until it ends (a 16-minute Set12 comparison printed
nothing at all), so there :class:`Steps` writes a plain line every ``every`` seconds and one at the end: what is
being done, how far (``12/68 images``), the rate, the time elapsed and the time left. ``DENOISE_PROGRESS`` chooses
for every command: ``auto`` (a bar on a terminal, else lines), ``bar``, ``lines`` or ``none``;
``DENOISE_PROGRESS_EVERY`` sets the seconds between lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import Any

#: seconds between two plain lines (the last line comes when the work ends, whatever the interval)
EVERY_SECONDS = 30.0
MODES = ("auto", "bar", "lines", "none")
MODE_ENV, EVERY_ENV = "DENOISE_PROGRESS", "DENOISE_PROGRESS_EVERY"


def progress_mode() -> str:
    """``bar``, ``lines`` or ``none``: ``DENOISE_PROGRESS`` when set, else a bar on a terminal and lines without."""
    mode = os.environ.get(MODE_ENV, "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV}={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "auto":
        return "bar" if sys.stdout.isatty() else "lines"
    return mode


def line_interval() -> float:
    """Seconds between two plain lines: ``DENOISE_PROGRESS_EVERY``, else :data:`EVERY_SECONDS`."""
    value = os.environ.get(EVERY_ENV)
    if value is None:
        return EVERY_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{EVERY_ENV}={value!r}: expected a number of seconds >= 0, e.g. 30")
    return seconds


def clock(seconds: float) -> str:
    """``h:mm:ss``."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _amount(count: float, unit: str) -> str:
    if unit == "bytes":
        return f"{count / 2**20:,.1f} MB"
    return f"{count:,.0f}"


class Steps:
    """``with Steps("evaluate", total=68 * 9, unit="runs") as steps: ... steps.advance(1, "bm3d on 03.png")``.

    ``every``: seconds between plain lines (default :func:`line_interval`); ``emit`` takes each plain line
    (default: printed to stdout at once; a Hydra job passes its logger's ``info``, so the lines reach its log file
    too); ``enabled=False`` shows nothing."""

    def __init__(
        self,
        what: str,
        total: float | None = None,
        unit: str = "",
        every: float | None = None,
        emit: Callable[[str], None] | None = None,
        enabled: bool = True,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.every = line_interval() if every is None else every
        self.emit = emit or (lambda line: print(line, flush=True))
        self.mode = progress_mode() if enabled else "none"
        self.done = 0.0
        self.note = ""
        self._bar: Any = None
        self._task: Any = None
        self._started = self._last = 0.0
        self._said = -1.0

    def __enter__(self) -> Steps:
        self._started = self._last = time.monotonic()
        if self.mode == "bar":
            from rich import progress

            counted = progress.DownloadColumn() if self.unit == "bytes" else progress.MofNCompleteColumn()
            columns = (progress.TextColumn("[bold]{task.description}"), progress.BarColumn(), counted)
            timing = (progress.TimeElapsedColumn(), progress.TimeRemainingColumn())
            self._bar = progress.Progress(*columns, *timing, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def advance(self, count: float = 1, note: str | None = None) -> None:
        """``count`` more done; ``note``: what is being done now (a file, a method)."""
        self.done += count
        if note is not None:
            self.note = note
        if self._bar is not None:
            self._bar.update(self._task, advance=count, description=f"{self.what} {self.note}".strip())
        elif self.mode == "lines" and time.monotonic() - self._last >= self.every:
            self.line()

    def line(self) -> None:
        """One plain line: what, how far, how fast, how long so far and how long still."""
        now = time.monotonic()
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        unit = f" {self.unit}" if self.unit and self.unit != "bytes" else ""
        far = _amount(self.done, self.unit) + (f"/{_amount(self.total, self.unit)}" if self.total else "") + unit
        left = clock((self.total - self.done) / rate) if self.total and rate > 0 else "?"
        speed = f"{rate / 2**20:.1f} MB/s" if self.unit == "bytes" else f"{rate:.2f}{unit or ' steps'}/s"
        note = f" ({self.note})" if self.note else ""
        self.emit(f"{self.what}: {far}{note}, {speed}, elapsed {clock(elapsed)}, ETA {left}")
        self._last, self._said = now, self.done

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)
        elif self.mode == "lines" and kind is None and self.done != self._said:  # the end, unless just said
            self.line()


def show_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], right: Collection[str] = ()
) -> None:
    """A table on stdout: rich on a terminal; else the title and ``|``-separated rows, each column as wide as its
    widest cell, at full width (a rich table in a pipe is cut to 80 columns, words split, names a user must type
    cut short). ``right``: the columns aligned right (numbers)."""
    cells = [[str(cell) for cell in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right" if column in right else "left", overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max([len(column), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if c in right else v.ljust(w) for v, w, c in zip(values, widths, columns, strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    print("\n".join([title, line(list(columns)), rule, *(line(row) for row in cells)]), flush=True)
