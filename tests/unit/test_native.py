"""The compiled projection modules (workers/native.py): they load only when built from the
sources as they are, ``FORUM_NATIVE=0`` turns them off, and they project exactly what the
sources do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from events.codec import encode
from tests.builders import NOW, one_of_each, post_added, thread_started
from workers import native

ROOT = Path(__file__).resolve().parents[2]

# Projects the events given as JSON lines on stdin with every projection, from a few sets
# of checkpoints, and prints the batches' commands: what a replay and live projection send.
_PROJECT = """
import sys
from events.codec import decode
from workers import native
import msgspec
from workers.apply import Target, apply
from workers.projections import PROJECTIONS
from workers.readmodels import Namespace

feed = [(n, decode(line)) for n, line in enumerate(sys.stdin.read().split("\\n")[:-1], 1)]
targets = [Target(p, Namespace(f"f:{name}")) for name, p in PROJECTIONS.items()]
for checkpoints in ([0] * len(targets), list(range(0, 3 * len(targets), 3))):
    commands = apply(feed, targets, checkpoints).commands()
    sys.stdout.write(msgspec.msgpack.encode(commands).hex() + "\\n")
sys.stdout.write(f"compiled={native.compiled()}\\n")
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


def _project(feed: str, native_wanted: bool) -> list[str]:
    env = {**os.environ, "FORUM_NATIVE": "1" if native_wanted else "0"}
    done = subprocess.run([sys.executable, "-c", _PROJECT], input=feed, text=True,
                          capture_output=True, cwd=ROOT, env=env, timeout=120, check=True)
    return done.stdout.splitlines()


built = pytest.mark.skipif(not native.fresh(), reason="run python -m workers.compile first")


@built
def test_compiled_modules_project_exactly_what_the_sources_do() -> None:
    feed = _feed()
    compiled, interpreted = _project(feed, True), _project(feed, False)
    assert compiled[-1] == "compiled=True"
    assert interpreted[-1] == "compiled=False"
    assert compiled[:-1] == interpreted[:-1]


def test_forum_native_0_loads_every_module_from_source() -> None:
    probe = "import importlib; from workers import native; print(' '.join(" \
            "importlib.import_module(m).__file__ for m in native.MODULES))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "FORUM_NATIVE": "0"}, check=True)
    files = done.stdout.split()
    assert len(files) == len(native.MODULES)
    assert all(f.endswith(".py") for f in files)


def _tree(tmp_path: Path) -> Path:
    """A copy of the compiled modules' sources, 'built': extension files and a manifest."""
    for module in native.MODULES:
        target = native.source(module, tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(native.source(module), target)
        target.with_name(target.stem + EXTENSION_SUFFIXES[0]).write_bytes(b"")
    digests = {m: native.digest(native.source(m, tmp_path)) for m in native.MODULES}
    native.manifest(tmp_path).write_text(json.dumps(digests))
    return tmp_path


def test_a_build_of_the_current_sources_is_fresh(tmp_path: Path) -> None:
    assert native.fresh(_tree(tmp_path))


def test_an_edited_source_makes_the_whole_build_stale(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    edited = native.source("workers.batch", root)
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert not native.fresh(root)


def test_a_missing_extension_is_no_build(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    extension = native.extension("workers.apply", root)
    assert extension is not None
    extension.unlink()
    assert not native.fresh(root)


def test_a_missing_or_broken_manifest_is_no_build(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    manifest = native.manifest(root)
    manifest.write_text("{not json")
    assert not native.fresh(root)
    manifest.unlink()
    assert not native.fresh(root)
