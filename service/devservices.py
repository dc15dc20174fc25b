"""Make sure PostgreSQL and Redis answer, starting private instances when they do not.

Used by ``forum dev`` and by the test suite. Nothing here is needed in production,
where the services are run by the machine (systemd, compose, a managed database...).

* :func:`postgres_answers` / :func:`redis_answers` only probe.
* :func:`ensure_postgres` / :func:`ensure_redis` probe, and when nothing answers start a
  throw-away server for the URL's host and port with its files under ``data_dir``.

Servers started here are **child processes of the caller, and the caller stops them**
(``proc.terminate(); proc.wait()``, or :func:`stop`). They stay in the caller's process
group, so a Ctrl-C at a terminal reaches them too. Their output goes to
``data_dir/"postgres.log"`` and ``data_dir/"redis.log"``.

PostgreSQL refuses to run as root: when the caller is root, the cluster is owned by and
run as the ``postgres`` system user (created with ``useradd`` if it does not exist), and
directories leading to ``data_dir`` get the search (``o+x``) bit if that user could not
otherwise reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pathlib
import pwd
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg
import redis

__all__ = [
    "ensure_postgres",
    "ensure_redis",
    "postgres_answers",
    "redis_answers",
    "stop",
]

T = TypeVar("T")

STARTUP_TIMEOUT = 30.0
"""Seconds a freshly started server gets to answer."""

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}  # noqa: S104
_PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql*/bin")
_REDIS_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/opt/homebrew/bin")
_PG_SERVICE_USER = "postgres"
# A Unix socket path is limited to ~107 bytes; leave room for "/.s.PGSQL.NNNNN".
_MAX_SOCKET_DIR = 90


# --------------------------------------------------------------------------- URLs


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in {_redact(url)}: {exc}") from None
    return parts.hostname or "127.0.0.1", port or default_port


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _tcp_answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running loop (an async test, say): use a private loop in a
    # short-lived thread rather than nesting loops.
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=runner, name="devservices-probe", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


# --------------------------------------------------------------------------- probes


def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    """True when a PostgreSQL server accepts connections at ``url``.

    A TCP connect first (fast "nothing there"), then ``SELECT 1`` over a short asyncpg
    connection. A server that is up but refuses *this* connection for a reason of its
    own (the database does not exist yet, unknown role, bad password, too many
    connections) still answers: starting another server on that port would not help.
    A server still starting up or shutting down does not answer.
    """
    host, port = _host_port(url, 5432)
    # No host in the URL (a Unix socket via ?host=/dir, say): let asyncpg find it.
    if urlsplit(url).hostname and not _tcp_answers(host, port, timeout):
        return False

    async def probe() -> bool:
        conn = await asyncpg.connect(dsn=url, timeout=timeout)
        try:
            return bool(await conn.fetchval("SELECT 1", timeout=timeout) == 1)
        finally:
            await conn.close(timeout=timeout)

    try:
        return _run_sync(probe())
    except asyncpg.CannotConnectNowError:  # starting up, shutting down, recovering
        return False
    except asyncpg.PostgresError:  # a real server, talking the protocol
        return True
    except Exception:  # refused, timed out, reset, or not PostgreSQL on that port
        return False


def redis_answers(url: str, timeout: float = 2.0) -> bool:
    """True when a Redis server answers ``PING`` at ``url``.

    A server that is up but rejects us (``NOAUTH``, wrong password) still answers; one
    still loading its dataset does not.
    """
    if urlsplit(url).scheme in ("redis", "rediss"):
        host, port = _host_port(url, 6379)
        if not _tcp_answers(host, port, timeout):
            return False
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.exceptions.AuthorizationError):
        return True  # a Redis server, rejecting our credentials
    except redis.ResponseError:
        return True  # a Redis server, answering with an error (NOPERM, ...)
    except Exception:  # refused, timed out, loading, or not Redis on that port
        return False
    finally:
        with contextlib.suppress(Exception):
            client.close()


# --------------------------------------------------------------------------- helpers


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Stop a server started by :func:`ensure_postgres` / :func:`ensure_redis`.

    SIGTERM (PostgreSQL: smart shutdown; Redis: clean shutdown), then SIGKILL if it is
    still running after ``timeout`` seconds. ``None`` (nothing was started) is a no-op.
    """
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _require_local(kind: str, url: str, host: str, port: int) -> None:
    if host not in _LOCAL_HOSTS:
        raise RuntimeError(
            f"{kind} does not answer at {_redact(url)} and {host!r} is not this machine, "
            f"so it cannot be started here. Start it on {host}:{port} or point the URL "
            "at 127.0.0.1."
        )


def _listen_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "localhost") else host


def _log_tail(path: pathlib.Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(empty log)"


def _wait_until(
    proc: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    what: str,
    log: pathlib.Path,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Poll ``answers()`` until true; clean up and raise if the child dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {proc.returncode} while starting. "
                f"Last lines of {log}:\n{_log_tail(log)}"
            )
        if answers():
            return
        time.sleep(0.2)
    stop(proc, timeout=5)
    raise RuntimeError(
        f"{what} did not answer within {timeout:.0f} s. Last lines of {log}:\n{_log_tail(log)}"
    )


def _open_log(path: pathlib.Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


# --------------------------------------------------------------------------- PostgreSQL


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)


def _find_pg_bindir() -> pathlib.Path:
    """The directory holding ``initdb`` and ``postgres``: PATH first, then the newest
    versioned install (Debian ``/usr/lib/postgresql/N/bin``, RHEL ``/usr/pgsql-N/bin``)."""
    candidates: list[pathlib.Path] = []
    on_path = shutil.which("postgres")
    if on_path:
        # Follow symlinks (/usr/local/bin/postgres -> /usr/lib/postgresql/15/bin/postgres)
        # so initdb and postgres come from the same install.
        candidates.append(pathlib.Path(on_path).resolve().parent)
        candidates.append(pathlib.Path(on_path).parent)
    for pattern in _PG_BIN_GLOBS:
        for found in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            candidates.append(pathlib.Path(found))
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    raise RuntimeError(
        "PostgreSQL is not answering and its server binaries (initdb, postgres) were not "
        "found on PATH or under /usr/lib/postgresql/*/bin. Install them "
        "(Debian/Ubuntu: `apt-get install postgresql`; Fedora: `dnf install "
        "postgresql-server`; macOS: `brew install postgresql`) or point "
        "FORUM_DATABASE_URL at a running server."
    )


def _service_user(name: str) -> pwd.struct_passwd:
    """The system user to run a server as when we are root; created if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise RuntimeError(
            f"running as root, PostgreSQL needs an unprivileged user {name!r}, which does "
            "not exist and `useradd` is not available to create it. Create it, or run "
            "as a normal user."
        )
    subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/bin/false", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def _can_search(path: pathlib.Path, user: pwd.struct_passwd) -> bool:
    st = path.stat()
    if st.st_uid == user.pw_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _make_reachable(path: pathlib.Path, user: pwd.struct_passwd) -> None:
    """Give ``o+x`` (search, not read) to ``path`` and each of its ancestors that
    ``user`` cannot traverse, e.g. a 0700 temporary directory made by root."""
    resolved = path.resolve()
    for directory in [*reversed(resolved.parents), resolved]:
        if not _can_search(directory, user):
            directory.chmod(directory.stat().st_mode | stat.S_IXOTH)


def _chown_tree(root: pathlib.Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def _pg_major(bindir: pathlib.Path) -> str:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"], check=True, capture_output=True, text=True
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return match.group(1) if match else ""


def ensure_postgres(url: str, data_dir: pathlib.Path) -> subprocess.Popen[bytes] | None:
    """Make PostgreSQL answer at ``url``.

    Returns ``None`` if it already does. Otherwise initialises a cluster in
    ``data_dir/"pg"`` (``initdb --auth=trust``, superuser = the URL's user, default
    ``postgres``) unless one is there, starts ``postgres`` on the URL's host and port as
    a child process, waits until it answers (up to 30 s) and returns the process.
    **The caller stops it** (:func:`stop`, or ``terminate()`` + ``wait()``).

    The database named in the URL is not created here: ``forum migrate`` does that.
    Raises ``RuntimeError`` with a helpful message when the binaries are missing, the
    host is not this machine, or the server does not come up.
    """
    if postgres_answers(url):
        return None
    host, port = _host_port(url, 5432)
    _require_local("PostgreSQL", url, host, port)
    bindir = _find_pg_bindir()
    superuser = unquote(urlsplit(url).username or "") or "postgres"

    data_dir = pathlib.Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    log = data_dir / "postgres.log"

    run_as: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        run_as = _service_user(_PG_SERVICE_USER)
        _make_reachable(data_dir, run_as)

    def as_user() -> dict[str, Any]:
        if run_as is None:
            return {}
        return {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}

    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    if run_as is not None:
        env["HOME"] = str(pgdata)
        env["USER"] = env["LOGNAME"] = run_as.pw_name

    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(mode=0o700, exist_ok=True)
        if run_as is not None:
            _chown_tree(pgdata, run_as.pw_uid, run_as.pw_gid)
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D", str(pgdata),
                "-U", superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            env=env,
            cwd=pgdata,
            **as_user(),
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"initdb into {pgdata} failed:\n{output}")
    else:
        have, want = (pgdata / "PG_VERSION").read_text().strip(), _pg_major(bindir)
        if want and have != want:
            raise RuntimeError(
                f"{pgdata} holds a PostgreSQL {have} cluster but the server found in "
                f"{bindir} is version {want}. Remove {pgdata} (it is scratch data) or "
                f"install PostgreSQL {have}."
            )
        if run_as is not None:
            _chown_tree(pgdata, run_as.pw_uid, run_as.pw_gid)

    # Unix socket beside the data (never /var/run/postgresql, which may belong to the
    # machine's own server); none at all if the path is too long for a socket.
    socket_dir = str(pgdata) if len(str(pgdata)) <= _MAX_SOCKET_DIR else ""
    args: Sequence[str] = [
        str(bindir / "postgres"),
        "-D", str(pgdata),
        "-p", str(port),
        "-k", socket_dir,
        "-c", f"listen_addresses={_listen_host(host)}",
        "-c", "fsync=off",  # scratch data: durability is not wanted, speed is
        "-c", "full_page_writes=off",
        "-c", "synchronous_commit=off",
    ]  # fmt: skip
    with _open_log(log) as out:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=pgdata,
            **as_user(),
        )
    _wait_until(proc, lambda: postgres_answers(url, timeout=1.0), "PostgreSQL", log)
    return proc


# --------------------------------------------------------------------------- Redis


def _find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    for directory in _REDIS_DIRS:
        candidate = os.path.join(directory, "redis-server")
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "Redis is not answering and `redis-server` was not found. Install it "
        "(Debian/Ubuntu: `apt-get install redis-server`; Fedora: `dnf install redis`; "
        "macOS: `brew install redis`) or point FORUM_REDIS_URL at a running server."
    )


def ensure_redis(url: str, data_dir: pathlib.Path) -> subprocess.Popen[bytes] | None:
    """Make Redis answer at ``url``.

    Returns ``None`` if it already does. Otherwise starts ``redis-server`` on the URL's
    host and port, without persistence (``--save "" --appendonly no``), working
    directory ``data_dir/"redis"``, with the URL's password if it has one; waits until
    it answers (up to 30 s) and returns the process. **The caller stops it**
    (:func:`stop`, or ``terminate()`` + ``wait()``).
    """
    if redis_answers(url):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", ""):
        raise RuntimeError(
            f"Redis does not answer at {_redact(url)}; only redis://host:port URLs can be "
            "started here."
        )
    host, port = _host_port(url, 6379)
    _require_local("Redis", url, host, port)
    server = _find_redis_server()

    data_dir = pathlib.Path(data_dir).absolute()
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "redis.log"

    args = [
        server,
        "--port", str(port),
        "--bind", _listen_host(host),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--daemonize", "no",
    ]  # fmt: skip
    if parts.password:
        args += ["--requirepass", unquote(parts.password)]
    with _open_log(log) as out:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir
        )
    _wait_until(proc, lambda: redis_answers(url, timeout=1.0), "redis-server", log)
    return proc
