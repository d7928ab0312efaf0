"""Every page applies patches in version order whichever process committed them (issue 15, defect
5): two `hallbridge serve` processes on one Redis, a console and a moderator page on each, 200
commands from both processes at once. An early patch waits for the ones before it (protocol.js),
so no page asks for a snapshot for a gap that closes by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.store.conftest import ServerProcess
from tests.store.test_stores import ROSTER, Client, tokens_for
from tests.web.conftest import chromium

pytestmark = pytest.mark.browser
COMMANDS = 200
LANES = 2  # commands in flight per moderator connection, so the two processes' commits interleave
SITES = [s.id for s in ROSTER.remote_sites()][:2 * LANES]
FAST = {"HALLBRIDGE__SERVER__EVENTS_PER_S": "1000", "HALLBRIDGE__SERVER__EVENTS_BURST": "1000"}
# idle run: 200 commands in ~12 s, the pages caught up within 0.4 s of the last ack
SEND_S = 3 * 20
CATCH_UP_MS = 3 * 2_000

READY = "() => window.hallbridge && window.hallbridge.client.state !== null"
# what the page applies (every "state" event) and how often it asks for a snapshot; and, apart,
# the order the patches arrived in and any snapshot the server pushed (or a reconnect)
RECORD = """() => {
  const client = window.hallbridge.client;
  const seen = { applied: [client.state.version], arrived: [], at: [], stateGets: 0, pushed: [] };
  window.patchOrder = seen;
  client.addEventListener("state", (e) => seen.applied.push(e.detail.version));
  client.socket.on("state", (patch) => {
    seen.arrived.push(patch.version);
    seen.at.push(performance.now());
  });
  for (const event of ["welcome", "state:snapshot", "disconnect"]) {
    client.socket.on(event, () => seen.pushed.push(event));
  }
  const request = client.request.bind(client);
  client.request = (event, payload) => {
    if (event === "state:get") seen.stateGets += 1;
    return request(event, payload);
  };
}"""
CAUGHT_UP = "(version) => window.hallbridge.client.state.version >= version"
SEEN = "() => window.patchOrder"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def open_page(browser: Browser, url: str, page_name: str, token: str) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{url}/{page_name}.html#token={token}")
    await page.wait_for_function(READY, timeout=3 * 5_000)
    await page.evaluate(RECORD)
    return page


async def lane(client: Client, sites: list[str], count: int) -> None:
    """`count` mute:set commands in turn, toggling, each applied (a version of its own)."""
    for n in range(count):
        payload = {"site": sites[n % len(sites)], "muted": n % 2 == 0}
        while not (reply := await client.call("mute:set", payload))["ok"]:
            assert reply["error"]["code"] == "busy", reply  # the other process kept winning: again


def lateness(seen: dict[str, Any]) -> float:
    """The longest a patch came after a newer one (ms): how long its gap stayed open."""
    worst = 0.0
    before: list[tuple[int, float]] = []  # (version, arrival) of each patch newer than all before it
    for version, at in zip(seen["arrived"], seen["at"], strict=True):
        opened = next((t for v, t in before if v > version), None)  # the first newer arrival
        if opened is None:
            before.append((version, at))
        else:
            worst = max(worst, at - opened)
    return worst


async def test_pages_on_both_processes_apply_every_patch_in_order(tmp_path: Path, prefix: str,
                                                                 browser: Browser) -> None:
    tokens = tokens_for(tmp_path)
    servers = [ServerProcess(tmp_path, prefix), ServerProcess(tmp_path, prefix)]
    pages: list[Page] = []
    try:
        for server in servers:
            server.env.update(FAST)
            await server.start()
        for server in servers:
            pages.append(await open_page(browser, server.url, "console", tokens.issue(Role.TECHNICIAN)))
            pages.append(await open_page(browser, server.url, "moderator", tokens.issue(Role.MODERATOR)))
        async with Client(servers[0].url, tokens.issue(Role.MODERATOR)) as mod_a, \
                Client(servers[1].url, tokens.issue(Role.MODERATOR)) as mod_b:
            first = (await mod_a.call("state:get", {}))["state"]["version"]
            per_lane = COMMANDS // (2 * LANES)
            started = time.monotonic()
            runs = [lane(mod, SITES[i::2 * LANES], per_lane)
                    for i, mod in enumerate([mod_a, mod_b] * LANES)]
            await asyncio.wait_for(asyncio.gather(*runs), SEND_S)
            sent_s = time.monotonic() - started
            final = (await mod_a.call("state:get", {}))["state"]["version"]
            assert (await mod_b.call("state:get", {}))["state"]["version"] == final, "one state"
            assert final >= first + COMMANDS
        started = time.monotonic()
        for page in pages:
            await page.wait_for_function(CAUGHT_UP, arg=final, timeout=CATCH_UP_MS)
        caught_up_s = time.monotonic() - started
        seen: list[dict[str, Any]] = [await page.evaluate(SEEN) for page in pages]
        late = [sum(1 for a, b in pairwise(s["arrived"]) if b < a) for s in seen]
        print(f"{COMMANDS} commands in {sent_s:.2f} s, pages caught up {caught_up_s:.2f} s later; "
              f"patches that arrived after a newer one, per page: {late} (the longest "
              f"{max(map(lateness, seen)):.0f} ms after it); "
              f"state:get per page: {[s['stateGets'] for s in seen]}")
        for s in seen:
            applied = s["applied"]
            gaps = [(a, b) for a, b in pairwise(applied) if b != a + 1]
            assert not gaps, f"applied out of order or with a gap: {gaps[:5]} (of {len(gaps)}); " \
                f"state:get {s['stateGets']}, pushed {s['pushed']}"
            assert applied[0] <= first and applied[-1] == final, "from before the first to the last"
            assert s["stateGets"] == 0, "no snapshot for gaps that closed by themselves"
    finally:
        for page in pages:
            await page.close()
        for server in servers:
            server.stop()


# The rules one by one, on a page's BridgeClient over a scripted socket (no server behind it), with
# a short wait and a small buffer; the order of the page's timers makes it exact, not timing.
WAIT_MS, BUFFER = 300, 8
RULES = """async ({ waitMs, bufferMax }) => {
  const { BridgeClient } = await import("/js/protocol.js");
  const on = {};
  const asked = [];
  let snapshotAt = 0;  // the version a state:get reply carries
  const socket = {
    on: (event, fn) => { on[event] = fn; },
    timeout: () => ({ emitWithAck: async (event) => {
      asked.push(event);
      return { ok: true, state: { version: snapshotAt, sites: {} } };
    } }),
    close: () => {},
  };
  const client = new BridgeClient({ token: "t", socketFactory: () => socket, patchWaitMs: waitMs,
                                    patchBufferMax: bufferMax }).connect();
  const applied = [];
  client.addEventListener("state", (e) => applied.push(e.detail.version));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const patch = (version) => on.state({ version, sites: {} });
  const welcome = (version) => on.welcome({ you: {}, roster: [], hall: "hall", media: { lines: [] },
                                            state: { version, sites: {} } });
  const out = {};
  patch(11);  // before the welcome: waits for it
  welcome(10);
  [13, 14, 12, 14, 9, 12].forEach(patch);  // late, duplicate, old
  out.reordered = { applied: applied.splice(0), asked: asked.length };
  patch(17);  // 15 and 16 never come
  await sleep(waitMs / 2);
  out.waiting = { applied: applied.splice(0), asked: asked.length };
  snapshotAt = 15;
  await sleep(waitMs);
  out.gapTimedOut = { applied: applied.splice(0), asked: asked.length, version: client.state.version };
  snapshotAt = 22;  // too many early patches: a snapshot at once, then the newer ones
  for (let v = 19; v <= 19 + bufferMax; v++) patch(v);
  await sleep(0);
  out.bufferFull = { asked: asked.length, version: client.state.version, applied: applied.splice(0) };
  patch(40 + bufferMax);  // waits
  on.disconnect("transport close");  // forgotten: the welcome's snapshot covers it
  welcome(3);
  patch(5);
  on["state:snapshot"]({ version: 4, sites: {} });  // the server reloaded: 5 follows it
  out.reconnected = { applied: applied.splice(0), version: client.state.version };
  snapshotAt = 2;  // a process that lags behind what this page applied
  patch(7);
  await sleep(waitMs * 1.5);
  out.olderSnapshot = { asked: asked.length, version: client.state.version };
  client.close();
  return out;
}"""
DEFAULTS = """async () => {
  const { PATCH_WAIT_MS, PATCH_BUFFER_MAX } = await import("/js/protocol.js");
  return [PATCH_WAIT_MS, PATCH_BUFFER_MAX];
}"""


async def test_the_patch_rules_one_by_one(server: RunningServer, browser: Browser) -> None:
    page = await browser.new_page()
    try:
        await page.goto(f"{server.url}/index.html")
        assert await page.evaluate(DEFAULTS) == [5000, 256], "docs/protocol.md states these"
        out = await page.evaluate(RULES, {"waitMs": WAIT_MS, "bufferMax": BUFFER})
    finally:
        await page.close()
    assert out["reordered"] == {"applied": [10, 11, 12, 13, 14], "asked": 0}
    assert out["waiting"] == {"applied": [], "asked": 0}, "a gap waits before it asks"
    assert out["gapTimedOut"] == {"applied": [15], "asked": 1, "version": 15}, \
        "then one state:get; the snapshot is older than the early patch, which waits again"
    full = out["bufferFull"]
    assert full["asked"] == 2 and full["version"] == 19 + BUFFER, full
    assert full["applied"] == list(range(22, 19 + BUFFER + 1)), "the snapshot, then what it lacked"
    assert out["reconnected"] == {"applied": [3, 4, 5], "version": 5}
    assert out["olderSnapshot"] == {"asked": 3, "version": 5}, "an older state:get reply is not taken"
