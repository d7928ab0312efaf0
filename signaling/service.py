"""The conference service: applies commands, broadcasts each patch, keeps the media in step.

One place couples the conference state (bridge.conference), the media hub and the broadcaster:
after every change the router's mute set and the media scene follow the state. It owns the
one-second control clock (speaking-time warnings and ends, grace periods).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from bridge.conference import Actor, Conference, Presence
from bridge.control.commands import Command
from bridge.control.rollcall import Evidence
from bridge.media.hub import MediaHub
from bridge.media.policy import Scene
from bridge.media.speaker import DominantSpeaker, SpeakerParams
from signaling.broadcast import Broadcaster

log = logging.getLogger(__name__)
CLOCK_S = 1.0
AUDIO_FRESH_S = 5.0  # audio seen within this long counts as "heard" for roll-call evidence


class ConferenceService:
    def __init__(self, conference: Conference, hub: MediaHub, broadcaster: Broadcaster,
                 recordings: Path, speaker: SpeakerParams | None = None) -> None:
        self.conference = conference
        self.speakers = DominantSpeaker(speaker)
        self._decided_at: float | None = None
        hub.router.on_audio_level = self.on_audio_level
        self.hub = hub
        self.broadcaster = broadcaster
        self.recordings = recordings
        self.listen: dict[str, str] = {}  # console participant -> site it listens to
        self._muted: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        conference.control.witness = self.evidence
        self.sync_media()

    # -- lifetime --------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._clock(), name="control-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_S)
            try:
                self.conference.control.attendance.add_program(self.conference.program, CLOCK_S)
                patch = self.conference.tick(time.time())
                if patch is not None:
                    self.publish(patch)
            except Exception:
                log.exception("control clock failed")

    # -- changes ---------------------------------------------------------------------------

    def apply(self, actor: Actor, command: Command) -> dict[str, Any]:
        patch = self.conference.apply(actor, command, time.time())
        self.publish(patch)
        return patch

    def set_program(self, site: str) -> None:
        patch = self.conference.set_program(site, time.time())
        if patch is not None:
            self.publish(patch)

    def set_mode(self, mode: str) -> None:
        patch = self.conference.set_mode(mode, time.time())
        if patch is not None:
            self.publish(patch)

    def presence(self, site: str, presence: Presence) -> None:
        patch = self.conference.set_presence(site, presence, time.time())
        if patch is not None:
            self.publish(patch)

    def set_listen(self, participant: str, site: str | None) -> None:
        if site is None:
            self.listen.pop(participant, None)
        else:
            self.listen[participant] = site
        self.sync_media()

    def publish(self, patch: dict[str, Any]) -> None:
        self.sync_media()
        self.broadcaster.publish("state", patch)

    def sync_media(self) -> None:
        """The router drops exactly the muted sites' audio; the scene follows program and floor."""
        muted = self.conference.muted()
        router = self.hub.router
        for site in muted ^ self._muted:
            router.set_muted(site, site in muted)
        self._muted = muted
        c = self.conference
        heard = tuple(s for s in c.control.floor.holders if s != c.program)
        self.hub.set_scene(Scene(c.roster.hall.id, c.program, heard, dict(self.listen)))

    def on_audio_level(self, source: str, level: int, voice: bool, now: float) -> None:
        """Every audio packet's RFC 6464 level; on the tick, who dominates (unmuted only)."""
        speakers = self.speakers
        if source not in self.conference.sites:
            return
        speakers.level(source, level, now)
        if not speakers.due(now):
            return
        previous = speakers.dominant
        unmuted = set(self.conference.sites) - self._muted
        dominant = speakers.decide(now, unmuted)
        if previous is not None and self._decided_at is not None:
            self.conference.control.attendance.add_talk(previous, now - self._decided_at)
        self._decided_at = now
        if dominant != self.conference.dominant:
            patch = self.conference.set_dominant(dominant, time.time())
            if patch is not None:
                self.publish(patch)

    def evidence(self, site: str) -> Evidence:
        stats = self.hub.router.publisher_stats(site)
        now = time.monotonic()
        audio, video = stats.get("audio"), stats.get("video")
        return Evidence(
            connected=self.conference.sites[site].presence is Presence.LIVE,
            audio_heard=audio is not None and now - audio.last_arrival < AUDIO_FRESH_S,
            video_received=video is not None and video.received > 0)
