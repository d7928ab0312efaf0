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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.conference import Actor, Conference, Presence
from bridge.control import Refused
from bridge.control.commands import Command
from bridge.control.rollcall import Evidence
from bridge.media.aiortc_adapter import IcePolicy
from bridge.media.hub import LOST_AFTER_S, MediaHub
from bridge.media.policy import HIGH, LOW, Line, Scene, layout
from bridge.media.recorder import RecordingSummary
from bridge.media.router import MediaRouter
from bridge.media.speaker import DominantSpeaker, SpeakerParams
from bridge.roles import Role
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


@dataclass(frozen=True, slots=True)
class MediaSetup:
    """What the service's media hub is built from."""

    policy: IcePolicy
    ladder: dict[str, dict[str, int]]  # quality level -> its media:quality figures (maxBitrate, …)
    keyframe_interval_s: float = 0.5
    layers_by_estimate: bool = False  # a site's REMB chooses its layer (not only loss and pins)
    content: bool = False  # offers carry the content line (the presentation)


def health_verdict(presence: Presence, h: dict[str, Any]) -> str:
    """A site's network health for the console: "lost" (no media, or silent too long while live),
    "poor" (any figure above `POOR`) or "good"."""
    silent = h["silent_s"]
    if presence is Presence.LOST or (
            presence is Presence.LIVE and silent is not None and silent > LOST_AFTER_S):
        return "lost"
    if (h["loss_in"] or 0) > POOR["loss"] or (h["loss_out"] or 0) > POOR["loss"] or (
            h["jitter_ms"] or 0) > POOR["jitter_ms"] or (h["rtt_ms"] or 0) > POOR["rtt_ms"]:
        return "poor"
    return "good"


def participant_room(participant_id: str) -> str:
    """The Socket.IO room of the one connection that holds a participant's slot."""
    return f"participant:{participant_id}"


class ConferenceService:
    """The one way the conference changes: commands, program and mode, listen-in, recording,
    presence and what the media reports all go through the state keeper here, then out."""

    def __init__(self, conference: Conference, media: MediaSetup, broadcaster: Broadcaster,
                 recordings: Path, speaker: SpeakerParams | None = None,
                 store: StateStore | None = None, clock: Callable[[], float] = time.time,
                 host_grace_s: float = 10.0) -> None:
        self.conference = conference
        self.broadcaster = broadcaster
        self.recordings = recordings
        self.speakers = DominantSpeaker(speaker)
        self._ladder = media.ladder
        self._content = media.content
        router = MediaRouter(Scene(conference.roster.hall.id, conference.program),
                             media.keyframe_interval_s,
                             bitrates_bps={level: q["maxBitrate"] for level, q in media.ladder.items()},
                             on_audio_level=self.on_audio_level,
                             estimate_layers=media.layers_by_estimate)
        self.hub = MediaHub(media.policy, router, observer=self)
        self.keeper = StateKeeper(conference, store or MemoryStore(), self._committed,
                                  self._reloaded, clock, host_grace_s)
        self.program_switches = 0
        self._muted: set[str] = set()
        self._poor_lines: set[str] = set()  # the pins last given to the router
        self._tasks: list[asyncio.Task[None]] = []
        self.collector = SettledCollector()
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

    def _layer(self, site: str) -> dict[str, Any]:
        """The program layer a site receives, and its browser's estimate (kbit/s)."""
        layer = self.hub.router.layer_of(site)
        estimate = layer["estimate_bps"]
        return {"layer": layer["receiving"] or layer["layer"],
                "estimate_kbps": None if not isinstance(estimate, int) else round(estimate / 1000)}

    def site_stats(self) -> dict[str, Any]:
        """Per site: audio level (dBov), network figures and a verdict, for the console wall."""
        now = time.monotonic()
        out: dict[str, Any] = {}
        for site, status in self.conference.sites.items():
            if status.presence is Presence.OFFLINE:
                continue
            h = self.hub.router.health(site, now)
            out[site] = {"level": round(self.speakers.loudness(site)),
                         "health": health_verdict(status.presence, h),
                         "loss": round(100 * max(h["loss_in"] or 0, h["loss_out"] or 0), 1),
                         "jitter_ms": round(h["jitter_ms"] or 0, 1),
                         "rtt_ms": None if h["rtt_ms"] is None else round(h["rtt_ms"]),
                         **self._layer(site)}
        return {"sites": out}

    # -- changes (each is committed before it is told) -------------------------------------

    async def apply(self, actor: Actor, command: Command, command_id: str | None = None) -> int:
        """The version the command made (or found, when it changed nothing). `command_id`: the
        client's id for it (a retry with the same id is made once: `AlreadyApplied`)."""
        return self._made(await self.keeper.change(
            lambda c, now: c.apply(actor, command, now, self.evidence), command_id))

    async def set_program(self, actor: Actor, site: str, command_id: str | None = None) -> int:
        return self._made(await self.keeper.change(lambda c, now: c.set_program(site, now, actor),
                                                   command_id))

    async def set_mode(self, actor: Actor, mode: str, command_id: str | None = None) -> int:
        return self._made(await self.keeper.change(lambda c, now: c.set_mode(mode, now, actor),
                                                   command_id))

    async def set_poor_line(self, actor: Actor, site: str, poor: bool,
                            command_id: str | None = None) -> int:
        return self._made(await self.keeper.change(
            lambda c, now: c.set_poor_line(site, poor, now, actor), command_id))

    def _made(self, patch: dict[str, Any] | None) -> int:
        """A command's own version: its patch's (another change may have followed already)."""
        return int(patch["version"]) if patch is not None else self.conference.version

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
            self.hub.start_recording(path, self._content)
        except Exception:
            await self._quietly(self.keeper.change(lambda c, now: c.stop_recording(now)))
            raise
        return path.name

    async def stop_recording(self, actor: Actor) -> RecordingSummary | None:
        """Stop it (refused with `conflict` when nothing records); the file's summary."""
        await self.keeper.change(lambda c, now: c.stop_recording(now, actor))
        return await self.hub.stop_recording() if self.hub.recording is not None else None

    def presence(self, site: str, presence: Presence, since: float | None = None) -> None:
        """What this process saw of a site (its page's connection is here)."""
        host = self.keeper.host
        self.keeper.submit(lambda c, now: c.set_presence(site, presence, now, since, host))

    async def presence_now(self, site: str, presence: Presence) -> None:
        """A presence change the caller waits for (a page joining); kept if the store is away."""
        host = self.keeper.host
        try:
            await self.keeper.change(lambda c, now: c.set_presence(site, presence, now, None, host))
        except Refused:
            self.presence(site, presence)

    # -- pages and their media ---------------------------------------------------------------

    async def page_joined(self, site: str, replacing: bool) -> None:
        """A site's page connected (`replacing` an older page of the same site, whose media ends)."""
        if replacing:
            await self.hub.leave(site)
        await self.presence_now(site, Presence.SIGNALING)

    async def page_left(self, participant: str, site: str | None) -> None:
        await self.hub.leave(participant)
        if site is not None:
            self.presence(site, Presence.OFFLINE)
        elif participant in self.conference.listen:
            await self.set_listen(participant, None, None)

    async def media_offer(self, participant: str, role: Role, site: str | None, sdp: str) -> str:
        """Answer an offer with a new peer connection; `bad_sdp` when it cannot be answered."""
        try:
            answer = await self.hub.offer(participant, self.lines(role), sdp)
        except ValueError as exc:
            raise Refused("bad_sdp", f"the offer was refused: {str(exc)[:200]}") from None
        if site is not None:
            self.presence(site, Presence.CONNECTING)
        return answer

    def lines(self, role: Role) -> list[Line]:
        """The media lines a role's offer must carry, in order."""
        return layout(role, (s.id for s in self.conference.roster.remote_sites()), self._content)

    async def media_leave(self, participant: str, site: str | None) -> None:
        await self.hub.leave(participant)
        if site is not None:
            self.presence(site, Presence.SIGNALING)

    async def snapshot(self) -> dict[str, Any]:
        """The whole state, after catching up with the store (for the caller only)."""
        await self.keeper.sync()
        return self.conference.snapshot(time.time())

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

    def _reloaded(self, reason: str | None) -> None:
        """The state came from the store: at start, after an outage, after the store was found
        emptied and refilled (all announced to every client with a snapshot; a refill also with
        `store:recovered`), or another process's commit (its patch reached the clients)."""
        self.sync_media()
        if reason is None or reason == "replaced":  # (the process that refilled it told everyone)
            return
        if reason == "reseeded":
            self.broadcaster.publish("store:recovered", {
                "version": self.conference.version,
                "audit_from": self.conference.audit.entries[0].seq if self.conference.audit.entries
                else self.conference.audit.last_seq + 1})
        self.broadcaster.publish("state:snapshot", self.conference.snapshot(time.time()))

    def sync_media(self) -> None:
        """The router drops exactly the muted sites' audio; the scene follows program and floor."""
        muted = self.conference.muted()
        router = self.hub.router
        for site in muted ^ self._muted:
            router.set_muted(site, site in muted)
        self._muted = muted
        c = self.conference
        for site in c.poor_lines ^ self._poor_lines:
            router.pin_low(site, site in c.poor_lines)
        self._poor_lines = set(c.poor_lines)
        if c.program != self.hub.router.scene.program:
            self.program_switches += 1
        heard = tuple(s for s in c.control.floor.holders if s != c.program)
        self.hub.set_scene(Scene(c.roster.hall.id, c.program, heard, dict(c.listen),
                                 c.control.content.presenter))

    # -- from the media (the hub's MediaObserver and the router's audio levels) -------------

    def media_state(self, participant_id: str, state: str) -> None:
        """A site's peer connection changed: its presence follows."""
        if participant_id not in self.conference.sites:
            return
        presence = {"connected": Presence.LIVE, "failed": Presence.LOST, "lost": Presence.LOST,
                    "closed": Presence.LOST}.get(state)
        if presence is Presence.LOST:  # the gap starts at its last packet, not when noticed
            silent = self.hub.router.health(participant_id, time.monotonic())["silent_s"]
            self.presence(participant_id, presence, None if silent is None else time.time() - silent)
        elif presence is not None:
            self.presence(participant_id, presence)

    def media_quality(self, participant_id: str, level: str) -> None:
        """Tell a publisher what to send (its page is in its participant room)."""
        low = self._ladder[LOW] if level == HIGH else None  # the second layer, on the program only
        self.broadcaster.publish("media:quality", {"level": level, **self._ladder[level], "low": low},
                                 to=participant_room(participant_id))

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
        """What the media core observed of a site (the conference adds whether it is live)."""
        stats = self.hub.router.publisher_stats(site)
        now = time.monotonic()
        audio, video = stats.get("audio"), stats.get("video")
        return Evidence(
            audio_heard=audio is not None and now - audio.last_arrival < AUDIO_FRESH_S,
            video_received=video is not None and video.received > 0)
