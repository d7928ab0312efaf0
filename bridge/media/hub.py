"""The media hub: one peer connection per participant, negotiated in order, freed on leave.

Owns every PeerLink, the media router, and the one periodic task that sends RTCP reports.
Reports upward through `MediaObserver`: media state, and the quality each publisher should send.
A participant that offers again (a rejoin) gets a fresh peer connection in the same slot: aiortc
has no ICE restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Member:
    lines: tuple[Line, ...]

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
        self._links: dict[str, PeerLink] = {}
        self.outbox = Outbox()  # every link's packets of one loop turn, written at its end
        self._members: dict[str, Member] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._quality: dict[str, str] = {}
        self.membership_changes = 0  # peer connections opened or closed so far
        self._ignored_closed = 0  # packets the closed links ignored
        self._task: asyncio.Task[None] | None = None
        self._recorder: Recorder | None = None
        self._silent: set[str] = set()  # connected, but nothing heard for LOST_AFTER_S

    @property
    def router(self) -> MediaRouter:
        return self._router

    def link(self, participant_id: str) -> PeerLink | None:
        return self._links.get(participant_id)

    def link_count(self) -> int:
        return len(self._links)

    @property
    def ignored_packets(self) -> int:
        """Packets every link, open or closed, received but could not use."""
        return self._ignored_closed + sum(link.ignored_packets for link in self._links.values())

    def start(self) -> None:
        restrict_host_addresses(self._policy.host_addresses)  # once, for the whole process
        self._task = asyncio.create_task(self._report_loop(), name="rtcp-reports")

    async def offer(self, participant_id: str, lines: Sequence[Line], sdp: str) -> str:
        """Answer a participant's offer with a new peer connection (an old one is closed first)."""
        async with self._lock(participant_id):
            await self._close(participant_id)
            holder: list[PeerLink] = []
            link = self._factory(participant_id, self._policy, self._router,
                                 lambda state: self._on_state(holder[0], state), outbox=self.outbox)
            holder.append(link)
            self._links[participant_id] = link
            self.membership_changes += 1
            self._members[participant_id] = Member(tuple(lines))
            try:
                return await link.accept_offer(sdp, lines)
            except Exception:
                await self._close(participant_id)
                raise

    async def leave(self, participant_id: str) -> None:
        async with self._lock(participant_id):
            await self._close(participant_id)
        self._locks.pop(participant_id, None)

    async def close(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None
        for participant_id in list(self._links):
            await self.leave(participant_id)
        if self._recorder is not None:
            await self.stop_recording()
        self._router.close()
        self.outbox.close()

    @property
    def recording(self) -> Recorder | None:
        return self._recorder

    def start_recording(self, path: Path) -> Recorder:
        """Record what an observer sees and hears, from the forwarded packets."""
        if self._recorder is not None:
            raise RuntimeError("already recording")
        recorder = self._recorder = Recorder(path)
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
        for participant_id in self._links:
            self._tell_quality(participant_id)

    def _lock(self, participant_id: str) -> asyncio.Lock:
        return self._locks.setdefault(participant_id, asyncio.Lock())

    async def _close(self, participant_id: str) -> None:
        link = self._links.pop(participant_id, None)
        if link is not None:
            self.membership_changes += 1
        self._members.pop(participant_id, None)
        self._quality.pop(participant_id, None)
        self._silent.discard(participant_id)
        if link is None:
            return
        self._ignored_closed += link.ignored_packets
        self._router.remove(participant_id)
        await link.close()

    def _on_state(self, link: PeerLink, state: str) -> None:
        participant_id = link.participant_id
        member = self._members.get(participant_id)
        if self._links.get(participant_id) is not link or member is None:
            return  # a replaced or closed link: its slot belongs to someone newer
        if state == "connected":
            if member.publishes:
                self._router.add_publisher(link)
                self._tell_quality(participant_id)
            self._router.add_receiver(link, [(s.name, s) for s in link.slots])
        elif state in ("failed", "closed"):
            self._router.remove(participant_id)
        self._observer.media_state(participant_id, state)

    def _tell_quality(self, participant_id: str) -> None:
        member = self._members.get(participant_id)
        if member is None or not member.publishes:
            return
        level = quality_for(self._router.scene, participant_id)
        if self._quality.get(participant_id) != level:
            self._quality[participant_id] = level
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
        for participant_id, link in list(self._links.items()):
            if link.state != "connected":
                continue
            silent = now - link.last_heard
            if silent > CLOSE_AFTER_S:
                log.warning("media of %s silent for %.0f s: closing it", participant_id, silent)
                await self.leave(participant_id)
                self._observer.media_state(participant_id, "closed")
            elif silent > LOST_AFTER_S and participant_id not in self._silent:
                self._silent.add(participant_id)
                self._observer.media_state(participant_id, "lost")
            elif silent <= LOST_AFTER_S and participant_id in self._silent:
                self._silent.discard(participant_id)
                self._observer.media_state(participant_id, "connected")
