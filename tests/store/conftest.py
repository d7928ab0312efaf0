"""Real Redis for the store tests: the shared server on 127.0.0.1:6379 (started by .ci/run when
none answers), a key prefix of each test's own, cleaned up after; and servers run as processes."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from signaling.settings import REPO_ROOT
from tests.conftest import answers, free_port

REDIS_URL = os.environ.get("HALLBRIDGE_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"hallbridge-test-{secrets.token_hex(4)}:"
    yield name
    client = aioredis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


class ServerProcess:
    """`hallbridge serve` in its own process, on a Redis store."""

    def __init__(self, tmp: Path, prefix: str, redis_url: str = REDIS_URL) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, HALLBRIDGE__SERVER__PORT=str(self.port),
                        HALLBRIDGE__STORE__BACKEND="redis", HALLBRIDGE__STORE__REDIS_URL=redis_url,
                        HALLBRIDGE__STORE__KEY_PREFIX=prefix,
                        HALLBRIDGE__TOKENS__SECRET_FILE=str(tmp / "secret"),
                        HALLBRIDGE__TOKENS__REVOKED_FILE=str(tmp / "revoked"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"server-{self.port}.log"

    async def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve"],
                                         cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log)
        if not await answers(f"{self.url}/healthz", 15):
            raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    async def ready(self) -> int:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/readyz") as response:
            return response.status


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """A Redis server of this test's own (it gets stopped and started again), with AOF."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: .ci/run installs it")
    port, folder = free_port(), tmp_path / "redis"
    folder.mkdir()
    yield binary, folder, port
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=10)


def start_redis(binary: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0:
            return proc
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")
