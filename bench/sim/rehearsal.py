"""The rehearsal runner: a scenario played by simulated sites, a simulated hall and a moderator.

Sites join at the scenario's rate and do what it says when it says; a live display shows joined /
receiving / speaking / errors; the summary (printed and saved) says, per site, whether it joined,
received the program and answered the roll-call, and in which order the floor was granted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.sim.scenario import ACTIONS, Event, Scenario
from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from bridge.roster import Roster
from signaling.tokens import TokenAuthority

PROGRESS_S = 1.0


class Rehearsal:
    def __init__(self, url: str, tokens: TokenAuthority, roster: Roster, scenario: Scenario) -> None:
        self.url, self.tokens, self.roster, self.scenario = url, tokens, roster, scenario
        self.sites: dict[str, SimulatedParticipant] = {}
        self.join_s: dict[str, float] = {}
        self.errors: list[str] = []
        self.granted: list[str] = []
        self.answers: dict[str, Any] = {}
        self.hall: SimulatedParticipant | None = None
        self.moderator: SimulatedParticipant | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, show: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        started = time.monotonic()
        self.hall = self._participant(Role.HALL, self.roster.hall.id, "Hội trường", 1)
        self.moderator = self._participant(Role.MODERATOR, None, "moderator", 4000, publish=False)
        try:
            await self.hall.connect()
            await self.hall.join_media()
            self._pattern(self.hall, "silence")
            await self.moderator.connect()
            self.moderator.sio.on("state", self._watch_grants)
            joining = asyncio.create_task(self._join_all(started))
            self._tasks.add(joining)
            for event in self.scenario.events:
                await self._until(started, event.at, show)
                await self._do(event)
            await self._until(started, self.scenario.duration_s, show)
            await joining
            return await self._summary(time.monotonic() - started)
        finally:
            for task in self._tasks:
                task.cancel()
            for p in [*self.sites.values(), self.hall, self.moderator]:
                if p is not None:
                    await p.close()

    def _participant(self, role: Role, site: str | None, name: str, code: int,
                     publish: bool = True) -> SimulatedParticipant:
        token = self.tokens.issue(role, site)
        big = role is Role.HALL
        return SimulatedParticipant(self.url, token, name, code, width=640 if big else 320,
                                    height=360 if big else 180, fps=30 if big else 15, publish=publish)

    async def _join_all(self, started: float) -> None:
        for n, site in enumerate(self.scenario.sites):
            await asyncio.sleep(max(0.0, started + n / self.scenario.join_rate - time.monotonic()))
            await self._join(site, started)

    async def _join(self, site: str, started: float) -> None:
        entry = self.roster.get(site)
        code = 2 + [s.id for s in self.roster.remote_sites()].index(site)
        p = self._participant(Role.SITE, site, entry.short if entry else site, code)
        t0 = time.monotonic()
        try:
            await p.connect()
            await p.join_media()
            self._pattern(p, "silence")
            self.sites[site] = p
            self.join_s.setdefault(site, time.monotonic() - t0)
        except Exception as exc:
            self.errors.append(f"{site}: join failed: {exc}")

    async def _watch_grants(self, patch: dict[str, Any]) -> None:
        if self.moderator is not None:
            self.moderator.states.append(patch)
        for event in patch.get("events", []):
            if event["kind"] == "granted":
                self.granted.append(event["site"])
        current = (patch.get("rollcall") or {}).get("current")
        if current:
            self.answers = current["answers"]  # the last roll-call's answers, kept after it ends

    async def _until(self, started: float, at: float,
                     show: Callable[[dict[str, Any]], None] | None) -> None:
        while (left := started + at - time.monotonic()) > 0:
            await asyncio.sleep(min(PROGRESS_S, left))
            if show is not None:
                show(self.progress(time.monotonic() - started))

    async def _do(self, event: Event) -> None:
        who, _ = ACTIONS[event.action]
        site = self.sites.get(event.site) if event.site else None
        try:
            if event.action in ("speak", "noise", "drop", "rejoin", "hall:speak"):
                await self._media_action(event, site)
                return
            payload = dict(event.params)
            if who == "moderator":
                if event.site:
                    payload["site"] = event.site
                assert self.moderator is not None
                reply = await self.moderator.call(event.action, payload)
            elif site is not None:
                reply = await site.call(event.action, payload)
            else:
                self.errors.append(f"{event.at:.0f}s {event.action}: {event.site} is not connected")
                return
            if not reply.get("ok"):
                self.errors.append(f"{event.at:.0f}s {event.action} {event.site or ''}: {reply['error']}")
        except Exception as exc:
            self.errors.append(f"{event.at:.0f}s {event.action}: {exc}")

    async def _media_action(self, event: Event, site: SimulatedParticipant | None) -> None:
        if event.action == "hall:speak":
            self._speak(self.hall, float(event.params.get("seconds", 5.0)))
        elif event.action == "rejoin":
            assert event.site is not None
            await self._join(event.site, time.monotonic())
        elif site is None:
            self.errors.append(f"{event.at:.0f}s {event.action}: {event.site} is not connected")
        elif event.action == "speak":
            self._speak(site, float(event.params.get("seconds", 5.0)))
        elif event.action == "noise":
            if site.audio is not None:
                site.audio.click()
        else:  # drop: the page and its media vanish
            del self.sites[str(event.site)]
            await site.close()

    def _speak(self, p: SimulatedParticipant | None, seconds: float) -> None:
        if p is None:
            return
        self._pattern(p, "speech")
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, self._pattern, p, "silence")

    @staticmethod
    def _pattern(p: SimulatedParticipant, pattern: str) -> None:
        if p.audio is not None:
            p.audio.pattern = pattern

    def progress(self, elapsed: float) -> dict[str, Any]:
        sites = self.sites.values()
        return {"t": round(elapsed), "joined": len(self.sites), "of": len(self.scenario.sites),
                "receiving": sum(1 for p in sites if p.stats.video_frames > 0),
                "speaking": sum(1 for p in sites if p.audio is not None and p.audio.pattern == "speech"),
                "errors": len(self.errors)}

    async def _summary(self, elapsed: float) -> dict[str, Any]:
        answers = self.answers
        sites = {}
        for site in self.scenario.sites:
            p = self.sites.get(site)
            sites[site] = {
                "joined": site in self.join_s,
                "join_s": round(self.join_s[site], 3) if site in self.join_s else None,
                "received_program": bool(p and p.stats.video_frames > 0),
                "rollcall": answers.get(site, {}).get("status", "not_checked"),
            }
        return {"scenario": self.scenario.name, "seconds": round(elapsed, 1), "sites": sites,
                "floor_granted_in_order": self.granted, "errors": self.errors,
                "all_joined": all(s["joined"] for s in sites.values()),
                "all_received": all(s["received_program"] for s in sites.values())}


def make_display() -> Callable[[dict[str, Any]], None]:
    """A live line on a terminal (rich), plain lines elsewhere."""
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()

        def live(p: dict[str, Any]) -> None:
            console.print(f"[bold]{p['t']:>4}s[/] joined {p['joined']}/{p['of']}  receiving "
                          f"{p['receiving']}  speaking {p['speaking']}  errors "
                          f"[{'red' if p['errors'] else 'green'}]{p['errors']}[/]", end="\r")
        return live

    def plain(p: dict[str, Any]) -> None:
        if p["t"] % 5 == 0:
            print(f"{p['t']}s joined {p['joined']}/{p['of']} receiving {p['receiving']} "
                  f"speaking {p['speaking']} errors {p['errors']}", flush=True)
    return plain


def save(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
