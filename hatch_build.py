"""The wheel's compiled projection path: mypyc at build time, when asked for.

A replay is CPU-bound Python. The modules listed under
``[tool.hatch.build.targets.wheel.hooks.custom]`` in pyproject.toml are pure, synchronous and
typed (mypy --strict), so mypyc compiles them unchanged into C extensions; a replay runs
them about a third faster (bench/results/2026-12-02-compiled.md). The wheel carries each
extension beside its module's source, which it shadows (Python finds an extension before
a ``.py``); built together, they are never stale.

Off by default, so that any machine builds a working pure-Python wheel; on with
``HATCH_BUILD_HOOK_ENABLE_CUSTOM=1`` (hatchling's switch for this hook), which also adds
the hook's build dependencies (mypy, setuptools, msgspec for the types) and needs a C
compiler. Standard wheels only: an editable install runs its sources. Compiled from a copy
in a temporary directory, so nothing is written into the source tree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

GROUP = "forum_compiled"  # the shared library, forum_compiled__mypyc.*.so, at the top


class CompileProjection(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        from mypyc.build import mypycify
        from setuptools import Distribution

        modules: list[str] = self.config["modules"]
        root = Path(self.root)
        self._scratch = tempfile.TemporaryDirectory(prefix="forum-compile-")
        scratch = Path(self._scratch.name)
        src = scratch / "src"
        # Everything the compiled modules import, so that mypy sees their real types.
        for package in ("events", "common", "workers"):
            shutil.copytree(root / package, src / package,
                            ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        here = os.getcwd()
        os.chdir(src)  # mypy and setuptools write where they run: not in the source tree
        try:
            extensions = mypycify(
                [f"--config-file={root / 'pyproject.toml'}", "--cache-dir=/dev/null",
                 *(m.replace(".", "/") + ".py" for m in modules)],
                opt_level="3", group_name=GROUP, target_dir=str(scratch / "c"),
            )
            dist = Distribution({"name": GROUP, "ext_modules": extensions})
            command = dist.get_command_obj("build_ext")
            command.inplace = True
            command.build_temp = str(scratch / "o")
            dist.run_command("build_ext")
        finally:
            os.chdir(here)
        built = [path for name in (f"{GROUP}__mypyc", *modules) for suffix in EXTENSION_SUFFIXES
                 if (path := src / (name.replace(".", "/") + suffix)).exists()]
        if len(built) != len(modules) + 1:  # one per module, and the group's library
            raise RuntimeError(f"mypyc built {len(built)} of {len(modules) + 1} files")
        for path in built:
            build_data["force_include"][str(path)] = str(path.relative_to(src))
        build_data["pure_python"] = False
        build_data["infer_tag"] = True  # this interpreter and platform

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            scratch.cleanup()
