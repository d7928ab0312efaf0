"""Shared fixtures: settings on a free loopback port, a running server, simulated participants."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from signaling.app import BRIDGE, Bridge, create_app
from signaling.settings import Settings, load_settings


async def answers(url: str, seconds: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Whether a server starting in another process answers `url` with 200 within `seconds`
    (False at once when `alive` says the process is gone)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    async with aiohttp.ClientSession() as http:
        while loop.time() < end and alive():
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(autouse=True, scope="module")
def collect_after_each_module() -> Iterator[None]:
    """A module's leftovers are collected when it ends (Hypothesis leaves ~800k objects behind a
    search): otherwise the full collection that frees them, over a second on this machine, lands
    inside some later module's timed assertions."""
    yield
    gc.collect()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = load_settings(env={})
    # a smaller program picture keeps the simulated encoders cheap on a 2-core machine
    media = replace(base.media, program_width=640, program_height=360)
    return replace(base, server=replace(base.server, port=free_port()), media=media,
                   tokens=replace(base.tokens, secret_file=str(tmp_path / "secret"),
                                  revoked_file=str(tmp_path / "revoked")),
                   recording=replace(base.recording, directory=str(tmp_path / "recordings")))


class RunningServer:
    def __init__(self, settings: Settings, app: web.Application) -> None:
        self.settings = settings
        self.app = app
        self.url = settings.server.base_url()

    @property
    def bridge(self) -> Bridge:
        return self.app[BRIDGE]

    def token(self, role: Role, site_id: str | None = None) -> str:
        return self.bridge.tokens.issue(role, site_id)

    def participant(self, role: Role, site_id: str | None = None, **kw: object) -> SimulatedParticipant:
        roster = self.bridge.roster
        site = roster.get(site_id) if site_id else (roster.hall if role is Role.HALL else None)
        name = site.short if site else role.value
        code = list(roster).index(site) + 1 if site else 4000
        return SimulatedParticipant(self.url, self.token(role, site_id), name, code, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(settings: Settings, ssl_context: ssl.SSLContext | None = None
                  ) -> AsyncIterator[RunningServer]:
    """The app in this process on `settings.server` (over TLS with `ssl_context`)."""
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port, ssl_context=ssl_context)
    await site.start()
    try:
        yield RunningServer(settings, app)
    finally:
        await runner.cleanup()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running(settings) as running_server:
        yield running_server


TURN_SECRET = b"coturn-static-auth-secret-for-tests"


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn's turnserver is missing: .ci/setup installs it")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
         "--listening-port", str(port),
         "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls", "--use-auth-secret",
         f"--static-auth-secret={TURN_SECRET.decode()}", "--realm", "hallbridge.test",
         "--log-file", str(tmp_path / "turn.log"), "--pidfile", str(tmp_path / "turn.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("coturn did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
