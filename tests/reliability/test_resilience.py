"""Floods are throttled, vanished peers are let go, and the server tells its figures."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import socketio

from bridge.roles import Role
from signaling.settings import REPO_ROOT
from tests.conftest import RunningServer
from tests.media.helpers import wait_until


async def connect(server: RunningServer, role: Role, site: str | None = None) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(server.url, auth={"token": server.token(role, site)}, transports=["websocket"],
                      wait_timeout=5)
    return sio


async def test_a_flooding_page_is_throttled_and_others_keep_their_pace(server: RunningServer) -> None:
    flooder = await connect(server, Role.SITE, "stttt-ha-giang")
    other = await connect(server, Role.SITE, "stttt-cao-bang")
    replies: list[dict[str, object]] = []
    rtts: list[float] = []

    span: list[float] = []

    async def flood() -> None:
        started = time.monotonic()
        end = started + 2.0
        while time.monotonic() < end:  # ~1000 events per second, bounded in time
            batch = [flooder.call("state:get", {}, timeout=10) for _ in range(50)]
            replies.extend(await asyncio.gather(*batch))
            await asyncio.sleep(0.05)
        span.append(time.monotonic() - started)  # the last batch may finish after the 2 s

    async def measure() -> None:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            started = time.monotonic()
            assert (await other.call("state:get", {}, timeout=5))["ok"]
            rtts.append(time.monotonic() - started)
            await asyncio.sleep(0.05)

    try:
        await asyncio.gather(flood(), measure())
        limited = [r for r in replies if not r["ok"]]
        assert len(replies) >= 1000
        assert limited and all(r["error"]["code"] == "rate_limited" for r in limited)  # type: ignore[index]
        passed = len(replies) - len(limited)
        assert passed <= 40 + 20 * span[0] + 10, f"{passed} in {span[0]:.1f} s: about 20/s get through"
        rtts.sort()
        p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
        assert p99 < 0.2, f"others' round trip p99 {p99 * 1000:.0f} ms"
    finally:
        await flooder.disconnect()
        await other.disconnect()


async def test_metrics_in_prometheus_format(server: RunningServer) -> None:
    hall = server.participant(Role.HALL)
    site = server.participant(Role.SITE, "stttt-ninh-binh", width=320, height=180, fps=15)
    try:
        for p in (hall, site):
            await p.connect()
            await p.join_media()
        assert await wait_until(lambda: site.stats.video_frames > 5, 10)
        await site.call("floor:request", {})
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
            assert response.status == 200
            text = await response.text()
        values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                  if line and not line.startswith("#")}
        assert values["hallbridge_sites_connected"] == 2
        assert values["hallbridge_packets_forwarded_total"] > 0
        assert values["hallbridge_store_ready"] == 1
        assert 'hallbridge_command_seconds_count{event="floor:request"}' in values
        assert any(k.startswith('hallbridge_site_loss_ratio{site="stttt-ninh-binh"}') for k in values)
        assert "token" not in text.lower()
    finally:
        await hall.close()
        await site.close()


async def test_a_vanished_site_is_marked_and_freed(server: RunningServer) -> None:
    env = dict(os.environ, HALLBRIDGE__SERVER__PORT=str(server.settings.server.port),
               HALLBRIDGE__TOKENS__SECRET_FILE=server.settings.tokens.secret_file)
    proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "simulate", "--sites", "1", "--no-hall",
                             "--seconds", "120", "--url", server.url], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    site = "bo-tttt"  # the roster's first remote site
    conference, hub = server.bridge.conference, server.bridge.hub
    try:
        assert await wait_until(lambda: conference.sites[site].presence == "live", 30)
        proc.send_signal(signal.SIGSTOP)  # the machine freezes: nothing is closed, nothing is sent
        vanished = time.monotonic()
        assert await wait_until(lambda: conference.sites[site].presence in ("lost", "offline"), 20), \
            "marked within 20 s"
        marked = time.monotonic() - vanished
        assert await wait_until(lambda: hub.link(site) is None, 40 - marked), "freed within 40 s"
        assert conference.sites[site].presence in ("lost", "offline")
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)
