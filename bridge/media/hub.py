"""The media hub: one peer connection per participant, negotiated in order, freed on leave.

Owns every PeerLink, the media router, and the one periodic task that sends RTCP reports.
Reports upward through `MediaObserver`: media state, and the quality each publisher should send.
A participant that offers again (a rejoin) gets a fresh peer connection in the same slot: aiortc
has no ICE restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bridge.media.aiortc_adapter import IcePolicy, Outbox, PeerLink, restrict_host_addresses
from bridge.media.policy import Line, Scene, quality_for
from bridge.media.recorder import Recorder, RecordingSummary
from bridge.media.router import MediaRouter
from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)
MAX_SDP_BYTES = 512 * 1024  # the console offers one m-line per site: ~2 KB each
RTCP_INTERVAL_S = 1.0  # receiver/sender reports and REMB (RFC 3550 minimum is 5 s; WebRTC uses ~1 s)
# A participant whose media went silent (not even RTCP, which browsers send every second):
LOST_AFTER_S = 3.0  # ...is reported lost (the console's wall says so at the same time)
CLOSE_AFTER_S = 30.0  # ...and its peer connection is closed, freeing its sockets and tasks


class MediaObserver(Protocol):
    def media_state(self, participant_id: str, state: str) -> None: ...

    def media_quality(self, participant_id: str, level: str) -> None: ...


@dataclass(slots=True)
class Participant:
    """One participant's slot in the hub: its peer connection and what belongs to it. Freed as
    one record when the participant leaves (and no call for it is still waiting)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # its offers and leaves, in order
    users: int = 0  # calls holding or waiting for the lock
    link: PeerLink | None = None
    lines: tuple[Line, ...] = ()
    quality: str | None = None  # the level last told to it
    silent: bool = False  # connected, but nothing heard for LOST_AFTER_S

    @property
    def publishes(self) -> bool:
        return any(line.send for line in self.lines)


class MediaHub:
    def __init__(self, policy: IcePolicy, router: MediaRouter, observer: MediaObserver,
                 link_factory: Callable[..., PeerLink] = PeerLink) -> None:
        self._policy = policy
        self._router = router
        self._observer = observer
        self._factory = link_factory
        self._participants: dict[str, Participant] = {}
        self.outbox = Outbox()  # every link's packets of one loop turn, written at its end
        self.membership_changes = 0  # peer connections opened or closed so far
        self._ignored_closed = 0  # packets the closed links ignored
        self._task: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None

    @property
    def router(self) -> MediaRouter:
        return self._router

    def link(self, participant_id: str) -> PeerLink | None:
        p = self._participants.get(participant_id)
        return p.link if p is not None else None

    def _links(self) -> list[PeerLink]:
        return [p.link for p in self._participants.values() if p.link is not None]

    @property
    def policy(self) -> IcePolicy:
        return self._policy

    def link_count(self) -> int:
        return len(self._links())

    def participant_count(self) -> int:
        """Records held (a participant with a link, or a call for one under way)."""
        return len(self._participants)

    @property
    def ignored_packets(self) -> int:
        """Packets every link, open or closed, received but could not use."""
        return self._ignored_closed + sum(link.ignored_packets for link in self._links())

    def start(self) -> None:
        # the process's other aiortc peers (tests, tools) offer these too; the bridge's own
        # links gather by the policy (PeerLink: HostSockets)
        restrict_host_addresses(self._policy.host_addresses)
        self._task = asyncio.create_task(self._report_loop(), name="rtcp-reports")

    async def offer(self, participant_id: str, lines: Sequence[Line], sdp: str) -> str:
        """Answer a participant's offer with a new peer connection (an old one is closed first)."""
        async with self._holding(participant_id) as p:
            await self._close(participant_id, p)
            holder: list[PeerLink] = []
            link = self._factory(participant_id, self._policy, self._router,
                                 lambda state: self._on_state(holder[0], state), outbox=self.outbox)
            holder.append(link)
            p.link, p.lines = link, tuple(lines)
            self.membership_changes += 1
            try:
                return await link.accept_offer(sdp, lines)
            except Exception:
                await self._close(participant_id, p)
                raise

    async def leave(self, participant_id: str) -> None:
        async with self._holding(participant_id) as p:
            await self._close(participant_id, p)

    async def close(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None
        for participant_id in list(self._participants):
            await self.leave(participant_id)
        if self._recorder is not None:
            await self.stop_recording()
        self._router.close()
        self.outbox.close()

    @property
    def recording(self) -> Recorder | None:
        return self._recorder

    def start_recording(self, path: Path, content: bool = False) -> Recorder:
        """Record what an observer sees and hears, from the forwarded packets (`content`: and
        the presentation, as a second video track)."""
        if self._recorder is not None:
            raise RuntimeError("already recording")
        recorder = self._recorder = Recorder(path, content)
        recorder.start()
        self._router.add_receiver(recorder, list(recorder.slots.items()))
        return recorder

    async def stop_recording(self) -> RecordingSummary:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            raise RuntimeError("not recording")
        self._router.remove(recorder.participant_id)
        return await asyncio.to_thread(recorder.stop)  # finishing the file blocks

    def set_scene(self, scene: Scene) -> None:
        self._router.set_scene(scene)
        for participant_id in list(self._participants):
            self._tell_quality(participant_id)

    @contextlib.asynccontextmanager
    async def _holding(self, participant_id: str) -> AsyncIterator[Participant]:
        """The participant's record with its lock held; a record left with no link and no
        waiting call is freed."""
        p = self._participants.setdefault(participant_id, Participant())
        p.users += 1
        try:
            async with p.lock:
                yield p
        finally:
            p.users -= 1
            if p.users == 0 and p.link is None and self._participants.get(participant_id) is p:
                del self._participants[participant_id]

    async def _close(self, participant_id: str, p: Participant) -> None:
        link, p.link, p.lines, p.quality, p.silent = p.link, None, (), None, False
        if link is None:
            return
        self.membership_changes += 1
        self._ignored_closed += link.ignored_packets
        self._router.remove(participant_id)
        await link.close()

    def _on_state(self, link: PeerLink, state: str) -> None:
        participant_id = link.participant_id
        p = self._participants.get(participant_id)
        if p is None or p.link is not link:
            return  # a replaced or closed link: its slot belongs to someone newer
        if state == "connected":
            if p.publishes:
                self._router.add_publisher(link)
                self._tell_quality(participant_id)
            self._router.add_receiver(link, [(s.name, s) for s in link.slots])
        elif state in ("failed", "closed"):
            self._router.remove(participant_id)
        self._observer.media_state(participant_id, state)

    def _tell_quality(self, participant_id: str) -> None:
        p = self._participants.get(participant_id)
        if p is None or p.link is None or not p.publishes:
            return
        level = quality_for(self._router.scene, participant_id)
        if p.quality != level:
            p.quality = level
            self._observer.media_quality(participant_id, level)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(RTCP_INTERVAL_S)
            try:
                self._router.tick()
                await self._watch_silence(time.monotonic())
            except Exception:  # a report is never worth the loop: log and carry on
                log.exception("RTCP reports failed")

    async def _watch_silence(self, now: float) -> None:
        """A peer that vanished without closing: lost after a few seconds, freed after 30."""
        for participant_id, p in list(self._participants.items()):
            link = p.link
            if link is None or link.state != "connected":
                continue
            silent = now - link.last_heard
            if silent > CLOSE_AFTER_S:
                log.warning("media of %s silent for %.0f s: closing it", participant_id, silent)
                await self.leave(participant_id)
                self._observer.media_state(participant_id, "closed")
            elif silent > LOST_AFTER_S and not p.silent:
                p.silent = True
                self._observer.media_state(participant_id, "lost")
            elif silent <= LOST_AFTER_S and p.silent:
                p.silent = False
                self._observer.media_state(participant_id, "connected")
