"""What the benchmarks measure beside their subject, and how they print it: round trips
and CPU (the physical limits a figure is a ratio to), medians, percentiles and tables."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

# -- physical limits ----------------------------------------------------------------------

async def redis_round_trips(redis: Redis, count: int = 500) -> list[float]:
    """Seconds per PING, ``count`` times, one after another."""
    out = []
    for _ in range(count):
        start = time.perf_counter()
        await redis.ping()
        out.append(time.perf_counter() - start)
    return out


async def pg_round_trips(conn: asyncpg.Connection, count: int = 500) -> list[float]:
    """Seconds per ``SELECT 1`` on one connection, ``count`` times, one after another."""
    out = []
    for _ in range(count):
        start = time.perf_counter()
        await conn.fetchval("SELECT 1")
        out.append(time.perf_counter() - start)
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats() -> list[tuple[int, int, int, float]]:
    """(pid, ppid, pgrp, cpu seconds) of every live process, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # fields[0] is the state (field 3)
        out.append((int(stat.parent.name), int(fields[1]), int(fields[2]),
                    (int(fields[11]) + int(fields[12])) / _TICK))
    return out


class CpuMeter:
    """CPU use over a window: this process (``bench``), process groups (a server and its
    uvicorn children: ``groups``) and process families (PostgreSQL's postmaster and its
    backends: ``parents``; shared with other users, so an upper bound)."""

    def __init__(self, groups: dict[str, int] | None = None,
                 parents: dict[str, int | None] | None = None) -> None:
        self.groups = groups or {}
        self.parents = {k: v for k, v in (parents or {}).items() if v is not None}
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def _now(self) -> dict[str, float]:
        stats = _proc_stats()
        out = {name: sum(s[3] for s in stats if s[2] == pgid)
               for name, pgid in self.groups.items()}
        for name, pid in self.parents.items():
            out[name] = sum(s[3] for s in stats if pid in (s[0], s[1]))
        out["bench"] = time.process_time()
        return out

    def start(self) -> None:
        self._start = self._now()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Percent of one core used by each, since ``start``."""
        end = self._now()
        wall = time.perf_counter() - self._wall
        return {k: 100 * (end[k] - self._start.get(k, end[k])) / wall for k in end}


# -- statistics and output ----------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of the per-round ratios: each round's two sides ran back to back, so a
    round's ratio cancels the slow swings of the machine's other load better than the
    ratio of the two medians does."""
    return median([n / d for n, d in zip(numerators, denominators, strict=True) if d])


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
                notes: Sequence[str] = ()) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    print()
    print(title)
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
