"""Progress of a long operator command on stderr: a bar on a terminal, a line every few
seconds otherwise (a log file, a pipe, a process manager)."""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Reporter(Protocol):
    def __call__(self, done: int, final: bool = False) -> None: ...


def reporter(total: int, *, verb: str, label: str, unit: str = "events") -> Reporter:
    """``verb`` heads the bar ("replaying"); ``label`` heads each plain line ("replay
    thread_page"); ``done`` counts ``unit``s, out of ``total``."""
    started = time.monotonic()
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn(verb), BarColumn(), MofNCompleteColumn(),
                       TextColumn(f"{{task.fields[rate]}} {unit}/s"), TimeRemainingColumn(),
                       transient=False)
        bar.start()
        task = bar.add_task(verb, total=max(total, 1), rate="0")

        def show(done: int, final: bool = False) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=min(done, total), rate=f"{rate:,.0f}")
            if final:
                bar.stop()

        return show
    last = [0.0]

    def log(done: int, final: bool = False) -> None:
        now = time.monotonic()
        if now - last[0] >= 2 or final:
            last[0] = now
            rate = done / max(now - started, 1e-6)
            eta = (total - done) / rate if rate and total > done else 0
            sys.stderr.write(f"{label}: {done}/{total} {unit}, "
                             f"{rate:,.0f} {unit}/s, eta {eta:,.0f}s\n")

    return log


class FileReporter(Protocol):
    def __call__(self, read: int, done: int) -> None:
        """``read`` bytes of the file so far, ``done`` units so far."""
        ...

    def end(self) -> None: ...


QUIET_SECONDS = 5.0


def file_reporter(size: int, *, verb: str, label: str, unit: str) -> FileReporter:
    """Progress through a file of ``size`` bytes read once: the bar and the time left
    follow the bytes read, the rate counts ``unit``s done. On a terminal, a bar; otherwise
    a line every ``QUIET_SECONDS``, the first only after as long, so that a short run
    writes nothing but its own output (a final line only after an earlier one)."""
    if sys.stderr.isatty():
        return _FileBar(size, verb, unit)
    return _FileLog(size, label, unit)


class _FileBar:
    def __init__(self, size: int, verb: str, unit: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._started = time.monotonic()
        self._bar = Progress(TextColumn(verb), BarColumn(),
                             TextColumn(f"{{task.fields[done]}} {unit}"),
                             TextColumn(f"{{task.fields[rate]}} {unit}/s"),
                             TimeRemainingColumn(), transient=False)
        self._bar.start()
        self._task = self._bar.add_task(verb, total=max(size, 1), done="0", rate="0")

    def __call__(self, read: int, done: int) -> None:
        rate = done / max(time.monotonic() - self._started, 1e-6)
        self._bar.update(self._task, completed=read, done=f"{done:,}", rate=f"{rate:,.0f}")

    def end(self) -> None:
        self._bar.stop()


class _FileLog:
    def __init__(self, size: int, label: str, unit: str) -> None:
        self._size, self._label, self._unit = size, label, unit
        self._started = self._last = time.monotonic()
        self._said = False
        self._read = self._done = 0

    def __call__(self, read: int, done: int) -> None:
        self._read, self._done = read, done
        if time.monotonic() - self._last >= QUIET_SECONDS:
            self._say()

    def end(self) -> None:
        if self._said:
            self._say()

    def _say(self) -> None:
        now = time.monotonic()
        self._last, self._said = now, True
        elapsed = max(now - self._started, 1e-6)
        share = self._read / self._size if self._size else 1.0
        eta = elapsed * (1 - share) / share if share else 0.0
        sys.stderr.write(f"{self._label}: {self._done:,} {self._unit} ({share:.0%} of the "
                         f"file), {self._done / elapsed:,.0f} {self._unit}/s, "
                         f"eta {eta:,.0f}s\n")
