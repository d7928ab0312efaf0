"""Soak: join/leave cycles leave the server as it was; tokens never reach the logs.

The full soak is 100 cycles (HALLBRIDGE_SOAK_CYCLES=100); CI runs a shorter form by default.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import psutil
import socketio

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from bridge.roster import load_roster
from signaling.settings import REPO_ROOT, load_settings
from signaling.tokens import TokenAuthority, load_secret
from tests.conftest import free_port
from tests.media.helpers import wait_until

CYCLES = int(os.environ.get("HALLBRIDGE_SOAK_CYCLES", "30"))


async def metrics(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        text = await response.text()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


async def start_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    port = free_port()
    env = dict(os.environ, HALLBRIDGE__SERVER__PORT=str(port),
               HALLBRIDGE__TOKENS__SECRET_FILE=str(tmp_path / "secret"))
    with open(tmp_path / "server.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve"], cwd=REPO_ROOT,
                                env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            try:
                async with http.get(f"{url}/healthz"):
                    return proc, url, env
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def test_join_leave_cycles_leave_nothing_behind(tmp_path: Path) -> None:
    proc, url, _ = await start_server(tmp_path)
    server = psutil.Process(proc.pid)
    settings = load_settings(env={"HALLBRIDGE__TOKENS__SECRET_FILE": str(tmp_path / "secret")})
    tokens = TokenAuthority(load_secret("HALLBRIDGE_TEST_NO_SECRET", tmp_path / "secret"),
                            settings.conference.id, load_roster(settings.roster_path()))
    hall = SimulatedParticipant(url, tokens.issue(Role.HALL), "Hội trường", 1)

    async def cycle() -> None:
        site = SimulatedParticipant(url, tokens.issue(Role.SITE, "stttt-quang-nam"), "Quảng Nam", 9,
                                    width=160, height=90, fps=10)
        await site.connect()
        await site.join_media()
        assert await wait_until(lambda: site.stats.video_frames > 0, 10)
        await site.close()
        for _ in range(50):
            if (await metrics(url))["hallbridge_peer_connections"] == 1:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the site's peer connection was not freed")

    try:
        await hall.connect()
        await hall.join_media()
        for _ in range(5):  # warm-up: imports, codecs, first allocations
            await cycle()
        await asyncio.sleep(1)
        before = await metrics(url)
        fds, rss = server.num_fds(), server.memory_info().rss
        for _ in range(CYCLES):
            await cycle()
        for _ in range(30):  # a closed page's ping task ends at its next ping (<= 10 s)
            after = await metrics(url)
            if after["hallbridge_asyncio_tasks"] <= before["hallbridge_asyncio_tasks"] + 2:
                break
            await asyncio.sleep(0.5)
        assert after["hallbridge_peer_connections"] == 1, "only the hall is left"
        assert after["hallbridge_asyncio_tasks"] <= before["hallbridge_asyncio_tasks"] + 2
        assert server.num_fds() <= fds + 2, f"fds {server.num_fds()} > {fds}"
        grown = server.memory_info().rss / rss - 1
        assert grown < 0.05, f"server memory grew {grown:.1%} in {CYCLES} cycles"
        print(f"{CYCLES} cycles: server memory {grown:+.1%}, fds {server.num_fds() - fds:+d}, "
              f"tasks {after['hallbridge_asyncio_tasks'] - before['hallbridge_asyncio_tasks']:+.0f}")
    finally:
        await hall.close()
        proc.terminate()
        proc.wait(15)


async def test_tokens_never_appear_in_the_logs(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = dict(os.environ, HALLBRIDGE__SERVER__PORT=str(port),
               HALLBRIDGE__TOKENS__SECRET_FILE=str(tmp_path / "secret"))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve"], cwd=REPO_ROOT, env=env,
                                stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{url}/healthz"):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        links = subprocess.run([sys.executable, "-m", "signaling.cli", "links", "--role", "site"],
                               cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
        tokens = [line.split("#token=")[1] for line in links.stdout.splitlines()[:3]]
        for token in [*tokens, tokens[0][:-4] + "AAAA"]:  # good links and a tampered one
            sio = socketio.AsyncClient(reconnection=False)
            try:
                await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
                await sio.call("floor:request", {"topic": token}, timeout=5)
                await sio.disconnect()
            except socketio.exceptions.ConnectionError:
                await sio.shutdown()
                if sio.eio.http is not None:
                    await sio.eio.http.close()
            async with aiohttp.ClientSession() as http, http.get(
                    f"{url}/api/reports/attendance", headers={"Authorization": f"Bearer {token}"}):
                pass
    finally:
        proc.terminate()
        proc.wait(15)
    text = log.read_text(encoding="utf-8")
    assert "connected site=" in text, "the server did log"
    for token in tokens:
        assert token not in text and token[-20:] not in text
