"""Builds the compiled projection modules (workers/native.py says which and why):

    python -m workers.compile          # compile in place; exit 1 if it could not
    python -m workers.compile --check  # exit 0 if a build from the current sources is there
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from workers.native import (
    GROUP,
    MODULES,
    ROOT,
    compiled,
    digest,
    extension,
    fresh,
    manifest,
    source,
)


def build() -> None:
    """Compile the modules in place and record what they were built from. Needs mypy,
    setuptools and a C compiler (the ``dev`` and ``native`` extras, and gcc)."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    digests = {module: digest(source(module)) for module in MODULES}  # before compiling:
    manifest().unlink(missing_ok=True)  # an edit meanwhile makes the build stale, not fresh
    # Unlinked, not overwritten: a running process keeps the file it has mapped, where
    # writing over it in place would crash that process.
    for old in [*ROOT.glob(f"{GROUP}__mypyc.*"), *filter(None, map(extension, MODULES))]:
        old.unlink()
    # Compiled from a copy: mypy must not take an installed package's site-packages (a
    # Docker image) for a source root. In a checkout it takes the project's settings.
    config = ROOT / "pyproject.toml"
    flags = [f"--config-file={config}"] if config.exists() else ["--ignore-missing-imports"]
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="forum-native-") as scratch:
        src = Path(scratch) / "src"
        for package in ("events", "common", "workers"):
            shutil.copytree(ROOT / package, src / package,
                            ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        os.chdir(src)
        try:
            extensions = mypycify(
                [*flags, "--cache-dir=/dev/null",
                 *(str(source(m, src).relative_to(src)) for m in MODULES)],
                opt_level="3", group_name=GROUP, target_dir=str(Path(scratch) / "c"),
            )
            dist = Distribution({"name": GROUP, "ext_modules": extensions})
            command = dist.get_command_obj("build_ext")
            command.inplace = True  # type: ignore[attr-defined]
            command.build_temp = str(Path(scratch) / "o")  # type: ignore[attr-defined]
            dist.run_command("build_ext")
        finally:
            os.chdir(here)
        built = [*src.glob(f"{GROUP}__mypyc.*"), *filter(None, (extension(m, src)
                                                               for m in MODULES))]
        for path in built:
            shutil.copy2(path, ROOT / path.relative_to(src))
    manifest().write_text(json.dumps(digests, indent=1) + "\n")


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    if list(argv) == ["--check"]:
        is_fresh = fresh()
        state = "fresh" if is_fresh else "missing or stale"
        print(f"compiled projection modules: {state}; in use: {compiled()}")
        return 0 if is_fresh else 1
    if argv:
        print("usage: python -m workers.compile [--check]", file=sys.stderr)
        return 2
    try:
        build()
    except (Exception, SystemExit) as error:  # mypy exits on a type error
        print(f"workers.compile: not compiled ({type(error).__name__}: {error}); "
              "projection runs as plain Python", file=sys.stderr)
        return 1
    print(f"workers.compile: compiled {len(MODULES)} modules", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
