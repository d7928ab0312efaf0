"""The media hub: one peer connection per participant, negotiated in order, freed on leave.

Owns every PeerLink and the tasks that close them; reports media state upward through
`MediaObserver`. A participant that offers again (a rejoin) gets a fresh peer connection in the
same slot: aiortc has no ICE restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bridge.media.aiortc_adapter import IcePolicy, PeerLink
from bridge.media.router import ProgramRouter

log = logging.getLogger(__name__)
MAX_SDP_BYTES = 64 * 1024


class MediaObserver(Protocol):
    def media_state(self, participant_id: str, state: str) -> None: ...


@dataclass(frozen=True, slots=True)
class MediaRole:
    """What the bridge does with a participant's media."""

    publishes: bool  # its audio/video may become the program
    receives: bool  # it is sent the program


class MediaHub:
    def __init__(self, policy: IcePolicy, router: ProgramRouter, observer: MediaObserver,
                 link_factory: Callable[..., PeerLink] = PeerLink) -> None:
        self._policy = policy
        self._router = router
        self._observer = observer
        self._factory = link_factory
        self._links: dict[str, PeerLink] = {}
        self._roles: dict[str, MediaRole] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def router(self) -> ProgramRouter:
        return self._router

    def link(self, participant_id: str) -> PeerLink | None:
        return self._links.get(participant_id)

    def link_count(self) -> int:
        return len(self._links)

    async def offer(self, participant_id: str, role: MediaRole, sdp: str) -> str:
        """Answer a participant's offer with a new peer connection (an old one is closed first)."""
        async with self._lock(participant_id):
            await self._close(participant_id)
            holder: list[PeerLink] = []
            link = self._factory(participant_id, self._policy, self._router,
                                 lambda state: self._on_state(holder[0], state))
            holder.append(link)
            self._links[participant_id] = link
            self._roles[participant_id] = role
            try:
                return await link.accept_offer(sdp, send=role.receives)
            except Exception:
                await self._close(participant_id)
                raise

    async def leave(self, participant_id: str) -> None:
        async with self._lock(participant_id):
            await self._close(participant_id)
        self._locks.pop(participant_id, None)

    async def close(self) -> None:
        for participant_id in list(self._links):
            await self.leave(participant_id)

    def _lock(self, participant_id: str) -> asyncio.Lock:
        return self._locks.setdefault(participant_id, asyncio.Lock())

    async def _close(self, participant_id: str) -> None:
        link = self._links.pop(participant_id, None)
        self._roles.pop(participant_id, None)
        if link is None:
            return
        self._router.remove(participant_id)
        await link.close()

    def _on_state(self, link: PeerLink, state: str) -> None:
        participant_id = link.participant_id
        role = self._roles.get(participant_id)
        if self._links.get(participant_id) is not link or role is None:
            return  # a replaced or closed link: its slot belongs to someone newer
        if state == "connected":
            if role.publishes:
                self._router.add_source(link)
            if role.receives:
                self._router.add_sink(link)
        elif state in ("failed", "closed"):
            self._router.remove(participant_id)
        self._observer.media_state(participant_id, state)
