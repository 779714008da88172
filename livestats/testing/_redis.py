"""Throwaway redis-servers on loopback, for tests of shared quotas: alone, faulty, or a cluster."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

__all__ = ["RedisServer", "redis_cluster", "redis_server"]


class RedisServer:
    """A ``redis-server`` of a test's own on 127.0.0.1 that the test can hurt.

    Nothing is saved to disk, so a :meth:`kill` or :meth:`restart` loses every key,
    as a crashed Redis without persistence does. The port stays the same across
    restarts (clients reconnect to the same URL)::

        with RedisServer(config={"maxmemory": "4mb", "maxmemory-policy": "noeviction"}) as server:
            limiter = RedisLimiter(server.url)
            server.freeze()  # SIGSTOP: connections stay open, nothing answers
            server.thaw()  # SIGCONT: it answers everything that queued up
            server.restart()  # kill -9 and start again at once: all data lost

    ``binary``: the server to run (``redis-server`` by default; ``valkey-server``
    works too). ``config``: more ``--name value`` options. ``cluster=True`` starts
    it as a cluster node (see :func:`redis_cluster`). Raises RuntimeError if the
    binary is not installed or the server does not start within ``timeout`` seconds.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        config: Mapping[str, str | int] | None = None,
        cluster: bool = False,
        timeout: float = 10.0,
    ) -> None:
        path = shutil.which(binary or "redis-server")
        if path is None:
            raise RuntimeError(
                f"{binary or 'redis-server'} is not installed"
                " (Debian: apt-get install redis-server)"
            )
        self.binary = path
        self.port = port if port is not None else free_port(cluster=cluster)
        self.config = dict(config or {})
        self.cluster = cluster
        self.timeout = timeout
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {Path(self.binary).name} port={self.port} {state}>"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (again) and wait until it answers PING."""
        if self.running:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="livestats-redis-")
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
        ]
        if self.cluster:
            nodes = Path(self._dir.name) / "nodes.conf"
            nodes.unlink(missing_ok=True)  # a restarted node comes back empty, as its data
            args += ["--cluster-enabled", "yes", "--cluster-config-file", str(nodes)]
            args += ["--cluster-node-timeout", "5000"]
        for name, value in self.config.items():
            args += [f"--{name}", str(value)]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_pong(self.port, self._process, self.timeout)

    def kill(self) -> None:
        """``kill -9``: the server dies at once with everything it held."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGCONT)  # a frozen one must die too
                self._process.kill()
            self._process.wait(self.timeout)
            self._process = None

    def restart(self) -> None:
        """Kill the server and start it again at once on the same port: its data is gone."""
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its connections but answers nothing until :meth:`thaw`."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the server runs again, and answers what queued up meanwhile."""
        self._signal(signal.SIGCONT)

    def command(self, *args: str | int) -> bytes:
        """Send one command on a fresh connection and return its raw reply (RESP bytes).

        For test setup that must not go through the client under test: ``CONFIG SET``,
        filling memory, ``INFO``. A bulk reply is read whole; others to their first line.
        """
        parts = [str(a).encode() for a in args]
        wire = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as conn:
            conn.sendall(wire)
            reply = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return reply
                reply += chunk
                head, crlf, body = reply.partition(b"\r\n")
                if not crlf:
                    continue
                if not head.startswith(b"$") or int(head[1:]) < 0:
                    return reply
                if len(body) >= int(head[1:]) + 2:
                    return reply

    def stop(self) -> None:
        """Stop the server (SIGTERM) and remove its directory."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGCONT)
                self._process.terminate()
            try:
                self._process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(self.timeout)
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _signal(self, signum: int) -> None:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("the redis-server is not running")
        os.kill(self._process.pid, signum)


@contextmanager
def redis_server(*, binary: str | None = None, timeout: float = 10.0) -> Iterator[str]:
    """Start ``redis-server`` on 127.0.0.1 (a free port, nothing saved to disk); yield its URL.

    For testing code that uses :class:`~livestats.RedisLimiter`::

        with redis_server() as url:
            limiter = RedisLimiter(url)

    Raises RuntimeError if ``redis-server`` is not installed or does not start.
    :class:`RedisServer` does the same and can also kill, freeze and restart it.
    """
    with RedisServer(binary=binary, timeout=timeout) as server:
        yield server.url


@contextmanager
def redis_cluster(
    masters: int = 3, *, binary: str | None = None, timeout: float = 30.0
) -> Iterator[Sequence[RedisServer]]:
    """A Redis Cluster of ``masters`` nodes (no replicas) on loopback; yields the nodes.

    Each node is a :class:`RedisServer` started with ``--cluster-enabled yes``; the
    slots are assigned with ``redis-cli --cluster create`` (which comes with
    redis-server). Any node's ``url`` reaches the cluster through
    ``redis.asyncio.RedisCluster.from_url``.
    """
    cli = shutil.which("redis-cli") or shutil.which("valkey-cli")
    if cli is None:
        raise RuntimeError("redis-cli is not installed (Debian: apt-get install redis-tools)")
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(RedisServer(binary=binary, cluster=True, timeout=timeout))
            for _ in range(masters)
        ]
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )
        deadline = time.monotonic() + timeout
        while not all(b"cluster_state:ok" in n.command("CLUSTER", "INFO") for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up")
            time.sleep(0.1)
        yield nodes


def free_port(*, cluster: bool = False) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    ``cluster``: also free 10000 above it (a cluster node's bus port), so at most 55535.
    """
    rng = random.Random()
    for _ in range(1000):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", rng.randrange(20000, 55535) if cluster else 0))
            except OSError:  # taken (the range overlaps the ephemeral ports): try another
                continue
            port = int(probe.getsockname()[1])
        if not cluster:
            return port
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait_for_pong(port: int, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.02)
