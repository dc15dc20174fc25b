"""The projection path compiled to C with mypyc, and the guard that never runs a stale build.

A replay is CPU-bound Python: projecting an event costs several times what reading and
decoding it does. The modules below are pure, synchronous and typed (mypy --strict), so
mypyc compiles them unchanged into extension modules beside their sources, which run the
same code about a third faster. ``python -m workers.compile`` builds them; deploy/dev.sh,
.ci/run and the Dockerfile do it for you. They are optional: without them the same code
runs as plain Python.

An extension module shadows its source, so one built from an older source would run old
code without a word. The build records a digest of every source it compiled; unless all
of them still match (and unless ``FORUM_NATIVE=0``), every one of these modules loads from
its source. It is all or none: they are compiled as one group, and a compiled module
cannot take an interpreted one's objects for its own (a ``Batch`` is a C type to them).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# Pure and synchronous only: mypyc trusts mypy's narrowing of types, which is not sound
# across an ``await`` that raises inside try/finally (the catch-up pass's), and bbcode.py
# subclasses an interpreted parser.
MODULES = (
    "workers.readmodels.formats",
    "workers.readmodels.keys",
    "workers.batch",
    "workers.apply",
    "workers.projections.base",
    "workers.projections.archives",
    "workers.projections.held",
    "workers.projections.member_stats",
    "workers.projections.thread_list",
    "workers.projections.thread_page",
    "workers.projections.unanswered",
    "workers.resp",
)
GROUP = "forum_native"  # the shared library: forum_native__mypyc.*.so beside workers/
ROOT = Path(__file__).resolve().parent.parent  # where the package ``workers`` lives


def source(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def manifest(root: Path = ROOT) -> Path:
    """Where the build records, per module, the digest of the source it compiled."""
    return root / "workers" / ".native.json"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension(module: str, root: Path = ROOT) -> Path | None:
    """The module's compiled file, if there is one."""
    base = root.joinpath(*module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.exists():
            return candidate
    return None


def fresh(root: Path = ROOT) -> bool:
    """Whether a build of every module is there, made from the sources as they are now."""
    try:
        digests = json.loads(manifest(root).read_text())
    except (OSError, ValueError):
        return False
    return all(
        extension(module, root) is not None and digests.get(module) == digest(
            source(module, root))
        for module in MODULES
    )


class _FromSource(importlib.abc.MetaPathFinder):
    """Finds these modules as their ``.py`` files, passing over any extension beside them."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source(fullname))


def select() -> bool:
    """Run by ``workers/__init__`` before any of these modules is imported: the compiled
    modules if they are fresh and wanted, else their sources. True if compiled."""
    if os.environ.get("FORUM_NATIVE", "1") != "0" and fresh():
        return True
    if not any(isinstance(finder, _FromSource) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FromSource())
    return False


def compiled() -> bool:
    """Whether the projection code running in this process is the compiled one."""
    module = sys.modules.get(MODULES[-1]) or importlib.import_module(MODULES[-1])
    return not (module.__file__ or "").endswith(".py")
