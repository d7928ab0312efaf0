"""The Socket.IO namespace: authenticate on connect, then parse, authorise, delegate, ack.

Handlers are thin; identity and role come from the verified token kept in the session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from bridge.conference import Conference, Presence
from bridge.media.hub import MediaHub, MediaRole
from signaling.broadcast import Broadcaster
from signaling.tokens import Identity, TokenAuthority, TokenError
from signaling.wire import WireError, ok, parse_empty, parse_media_offer

log = logging.getLogger(__name__)
Handler = Callable[[str, Identity, Any], Awaitable[dict[str, Any]]]


class ConferenceNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, tokens: TokenAuthority, conference: Conference, hub: MediaHub,
                 broadcaster: Broadcaster) -> None:
        super().__init__("/")
        self._broadcaster = broadcaster
        self._tokens = tokens
        self._conference = conference
        self._hub = hub
        self._identities: dict[str, Identity] = {}
        self._site_sid: dict[str, str] = {}  # site id -> the connection that holds its slot

    # -- connection ------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = self._tokens.verify(token)
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                str(exc), {"code": "unauthorized"}) from None
        self._identities[sid] = identity
        if identity.site_id is not None:
            previous = self._site_sid.get(identity.site_id)
            self._site_sid[identity.site_id] = sid
            if previous is not None:  # the same site joined again: the new page takes the slot
                await self._hub.leave(identity.site_id)
                await self.disconnect(previous)
            self._presence(identity.site_id, Presence.SIGNALING)
        await self.emit("welcome", self._welcome(identity), to=sid)
        log.info("connected site=%s role=%s", identity.subject, identity.role.value)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        identity = self._identities.pop(sid, None)
        if identity is None:
            return
        site_id = identity.site_id
        if site_id is None:
            await self._hub.leave(self._participant(sid, identity))
        elif self._site_sid.get(site_id) == sid:  # a page replaced by a newer one owns nothing
            del self._site_sid[site_id]
            await self._hub.leave(site_id)
            self._presence(site_id, Presence.OFFLINE)

    # -- events ----------------------------------------------------------------------------

    async def on_media_offer(self, sid: str, payload: Any = None) -> dict[str, Any]:
        return await self._handle(sid, payload, self._media_offer)

    async def on_media_leave(self, sid: str, payload: Any = None) -> dict[str, Any]:
        return await self._handle(sid, payload, self._media_leave)

    async def on_state_get(self, sid: str, payload: Any = None) -> dict[str, Any]:
        return await self._handle(sid, payload, self._state_get)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Events are named `media:offer` on the wire; handlers `on_media_offer` here."""
        handler = f"on_{event.replace(':', '_')}"
        if event in ("connect", "disconnect") or hasattr(self, handler):
            return await super().trigger_event(event.replace(":", "_"), *args)
        sid = args[0] if args else ""
        return WireError("unknown_event", f"unknown event {event[:64]!r}").to_wire() if sid else None

    async def _handle(self, sid: str, payload: Any, handler: Handler) -> dict[str, Any]:
        identity = self._identities.get(sid)
        if identity is None:
            return WireError("unauthorized", "not connected").to_wire()
        try:
            return await handler(sid, identity, payload)
        except WireError as exc:
            return exc.to_wire()
        except Exception:
            log.exception("handler failed site=%s", identity.subject)
            return WireError("internal", "the server could not apply this command").to_wire()

    async def _media_offer(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        offer = parse_media_offer(payload)
        role = MediaRole(publishes=identity.role.publishes,
                         receives=identity.role.receives_program)
        try:
            answer = await self._hub.offer(self._participant(sid, identity), role, offer.sdp)
        except ValueError as exc:
            raise WireError("bad_sdp", f"the offer was refused: {str(exc)[:200]}") from None
        if identity.site_id is not None:
            self._presence(identity.site_id, Presence.CONNECTING)
        return ok(answer={"type": "answer", "sdp": answer})

    async def _media_leave(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        parse_empty(payload)
        await self._hub.leave(self._participant(sid, identity))
        if identity.site_id is not None:
            self._presence(identity.site_id, Presence.SIGNALING)
        return ok()

    async def _state_get(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        parse_empty(payload)
        return ok(state=self._conference.snapshot())

    # -- upward from the media hub ---------------------------------------------------------

    def media_state(self, participant_id: str, state: str) -> None:
        if participant_id not in self._conference.sites:
            return
        presence = {"connected": Presence.LIVE, "failed": Presence.LOST}.get(state)
        if presence is not None:
            self._presence(participant_id, presence)

    # -- helpers ---------------------------------------------------------------------------

    def _participant(self, sid: str, identity: Identity) -> str:
        """Sites (and the hall) own a slot named by their site id; other roles one per page."""
        return identity.site_id or f"{identity.role.value}:{sid}"

    def _presence(self, site_id: str, presence: Presence) -> None:
        patch = self._conference.set_presence(site_id, presence, time.time())
        if patch is not None:
            self._broadcast(patch)

    def _broadcast(self, patch: dict[str, Any]) -> None:
        self._broadcaster.publish("state", patch)

    def _welcome(self, identity: Identity) -> dict[str, Any]:
        site = self._conference.roster.get(identity.site_id) if identity.site_id else None
        return {"you": {"role": identity.role.value, "site": site.to_wire() if site else None},
                "roster": self._conference.roster.to_wire(),
                "regions": self._conference.roster.regions,
                "hall": self._conference.roster.hall.id,
                "state": self._conference.snapshot(),
                "media": {"send": identity.role.publishes,
                          "receive": identity.role.receives_program}}

