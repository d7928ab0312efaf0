"""Real Firefox ESR (Debian's /usr/bin/firefox-esr) for the browser tests: tests/web/firefox/drive.mjs
drives it over WebDriver BiDi with puppeteer-core (no browser download); this side sends it one
JSON command per line and reads one answer per line."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

FIREFOX = os.environ.get("HALLBRIDGE_FIREFOX", "/usr/bin/firefox-esr")
DRIVER = Path(__file__).with_name("firefox") / "drive.mjs"
START_TIMEOUT_S = 60.0  # a cold Firefox profile on a busy 2-core machine: ~5-10 s
COMMAND_TIMEOUT_S = 60.0


class FirefoxError(RuntimeError):
    pass


class Firefox:
    def __init__(self, proc: asyncio.subprocess.Process, version: str) -> None:
        self._proc = proc
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.version = version

    async def call(self, op: str, **args: Any) -> Any:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        async with self._lock:  # one command at a time: answers come back in order
            ident = next(self._ids)
            self._proc.stdin.write((json.dumps({"id": ident, "op": op, **args}) + "\n").encode())
            await self._proc.stdin.drain()
            line = await asyncio.wait_for(self._proc.stdout.readline(), COMMAND_TIMEOUT_S)
        if not line:
            raise FirefoxError("the Firefox driver exited")
        answer = json.loads(line)
        if answer["id"] != ident:
            raise FirefoxError(f"answer {answer['id']} for command {ident}")
        if not answer["ok"]:
            raise FirefoxError(f"{op}: {answer['error']}")
        return answer["value"]

    async def open(self, url: str, width: int = 1280, height: int = 720) -> FirefoxPage:
        return FirefoxPage(self, await self.call("open", url=url, width=width, height=height))


class FirefoxPage:
    def __init__(self, browser: Firefox, number: int) -> None:
        self._browser = browser
        self._number = number

    async def evaluate(self, js: str) -> Any:
        """`js` is a function expression (possibly async); its JSON-able result."""
        return await self._browser.call("eval", page=self._number, js=js)

    async def click(self, selector: str) -> None:
        await self._browser.call("click", page=self._number, selector=selector)

    async def screenshot(self, path: Path) -> None:
        await self._browser.call("screenshot", page=self._number, path=str(path))

    async def close(self) -> None:
        await self._browser.call("closepage", page=self._number)

    async def wait_for(self, js: str, timeout_s: float, poll_s: float = 0.25) -> Any:
        """Poll the function `js` until it returns something truthy; that value."""
        end = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(js)
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f"{js[:80]}... still {value!r} after {timeout_s} s")
            await asyncio.sleep(poll_s)


@contextlib.asynccontextmanager
async def firefox() -> AsyncIterator[Firefox]:
    node = shutil.which("node")
    if not Path(FIREFOX).exists() or node is None:
        pytest.fail(f"{FIREFOX} or node is missing: .ci/setup --firefox installs them")
    if not (DRIVER.parent / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("puppeteer-core is missing: npm ci --prefix tests/web/firefox (.ci/setup)")
    proc = await asyncio.create_subprocess_exec(
        node, str(DRIVER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "HALLBRIDGE_FIREFOX": FIREFOX},
        limit=16 * 1024 * 1024)
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
        if not line:
            err = (await proc.stderr.read()).decode(errors="replace")
            pytest.fail(f"Firefox did not start: {err[-2000:]}")
        yield Firefox(proc, json.loads(line)["value"])
    finally:
        if proc.returncode is None:
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
