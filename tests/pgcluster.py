"""A PostgreSQL cluster of a test's own: freshly initialised, so its transaction counter is
low, as on a new server or a managed service a board is moved to.

Made with the server binaries of PostgreSQL 15 in a temporary directory (data and unix
socket), listening on 127.0.0.1 on a free port with trust authentication, and stopped and
removed by ``stop``: nothing else on the machine is touched. As root, initdb and the server
run as the ``postgres`` user (neither runs as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import free_port

BIN = Path(os.environ.get("FORUM_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (BIN / "initdb").exists() and (BIN / "pg_ctl").exists()


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="forum-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.started = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        done = subprocess.run([*self._as, *argv], capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> Cluster:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync", "--no-instructions", "-E", "UTF8",
                  "--locale=C")
        options = " ".join([
            "-c listen_addresses=127.0.0.1", f"-c port={self.port}",
            f"-c unix_socket_directories={self.dir}", "-c fsync=off",
            "-c synchronous_commit=off", "-c full_page_writes=off",
            "-c shared_buffers=16MB", "-c max_connections=40",
        ])
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w",
                  "-l", str(self.dir / "server.log"), "start")
        self.started = True
        return self

    def stop(self) -> None:
        try:
            if self.started:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                              "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
