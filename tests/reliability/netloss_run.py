"""A site loses its network for 10 s: the scenario, run inside a network namespace of its own.

`unshare --net python -m tests.reliability.netloss_run OUT.json` (test_network_loss.py does it).
In the new namespace only loopback exists. This process brings it up, routes everything from or to
127.0.0.2 through a traffic-control class whose queue is a blackhole (no packet passes while the
two filters are in place), and runs the server, the main hall, two witness sites, a console and a
moderator on 127.0.0.1. The site under test runs in a child process on 127.0.0.2: its Socket.IO
connection and its ICE candidate both use that address, so cutting it off is a real network loss
for that site alone. The figures everyone saw go to OUT.json; the test asserts on them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from aiohttp import web

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from signaling.app import BRIDGE, create_app
from signaling.settings import REPO_ROOT, load_settings
from tests.media.helpers import wait_until

LOST_ADDRESS = "127.0.0.2"
LOSS_S = 10.0
WATCH_AFTER_S = 30.0  # how long to wait for the site to come back (the test asserts 15 s)


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


class Blackhole:
    """Traffic control on `lo`: a fast default class, and a class whose queue drops everything."""

    def __init__(self, address: str) -> None:
        self.address = address

    def install(self) -> None:
        run("ip", "link", "set", "lo", "up")
        run("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1")
        run("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate", "100gbit")
        run("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:2", "htb", "rate", "8bit")
        run("tc", "qdisc", "add", "dev", "lo", "parent", "1:2", "handle", "20:", "blackhole")

    def cut(self) -> None:
        for prio, direction in (("1", "src"), ("2", "dst")):
            run("tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", prio,
                "u32", "match", "ip", direction, f"{self.address}/32", "flowid", "1:2")

    def restore(self) -> None:
        for prio in ("1", "2"):
            run("tc", "filter", "del", "dev", "lo", "parent", "1:", "prio", prio)


class Console:
    """A technician's page: the state (patched as the page does) and the wall's health verdicts."""

    def __init__(self, url: str, token: str, watched: str) -> None:
        self.url, self.token, self.watched = url, token, watched
        self.sio = socketio.AsyncClient(reconnection=False)
        self.state: dict[str, Any] = {}
        self.presence: list[tuple[float, str, str]] = []  # (time, site, presence)
        self.health: list[tuple[float, str | None]] = []  # (time, verdict of the watched site)
        self.sio.on("welcome", self._welcome)
        self.sio.on("state", self._patch)
        self.sio.on("state:snapshot", self._snapshot)
        self.sio.on("media:stats", self._stats)

    async def connect(self) -> None:
        await self.sio.connect(self.url, auth={"token": self.token}, transports=["websocket"])

    async def _welcome(self, data: dict[str, Any]) -> None:
        await self._snapshot(data["state"])

    async def _snapshot(self, state: dict[str, Any]) -> None:
        old = self.state.get("sites", {})
        self.state = state
        self._changed(old, state["sites"])

    async def _patch(self, patch: dict[str, Any]) -> None:
        for key, value in patch.items():
            if key == "sites":
                old = dict(self.state["sites"])
                self.state["sites"].update(value)
                self._changed(old, value)
            elif key != "events":
                self.state[key] = value

    def _changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        now = time.time()
        self.presence.extend((now, site, status["presence"]) for site, status in new.items()
                             if site not in old or old[site]["presence"] != status["presence"])

    async def _stats(self, data: dict[str, Any]) -> None:
        entry = data["sites"].get(self.watched)
        self.health.append((time.time(), entry["health"] if entry else None))

    def site_presence(self, site: str) -> str:
        return str(self.state["sites"][site]["presence"])


class SiteProcess:
    """The site under test, in its own process on its own address."""

    def __init__(self, url: str, token: str, name: str, code: int) -> None:
        self.args = [sys.executable, "-m", "tests.reliability.netloss_site", url, token, name, str(code),
                     LOST_ADDRESS]
        self.statuses: list[dict[str, Any]] = []
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=16)
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, cwd=REPO_ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read(), name="site-process-reader")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if message["kind"] == "status":
                self.statuses.append(message)
            else:
                await self.replies.put(message["reply"])

    async def call(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{event} {json.dumps(payload)}\n".encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self.replies.get(), 20)

    @property
    def last(self) -> dict[str, Any]:
        return self.statuses[-1] if self.statuses else {"frames": 0, "connected": False, "rejoins": 0}

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)


def kept(state: dict[str, Any], site: str) -> dict[str, Any]:
    """What a site's moderators would not want a network loss to change."""
    rollcall = state["rollcall"]["current"] or {}
    answer = dict(rollcall.get("answers", {}).get(site, {}))
    answer.pop("evidence", None)  # what the bridge saw at the time, not what the site said
    floor = state["floor"]
    return {"rollcall": answer, "mute": state["mutes"][site],
            "holder": any(h["site"] == site for h in floor["holders"]),
            "queue": [(q["position"], q["priority"], q["topic"])
                      for q in floor["queue"] if q["site"] == site]}


def largest_gap(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    edges = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(edges))


async def scenario(out: Path) -> dict[str, Any]:
    blackhole = Blackhole(LOST_ADDRESS)
    blackhole.install()
    tmp = Path(tempfile.mkdtemp(prefix="hallbridge-netloss-"))
    base = load_settings(env={})
    settings = replace(base, server=replace(base.server, port=8790),
                       media=replace(base.media, program_width=640, program_height=360),
                       tokens=replace(base.tokens, secret_file=str(tmp / "secret"),
                                      revoked_file=str(tmp / "revoked")),
                       recording=replace(base.recording, directory=str(tmp / "recordings")))
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.server.port).start()
    url = settings.server.base_url()
    bridge = app[BRIDGE]
    roster = list(bridge.roster)
    lost, first, second = roster[1], roster[2], roster[3]

    def participant(role: Role, site: Any, **kw: Any) -> SimulatedParticipant:
        return SimulatedParticipant(url, bridge.tokens.issue(role, None if role is Role.HALL else site.id),
                                    site.short, roster.index(site) + 1, **kw)

    hall = participant(Role.HALL, bridge.roster.hall)
    witnesses = [participant(Role.SITE, s, width=320, height=180, fps=15) for s in (first, second)]
    console = Console(url, bridge.tokens.issue(Role.TECHNICIAN), lost.id)
    moderator = socketio.AsyncClient(reconnection=False)
    site = SiteProcess(url, bridge.tokens.issue(Role.SITE, lost.id), lost.short, roster.index(lost) + 1)
    figures: dict[str, Any] = {"site": lost.id, "loss_s": LOSS_S}
    try:
        await console.connect()
        await moderator.connect(url, auth={"token": bridge.tokens.issue(Role.MODERATOR)},
                                transports=["websocket"])
        for p in (hall, *witnesses):
            await p.connect()
            await p.join_media()
        await site.start()
        joined = await wait_until(
            lambda: console.site_presence(lost.id) == "live" and site.last["frames"] > 20, 30)
        assert joined, f"the site under test never went live: {site.last}"

        async def moderate(event: str, payload: dict[str, Any]) -> None:
            reply = await moderator.call(event, payload, timeout=10)
            assert reply["ok"], (event, reply)

        await moderate("rollcall:start", {})
        answer = {"status": "present", "name": "Nguyễn Văn Thành"}
        assert (await site.call("rollcall:answer", answer))["ok"]
        assert (await witnesses[0].call("floor:request", {"topic": "Ý kiến về dự thảo"}))["ok"]
        assert (await site.call("floor:request", {"topic": "Báo cáo của tỉnh"}))["ok"]
        await moderate("mute:set", {"site": lost.id, "muted": False})
        await asyncio.sleep(3.0)  # steady state
        before = kept(console.state, lost.id)
        joins_before = console.state["sites"][lost.id]["joins"]

        lost_at, lost_mono = time.time(), time.monotonic()
        blackhole.cut()
        await asyncio.sleep(LOSS_S)
        blackhole.restore()
        back_at, back_mono = time.time(), time.monotonic()
        frames_back = site.last["frames"]

        def back() -> bool:
            return (console.site_presence(lost.id) == "live" and site.last["frames"] > frames_back + 15
                    and bool(console.health) and console.health[-1][1] == "good")

        came_back = await wait_until(back, WATCH_AFTER_S)
        back_after = time.monotonic() - back_mono
        await asyncio.sleep(2.0)
        state = (await moderator.call("state:get", {}, timeout=10))["state"]
        after = kept(state, lost.id)
        async with aiohttp.ClientSession() as http, http.get(
                f"{url}/api/reports/attendance?format=csv",
                headers={"Authorization": f"Bearer {bridge.tokens.issue(Role.MODERATOR)}"}) as response:
            report = list(csv.DictReader(io.StringIO((await response.read()).decode("utf-8-sig"))))

        marked = [t - lost_at for t, verdict in console.health
                  if lost_at <= t <= back_at and verdict == "lost"]
        presence = [(round(t - lost_at, 2), p) for t, s, p in console.presence
                    if s == lost.id and t >= lost_at]
        others = [(round(t - lost_at, 2), s, p) for t, s, p in console.presence
                  if s != lost.id and t >= lost_at and p != "live"]
        rows = [r for r in report if r["site_id"] == lost.id]
        figures.update({
            "console_marked_lost_after_s": round(marked[0], 2) if marked else None,
            "presence_after_loss": presence,
            "back_after_s": round(back_after, 2) if came_back else None,
            "site_rejoins": site.last["rejoins"],
            "site_socket_connected": site.last["connected"],
            "joins_before": joins_before, "joins_after": state["sites"][lost.id]["joins"],
            "kept_before": before, "kept_after": after,
            "report_rows": len(rows), "report": rows[0] if rows else None,
            "witness_gap_max_s": {
                w.name: round(largest_gap(list(w.slots["program-video"].frame_times), lost_mono - 1,
                                          back_mono + 3), 3) for w in witnesses},
            "witness_presence_changes": others,
            "witness_connected": all(w.sio.connected for w in witnesses),
            "health_after_back": [(round(t - back_at, 1), v) for t, v in console.health
                                  if t >= back_at][:80:4],
            "frames_after_back": [(round(m["t"] - back_at, 1), m["frames"]) for m in site.statuses
                                  if m["t"] >= back_at][::8],
        })
        return figures
    finally:
        out.write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")
        await site.stop()
        for p in (hall, *witnesses):
            await p.close()
        for sio in (moderator, console.sio):
            if sio.connected:
                await sio.disconnect()
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(scenario(Path(sys.argv[1])))
