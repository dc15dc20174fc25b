"""The compiled projection path (hatch_build.py): built into the wheel, never into the
source tree, from modules that exist, and projecting exactly what their sources do."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from datetime import timedelta
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from events.codec import encode
from tests.builders import NOW, one_of_each, post_added, thread_started
from workers import apply

ROOT = Path(__file__).resolve().parents[2]
HOOK = tomllib.loads((ROOT / "pyproject.toml").read_text())[
    "tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]

# Projects the events given as JSON lines on stdin with every projection, from a few sets
# of checkpoints, and prints the batches' commands: what a replay and live projection send.
_PROJECT = """
import sys
import msgspec
from events.codec import decode
from workers import apply as stage
from workers.apply import Target, apply
from workers.projections import PROJECTIONS
from workers.readmodels import Namespace

feed = [(n, decode(line)) for n, line in enumerate(sys.stdin.read().split("\\n")[:-1], 1)]
targets = [Target(p, Namespace(f"f:{name}")) for name, p in PROJECTIONS.items()]
for checkpoints in ([0] * len(targets), list(range(0, 3 * len(targets), 3))):
    commands = apply(feed, targets, checkpoints).commands()
    sys.stdout.write(msgspec.msgpack.encode(commands).hex() + "\\n")
sys.stdout.write(f"from {stage.__file__}\\n")
"""

_BODIES = [
    "plain words", "two\nlines\r\nand\rthree", "<script>alert(1)</script> & \"q\" 'a'",
    "[b]bold[/b] [i]it[/i] [url=https://x.example]x[/url] [quote=a;post=1]q[/quote]",
    "[b]unclosed [quote] [/i]", "tab\there \x00\x07\x1b\x7f\x85 controls",
    "ünïcödé 💬 " * 40, "",
]


def _feed() -> str:
    events = list(one_of_each())
    thread = thread_started(9_001, forum="history")
    events.append(thread)
    for number, body in enumerate(_BODIES, start=1):
        events.append(post_added(9_001, number, body=body,
                                 at=NOW + timedelta(minutes=number)))
    return "\n".join(encode(e).decode() for e in events) + "\n"


def _project(feed: str, tmp_path: Path, *, sources: bool) -> list[str]:
    """Run in a directory of its own, so that only the environment says where the
    modules come from: the checkout (``sources``) or the installed package."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONSAFEPATH"] = "1"
    if sources:
        env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", _PROJECT], input=feed, text=True,
                          capture_output=True, cwd=tmp_path, env=env, timeout=120,
                          check=True)
    return done.stdout.splitlines()


def test_every_compiled_module_is_a_source_of_the_package() -> None:
    modules = HOOK["modules"]
    assert modules and len(set(modules)) == len(modules)
    for module in modules:
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_the_source_tree_holds_no_build() -> None:
    """A compiled file beside a source would shadow it, whatever the source says now."""
    stray = [path for package in ("events", "common", "service", "workers")
             for path in (ROOT / package).rglob("*")
             if any(path.name.endswith(suffix) for suffix in EXTENSION_SUFFIXES)]
    stray += list(ROOT.glob("*__mypyc*"))
    assert not stray, f"delete these (a build written into the checkout): {stray}"


@pytest.mark.skipif((apply.__file__ or "").endswith(".py"),
                    reason="the installed package is not compiled (.ci/run installs it so)")
def test_compiled_modules_project_exactly_what_the_sources_do(tmp_path: Path) -> None:
    feed = _feed()
    compiled = _project(feed, tmp_path, sources=False)
    interpreted = _project(feed, tmp_path, sources=True)
    assert not compiled[-1].endswith(".py")
    assert interpreted[-1] == f"from {ROOT / 'workers' / 'apply.py'}"
    assert compiled[:-1] == interpreted[:-1]
