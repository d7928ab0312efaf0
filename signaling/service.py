"""The conference service: changes the state through the keeper, keeps the media in step.

One place couples the conference state (bridge.conference), its store (signaling.persistence),
the media hub and the broadcaster: after every committed change the router's mute set and the
media scene follow the state, and the patch goes to every client. It owns the one-second control
clock (speaking-time warnings and ends, grace periods, program time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bridge.conference import Actor, Conference, Presence
from bridge.control import Refused
from bridge.control.commands import Command
from bridge.control.rollcall import Evidence
from bridge.media.hub import LOST_AFTER_S, MediaHub
from bridge.media.policy import Scene
from bridge.media.recorder import RecordingSummary
from bridge.media.speaker import DominantSpeaker, SpeakerParams
from bridge.store import AUDIT_PAGE, MemoryStore, StateStore
from bridge.tasks import cancel_and_wait
from signaling.broadcast import Broadcaster
from signaling.collector import SettledCollector
from signaling.persistence import StateKeeper

log = logging.getLogger(__name__)
CLOCK_S = 1.0
STATS_S = 0.5  # how often the consoles get levels and network health
POOR = {"loss": 0.03, "jitter_ms": 30.0, "rtt_ms": 300.0}  # above any: the network is poor
AUDIO_FRESH_S = 5.0  # audio seen within this long counts as "heard" for roll-call evidence


class ConferenceService:
    def __init__(self, conference: Conference, hub: MediaHub, broadcaster: Broadcaster,
                 recordings: Path, speaker: SpeakerParams | None = None,
                 store: StateStore | None = None, clock: Callable[[], float] = time.time) -> None:
        self.conference = conference
        self.hub = hub
        self.broadcaster = broadcaster
        self.recordings = recordings
        self.speakers = DominantSpeaker(speaker)
        self.keeper = StateKeeper(conference, store or MemoryStore(), self._committed,
                                  self._reloaded, clock)
        self.program_switches = 0
        self._muted: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.collector = SettledCollector()
        hub.router.on_audio_level = self.on_audio_level
        conference.control.witness = self.evidence
        self.sync_media()

    # -- lifetime --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.keeper.start()
        if self.conference.recording is not None and self.hub.recording is None:
            # a stored meeting was being recorded by a process that is gone: that file ended
            await self._quietly(self.keeper.change(lambda c, now: c.stop_recording(now)))
        self.sync_media()
        self._tasks = [asyncio.create_task(self._clock(), name="control-clock"),
                       asyncio.create_task(self._stats(), name="console-stats")]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self.keeper.stop()

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_S)
            self.keeper.submit(lambda c, now: c.tick(now))
            self.collector.observe(self.hub.membership_changes, time.monotonic())

    async def _stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_S)
            try:
                self.broadcaster.publish("media:stats", self.site_stats(), to="console")
            except Exception:
                log.exception("console stats failed")

    def site_stats(self) -> dict[str, Any]:
        """Per site: audio level (dBov), network figures and a verdict, for the console wall."""
        now = time.monotonic()
        out: dict[str, Any] = {}
        for site, status in self.conference.sites.items():
            if status.presence is Presence.OFFLINE:
                continue
            h = self.hub.router.health(site, now)
            silent = h["silent_s"]
            if status.presence is Presence.LOST or (
                    status.presence is Presence.LIVE and silent is not None and silent > LOST_AFTER_S):
                verdict = "lost"
            elif (h["loss_in"] or 0) > POOR["loss"] or (h["loss_out"] or 0) > POOR["loss"] or (
                    h["jitter_ms"] or 0) > POOR["jitter_ms"] or (h["rtt_ms"] or 0) > POOR["rtt_ms"]:
                verdict = "poor"
            else:
                verdict = "good"
            out[site] = {"level": round(self.speakers.loudness(site)), "health": verdict,
                         "loss": round(100 * max(h["loss_in"] or 0, h["loss_out"] or 0), 1),
                         "jitter_ms": round(h["jitter_ms"] or 0, 1),
                         "rtt_ms": None if h["rtt_ms"] is None else round(h["rtt_ms"])}
        return {"sites": out}

    # -- changes (each is committed before it is told) -------------------------------------

    async def apply(self, actor: Actor, command: Command) -> dict[str, Any] | None:
        return await self.keeper.change(lambda c, now: c.apply(actor, command, now))

    async def set_program(self, actor: Actor, site: str) -> None:
        await self.keeper.change(lambda c, now: c.set_program(site, now, actor))

    async def set_mode(self, actor: Actor, mode: str) -> None:
        await self.keeper.change(lambda c, now: c.set_mode(mode, now, actor))

    async def set_listen(self, participant: str, site: str | None, actor: Actor | None) -> None:
        """`actor` None: the console left (not an action anyone took)."""
        await self.keeper.change(lambda c, now: c.set_listen(participant, site, now, actor))

    async def refused(self, actor: Actor, action: str, target: str, code: str, message: str) -> None:
        """An action refused at the edge (role, payload) is audited like any other."""
        await self._quietly(self.keeper.change(
            lambda c, now: c.refuse(actor, action, target, code, message, now)))

    async def start_recording(self, actor: Actor) -> str:
        """Start recording the program; a second start, however close, is refused (`conflict`)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.recordings / f"{self.conference.id}-{stamp}.mkv"
        await self.keeper.change(lambda c, now: c.start_recording(path.name, now, actor))
        try:
            self.hub.start_recording(path)
        except Exception:
            await self._quietly(self.keeper.change(lambda c, now: c.stop_recording(now)))
            raise
        return path.name

    async def stop_recording(self, actor: Actor) -> RecordingSummary | None:
        """Stop it (refused with `conflict` when nothing records); the file's summary."""
        await self.keeper.change(lambda c, now: c.stop_recording(now, actor))
        return await self.hub.stop_recording() if self.hub.recording is not None else None

    def presence(self, site: str, presence: Presence, since: float | None = None) -> None:
        self.keeper.submit(lambda c, now: c.set_presence(site, presence, now, since))

    async def presence_now(self, site: str, presence: Presence) -> None:
        """A presence change the caller waits for (a page joining); kept if the store is away."""
        try:
            await self.keeper.change(lambda c, now: c.set_presence(site, presence, now))
        except Refused:
            self.presence(site, presence)

    async def audit(self, since: int, latest: int | None) -> list[dict[str, Any]]:
        """Audit entries after `since` (or the `latest` few), from the store: every process's."""
        if latest is not None:
            since = max(0, self.conference.audit.last_seq - latest)
        return await self.keeper.audit(since, latest or AUDIT_PAGE)

    @staticmethod
    async def _quietly(work: Awaitable[Any]) -> None:
        try:
            await work
        except Refused as refusal:
            log.warning("state change not made: %s", refusal.message)

    def _committed(self, patch: dict[str, Any] | None) -> None:
        self.sync_media()
        if patch is not None:
            self.broadcaster.publish("state", patch)

    def _reloaded(self, announce: bool) -> None:
        """The state came from the store: at start, after an outage (both announced to every
        client with a snapshot), or another process's commit (its patch reached the clients)."""
        self.sync_media()
        if announce:
            self.broadcaster.publish("state:snapshot", self.conference.snapshot(time.time()))

    def sync_media(self) -> None:
        """The router drops exactly the muted sites' audio; the scene follows program and floor."""
        muted = self.conference.muted()
        router = self.hub.router
        for site in muted ^ self._muted:
            router.set_muted(site, site in muted)
        self._muted = muted
        c = self.conference
        if c.program != self.hub.router.scene.program:
            self.program_switches += 1
        heard = tuple(s for s in c.control.floor.holders if s != c.program)
        self.hub.set_scene(Scene(c.roster.hall.id, c.program, heard, dict(c.listen)))

    # -- from the media --------------------------------------------------------------------

    def on_audio_level(self, source: str, level: int, voice: bool, now: float) -> None:
        """Every audio packet's RFC 6464 level; on the tick, who dominates (unmuted only)."""
        speakers = self.speakers
        if source not in self.conference.sites:
            return
        speakers.level(source, level, now)
        if not speakers.due(now):
            return
        dominant = speakers.decide(now, set(self.conference.sites) - self._muted)
        if dominant != self.conference.dominant:
            self.keeper.submit(lambda c, at: c.set_dominant(dominant, at))

    def evidence(self, site: str) -> Evidence:
        stats = self.hub.router.publisher_stats(site)
        now = time.monotonic()
        audio, video = stats.get("audio"), stats.get("video")
        return Evidence(
            connected=self.conference.sites[site].presence is Presence.LIVE,
            audio_heard=audio is not None and now - audio.last_arrival < AUDIO_FRESH_S,
            video_received=video is not None and video.received > 0)
