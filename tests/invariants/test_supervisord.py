"""The stack under supervisord (deploy/supervisord.conf), as an operator would run it.

A SIGKILLed worker — Dramatiq's main process or one of its worker processes — is restarted
by supervisord and everything written meanwhile gets projected; stopping the whole group
while requests are in flight loses no acknowledged write, and after starting it again
everything is projected.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from events.threads import PostAdded
from service.settings import Settings
from tests.background import open_thread
from tests.conftest import FORUM, ROOT, process_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VENV_BIN = ROOT / ".venv" / "bin"
CONF = ROOT / "deploy" / "supervisord.conf"


# -- processes --------------------------------------------------------------------------

def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


class Supervisor:
    """supervisord running deploy/supervisord.conf in a private directory."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.dir = tmp / "supervisor"
        self.dir.mkdir(exist_ok=True)
        self.env = process_env(settings, FORUM_SUPERVISOR_DIR=str(self.dir))
        self.url = f"http://127.0.0.1:{settings.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: set[int] = set()  # every process it ever ran, to leave none behind

    def start(self) -> None:
        log = open(self.dir / "stdout.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "supervisord"), "-c", str(CONF)], env=self.env, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_running()

    def ctl(self, *args: str) -> str:
        done = subprocess.run([str(VENV_BIN / "supervisorctl"), "-c", str(CONF), *args],
                              env=self.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        return done.stdout + done.stderr

    def states(self) -> dict[str, tuple[str, int | None]]:
        out: dict[str, tuple[str, int | None]] = {}
        for line in self.ctl("status").splitlines():
            match = re.match(r"forum:(\S+)\s+(\S+)(?:\s+pid (\d+),)?", line)
            if match:
                out[match[1]] = (match[2], int(match[3]) if match[3] else None)
        self.remember()
        return out

    def remember(self) -> None:
        if self.proc is not None:
            self.seen.update(descendants(self.proc.pid))

    def wait_running(self, *, not_pid: int | None = None, timeout: float = 45) -> int:
        """Wait until both programs are RUNNING and /health answers; the worker's pid."""
        deadline = time.monotonic() + timeout
        states: dict[str, tuple[str, int | None]] = {}
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.logs()
            with contextlib.suppress(subprocess.TimeoutExpired):
                states = self.states()
            worker = states.get("forum-worker", ("", None))
            api = states.get("forum-api", ("", None))
            if (worker[0] == "RUNNING" and api[0] == "RUNNING" and worker[1] != not_pid
                    and _healthy(self.url)):
                assert worker[1] is not None
                return worker[1]
            time.sleep(0.2)
        raise AssertionError(f"supervisord did not get the group running: {states}\n"
                             + self.logs())

    def worker_processes(self, main: int) -> list[int]:
        """The Dramatiq worker processes under the worker program's main process."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = children(main)
            if found:
                self.remember()
                return found
            time.sleep(0.1)
        raise AssertionError("Dramatiq started no worker process\n" + self.logs())

    def logs(self) -> str:
        text = []
        for name in ("stdout.log", "supervisord.log", "forum-worker.log"):
            path = self.dir / name
            if path.exists():
                text.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(text)

    def shutdown(self) -> None:
        """SIGTERM supervisord (it stops the group gracefully), then make sure that no
        process it ever started is left behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.remember()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in self.seen:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def supervisor(stack_settings: Settings, tmp_path: Path) -> Iterator[Supervisor]:
    running = Supervisor(stack_settings, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.shutdown()


# -- writing ----------------------------------------------------------------------------

class Writer:
    """Threads posting replies to one thread without pause, recording every 2xx answer."""

    def __init__(self, url: str, thread_id: int, threads: int = 2) -> None:
        self.url = url
        self.thread_id = thread_id
        self.stop = threading.Event()
        self.acknowledged: list[dict[str, int]] = []
        self.failures = 0
        self.server_errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def __enter__(self) -> Writer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, which: int) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=15) as http:
            while not self.stop.is_set():
                n += 1
                try:
                    r = http.post(f"/api/threads/{self.thread_id}/posts",
                                  json={"body": f"writer {which} reply {n}",
                                        "guest_name": f"writer{which}"})
                except httpx.HTTPError:
                    with self._lock:
                        self.failures += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    if 200 <= r.status_code < 300:
                        self.acknowledged.append(r.json())
                    elif r.status_code >= 500 and r.status_code != 503:
                        self.server_errors.append(f"{r.status_code} {r.text[:300]}")
                    else:
                        self.failures += 1

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for(self, more: int, timeout: float = 30) -> None:
        target = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline, f"writes stalled at {self.count()}"
            time.sleep(0.05)


def start_thread(url: str) -> int:
    return open_thread(url, "ops", "Under supervision", "op")[0]


def forum_status(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([*FORUM, "status", "--json"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_projected(env: dict[str, str], timeout: float = 30) -> dict[str, object]:
    """Until every projection's checkpoint has reached the head of the log."""
    deadline = time.monotonic() + timeout
    while True:
        status = forum_status(env)
        projections = status["projections"]
        assert isinstance(projections, dict)
        if all(p["position"] is not None and p["position"] >= status["head"]
               and not p["rebuilding"] for p in projections.values()):
            return status
        assert time.monotonic() < deadline, f"projections did not catch up: {status}"
        time.sleep(0.3)


def all_posts(url: str, thread_id: int, min_position: int) -> list[dict[str, object]]:
    """Every post of the thread as the API serves it, once it has reached the position."""
    posts: list[dict[str, object]] = []
    page, pages = 1, 1
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=url, timeout=15) as http:
        while page <= pages:
            r = http.get(f"/api/threads/{thread_id}", params={"page": page, "per_page": 100},
                         headers={"X-Min-Position": str(min_position)})
            if r.status_code == 503 and time.monotonic() < deadline:
                continue  # the restarted worker is still catching up
            assert r.status_code == 200, r.text
            posts.extend(r.json()["posts"])
            pages = r.json()["pages"]
            page += 1
    return posts


async def posts_in_log(store, thread_id: int) -> set[int]:  # type: ignore[no-untyped-def]
    records = await store.read_stream(f"thread-{thread_id}")
    return {r.event.post_id for r in records if isinstance(r.event, PostAdded)}


# -- the tests --------------------------------------------------------------------------

async def test_a_sigkilled_worker_is_restarted_by_supervisord_and_every_write_meanwhile_is_projected(  # noqa: E501
    supervisor: Supervisor, store,  # type: ignore[no-untyped-def]
):
    thread_id = start_thread(supervisor.url)
    with Writer(supervisor.url, thread_id) as writer:
        writer.wait_for(5)

        # Dramatiq's main process: supervisord sees the program die and starts it again.
        main = supervisor.wait_running()
        orphans = supervisor.worker_processes(main)
        os.kill(main, signal.SIGKILL)
        writer.wait_for(5)
        main = supervisor.wait_running(not_pid=main)
        writer.wait_for(5)

        # One of its worker processes: Dramatiq's main process notices, stops the rest and
        # exits non-zero, and supervisord starts the program again.
        child = supervisor.worker_processes(main)[0]
        os.kill(child, signal.SIGKILL)
        writer.wait_for(5)
        main = supervisor.wait_running(not_pid=main)
        writer.wait_for(10)

    assert not writer.server_errors, writer.server_errors
    acknowledged = writer.acknowledged
    assert len(acknowledged) >= 30
    last = max(a["position"] for a in acknowledged)
    posts = all_posts(supervisor.url, thread_id, last)
    assert [p["number"] for p in posts] == list(range(1, len(posts) + 1))
    assert {a["post_id"] for a in acknowledged} <= {p["id"] for p in posts}
    assert {p["id"] for p in posts} == await posts_in_log(store, thread_id)
    wait_projected(supervisor.env)

    # The Dramatiq worker process orphaned by its main's SIGKILL does not outlive it.
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in orphans if _alive(pid)], (
        "a Dramatiq worker process outlived its killed main process")


async def test_stopping_the_group_mid_request_loses_no_acknowledged_write_and_a_restart_projects_everything(  # noqa: E501
    supervisor: Supervisor, store,  # type: ignore[no-untyped-def]
):
    thread_id = start_thread(supervisor.url)
    with Writer(supervisor.url, thread_id, threads=3) as writer:
        writer.wait_for(20)
        before = writer.count()
        out = supervisor.ctl("stop", "forum:*")
        assert "forum-api: stopped" in out and "forum-worker: stopped" in out, out
        assert writer.count() > before or writer.failures, "no request was in flight"
        time.sleep(0.3)
    assert not writer.server_errors, writer.server_errors

    # Every request that was answered 2xx is in the log.
    acknowledged = {a["post_id"] for a in writer.acknowledged}
    logged = await posts_in_log(store, thread_id)
    assert acknowledged <= logged, f"acknowledged but not in the log: {acknowledged - logged}"

    # Started again, everything in the log gets projected: nothing in flight is lost.
    supervisor.ctl("start", "forum:*")
    supervisor.wait_running()
    status = wait_projected(supervisor.env)
    head = status["head"]
    assert isinstance(head, int)
    posts = all_posts(supervisor.url, thread_id, head)
    assert {p["id"] for p in posts} == logged
    assert [p["number"] for p in posts] == list(range(1, len(posts) + 1))

    # The same with SIGTERM to supervisord itself (what systemd or a container does): it
    # stops both programs gracefully and exits 0, leaving no process behind.
    assert supervisor.proc is not None
    with Writer(supervisor.url, thread_id, threads=3) as writer:
        writer.wait_for(20)
        supervisor.remember()
        supervisor.proc.send_signal(signal.SIGTERM)
        assert supervisor.proc.wait(timeout=45) == 0, supervisor.logs()
    assert not writer.server_errors, writer.server_errors
    assert not [pid for pid in supervisor.seen if _alive(pid)], "a process was left behind"
    logged = await posts_in_log(store, thread_id)
    acknowledged = {a["post_id"] for a in writer.acknowledged}
    assert acknowledged <= logged, f"acknowledged but not in the log: {acknowledged - logged}"
    supervisor.start()
    head = wait_projected(supervisor.env)["head"]
    assert isinstance(head, int)
    assert {p["id"] for p in all_posts(supervisor.url, thread_id, head)} == logged
