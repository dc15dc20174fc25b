"""A Redis Cluster of a test's own: three masters, no replicas, made from the machine's
``redis-server`` and ``redis-cli`` in a temporary directory.

Every node listens on 127.0.0.1 on a free port, with its cluster bus on a second free port
(``cluster-port``: the default bus port, the client port + 10000, overflows 65535 for the
ephemeral ports a bind to port 0 hands out). ``RedisCluster(tls=True)`` makes a cluster
that speaks only TLS, to clients and on its bus, with a certificate for 127.0.0.1 signed
by a CA of its own (made with the machine's ``openssl``; ``ca`` is its file). Nothing is
persisted, and ``stop`` ends exactly the processes ``start`` began, by PID, and removes
the directory: the shared Redis on 6379 is never touched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

BIN = Path(os.environ.get("FORUM_TEST_REDIS_BIN", "/usr/bin"))
SERVER = BIN / "redis-server"
CLI = BIN / "redis-cli"
OPENSSL = Path("/usr/bin/openssl")


def available(tls: bool = False) -> bool:
    return SERVER.exists() and CLI.exists() and (not tls or OPENSSL.exists())


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen, so the kernel
    never hands out one port twice."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


def _tls(certs: Path | None) -> list[str]:
    if certs is None:
        return []
    return [f"tls-cert-file {certs / 'node.crt'}", f"tls-key-file {certs / 'node.key'}",
            f"tls-ca-cert-file {certs / 'ca.crt'}", "tls-auth-clients no",
            "tls-cluster yes", "tls-replication yes"]


def make_certificates(directory: Path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it, in ``directory``."""
    def run(*args: str) -> None:
        subprocess.run([str(OPENSSL), *args], cwd=directory, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=forum test CA", "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "node.key", "-out", "node.csr")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "node.crt")
    return directory


def _config(port: int, bus_port: int, directory: Path, certs: Path | None = None) -> str:
    listen = [f"port {port}"] if certs is None else ["port 0", f"tls-port {port}"]
    return "\n".join([
        *listen,
        *_tls(certs),
        "bind 127.0.0.1",
        "protected-mode no",
        "daemonize no",
        f"dir {directory}",
        f"logfile {directory / 'server.log'}",
        "cluster-enabled yes",
        f"cluster-config-file nodes-{port}.conf",
        f"cluster-port {bus_port}",
        "cluster-node-timeout 2000",
        "appendonly no",
        'save ""',
        "",
    ])


class RedisCluster:
    """Start with ``start()`` or ``with RedisCluster() as cluster:``; ``url`` names the
    first node (a cluster client discovers the others from it)."""

    def __init__(self, masters: int = 3, *, tls: bool = False) -> None:
        self.masters = masters
        self.tls = tls
        self.certs: Path | None = None
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.dir = Path()

    @property
    def url(self) -> str:
        if self.certs is not None:  # as an operator writes it: redis-py reads the CA here
            return f"rediss://127.0.0.1:{self.ports[0]}/0?ssl_ca_certs={self.ca}"
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def ca(self) -> Path:
        assert self.certs is not None, "not a TLS cluster"
        return self.certs / "ca.crt"

    @property
    def nodes(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def start(self, timeout: float = 30.0) -> RedisCluster:
        self._tmp = tempfile.TemporaryDirectory(prefix="forum-redis-cluster-")
        self.dir = Path(self._tmp.name)
        try:
            if self.tls:
                (self.dir / "certs").mkdir()
                self.certs = make_certificates(self.dir / "certs")
            ports = free_ports(2 * self.masters)
            self.ports = ports[:self.masters]
            for port, bus_port in zip(self.ports, ports[self.masters:], strict=True):
                self._start_node(port, bus_port)
            deadline = time.monotonic() + timeout
            for port in self.ports:
                self._wait(port, deadline, self._answers)
            self._create(timeout)
            for port in self.ports:
                self._wait(port, deadline, self._settled)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, port: int, bus_port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir()
        conf = node_dir / "redis.conf"
        conf.write_text(_config(port, bus_port, node_dir, self.certs))
        # Its own session: a Ctrl-C on the test run reaches pytest, which then stops the
        # nodes in order, rather than every node at once half-way through a test.
        self.processes.append(subprocess.Popen(
            [str(SERVER), str(conf)], cwd=node_dir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        ))

    def _create(self, timeout: float) -> None:
        done = subprocess.run(
            [str(CLI), *self._cli_tls(), "--cluster", "create", *self.nodes,
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}\n"
                               f"{done.stderr}\n{self.logs()}")

    def _cli_tls(self) -> list[str]:
        return [] if self.certs is None else ["--tls", "--cacert", str(self.ca)]

    def client(self, port: int, **options: Any) -> Redis:
        """A plain client of one node (TLS when the cluster speaks it)."""
        if self.certs is not None:
            options.update(ssl=True, ssl_ca_certs=str(self.ca))
        return Redis(host="127.0.0.1", port=port, **options)

    @staticmethod
    def _answers(client: Redis) -> bool:
        return bool(client.ping())

    def _settled(self, client: Redis) -> bool:
        """This node sees the whole cluster: every slot served, every master known."""
        # redis-py parses the reply into a dict of str
        info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        fields = {str(k): str(v) for k, v in dict(info).items()}
        return (fields.get("cluster_state") == "ok"
                and fields.get("cluster_slots_ok") == "16384"
                and fields.get("cluster_known_nodes") == str(self.masters))

    def _wait(self, port: int, deadline: float, ready: Callable[[Redis], bool]) -> None:
        client = self.client(port, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                with contextlib.suppress(RedisError, OSError):
                    if ready(client):
                        return
                dead = [p.pid for p in self.processes if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    what = f"exited: {dead}" if dead else "timed out"
                    raise RuntimeError(f"redis node {port} not ready ({what}):\n{self.logs()}")
                time.sleep(0.05)
        finally:
            client.close()

    def logs(self) -> str:
        parts = []
        for port in self.ports:
            log = self.dir / str(port) / "server.log"
            if log.exists():
                parts.append(f"--- {port}\n" + "\n".join(log.read_text().splitlines()[-20:]))
        return "\n".join(parts)

    def stop(self) -> None:
        try:
            for proc in self.processes:  # SIGTERM to each node we started, by its PID
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.terminate()
            for proc in self.processes:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(timeout=5)
            self.processes.clear()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
