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
