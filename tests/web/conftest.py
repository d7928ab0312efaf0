"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, fake media."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bench.sim.synthetic import STRIP_CODE_JS
from signaling.settings import Settings
from tests.conftest import TURN_SECRET, RunningServer, running

CHROMIUM = os.environ.get("HALLBRIDGE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
# The code of the picture video element `id` shows now (bench.sim.synthetic's strip), or null.
READ_CODE = f"""(id) => {{
  const v = document.getElementById(id);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  return ({STRIP_CODE_JS})(g, c.width, c.height);
}}"""
FLAGS = [
    "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@contextlib.asynccontextmanager
async def chromium(*extra: str) -> AsyncIterator[Browser]:
    """Debian's headless Chromium with the suite's flags (and `extra` ones)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (see .ci/run)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*FLAGS, *extra])
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.fixture
async def turn_server(settings: Settings, coturn: int,
                      monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    """The server with the test's coturn as its TURN server (over TCP): welcome gives each page
    credentials of its own."""
    monkeypatch.setenv("HALLBRIDGE_TURN_SECRET", TURN_SECRET.decode())
    urls = [f"turn:127.0.0.1:{coturn}?transport=tcp"]
    async with running(replace(settings, turn=replace(settings.turn, urls=urls))) as server:
        yield server


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
