"""The Socket.IO namespace: authenticate on connect, then parse, authorise, delegate, ack.

Handlers are thin; identity and role come from the verified token kept per connection. Every
event name maps to one `_do_<event>` method through `EVENTS`; the permission matrix lives in
`bridge.permissions`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import socketio

from bridge.control import Refused
from bridge.permissions import AUDITED, allowed
from bridge.roles import Role
from bridge.store import AlreadyApplied
from bridge.tasks import cancel_and_wait
from signaling.ratelimit import TokenBucket
from signaling.service import ConferenceService, participant_room
from signaling.tokens import Identity, TokenAuthority, TokenError
from signaling.wire import (
    COMMANDS,
    WireError,
    ok,
    parse_audit_query,
    parse_command,
    parse_empty,
    parse_media_offer,
    parse_mode,
    parse_poor_line,
    parse_site_choice,
    split_command_id,
)

log = logging.getLogger(__name__)
Handler = Callable[..., Awaitable[dict[str, Any]]]
SESSION_CHECK_S = 1.0  # how often live sessions are checked against revocation and expiry
IDENTIFIED = frozenset({*COMMANDS, "program:set", "program:mode", "line:set"})  # take a command `id`


class ConferenceNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, tokens: TokenAuthority, service: ConferenceService,
                 rate: tuple[float, float] = (20.0, 40.0), per_token: int = 4,
                 ice_servers: Callable[[str], list[dict[str, Any]]] = lambda who: []) -> None:
        """`ice_servers(who)`: the STUN/TURN servers a client is given (TURN credentials of its
        own, named after `who`)."""
        super().__init__("/")
        self._ice_servers = ice_servers
        self._rate = rate
        self._per_token = per_token
        self._tokens = tokens
        self._service = service
        self._conference = service.conference
        self._identities: dict[str, Identity] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self.latency: Callable[[str, float], None] = lambda event, seconds: None  # metrics hook
        self.rate_limited = 0  # events refused by the rate limit (not audited: that would amplify)
        self._site_sid: dict[str, str] = {}  # site id -> the connection that holds its slot
        self._watcher: asyncio.Task[None] | None = None
        self.sessions_ended: dict[str, int] = {}  # reason -> sessions ended for it
        self._events: dict[str, Handler] = {
            "media:offer": self._do_media_offer, "media:leave": self._do_media_leave,
            "state:get": self._do_state_get, "program:set": self._do_program_set,
            "program:mode": self._do_program_mode, "listen:set": self._do_listen_set,
            "line:set": self._do_line_set,
            "record:start": self._do_record_start, "record:stop": self._do_record_stop,
            "audit:get": self._do_audit_get,
            **dict.fromkeys(COMMANDS, self._do_command),
        }

    # -- connection ------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            identity = self._tokens.verify(token)
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                str(exc), {"code": "unauthorized"}) from None
        if identity.site_id is None and sum(
                i.token_id == identity.token_id for i in self._identities.values()) >= self._per_token:
            raise socketio.exceptions.ConnectionRefusedError(
                f"this link already has {self._per_token} pages open", {"code": "too_many_connections"})
        self._identities[sid] = identity
        if identity.site_id is not None:
            previous = self._site_sid.get(identity.site_id)
            self._site_sid[identity.site_id] = sid
            await self.enter_room(sid, participant_room(identity.site_id))  # its media:quality
            # the same site joined again: the new page takes the slot
            await self._service.page_joined(identity.site_id, replacing=previous is not None)
            if previous is not None:
                await self.disconnect(previous)
        if identity.role in (Role.TECHNICIAN, Role.MODERATOR):
            await self.enter_room(sid, "console")  # levels and network health of every site
        await self.emit("welcome", self._welcome(identity), to=sid)
        log.info("connected site=%s role=%s", identity.subject, identity.role.value)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        identity = self._identities.pop(sid, None)
        self._buckets.pop(sid, None)
        if identity is None:
            return
        site_id = identity.site_id
        if site_id is None:
            await self._service.page_left(self._participant(sid, identity), None)
        elif self._site_sid.get(site_id) == sid:  # a page replaced by a newer one owns nothing
            del self._site_sid[site_id]
            await self._service.page_left(site_id, site_id)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid, payload = (args[0] if args else ""), (args[1] if len(args) > 1 else None)
        handler = self._events.get(event)
        if handler is None:
            return WireError("unknown_event", f"unknown event {str(event)[:64]!r}").to_wire()
        return await self._handle(sid, event, payload, handler)

    async def _handle(self, sid: str, event: str, payload: Any, handler: Handler) -> dict[str, Any]:
        identity = self._identities.get(sid)
        if identity is None:
            return WireError("unauthorized", "not connected").to_wire()
        ended = self._tokens.ended(identity)
        if ended is not None:  # checked on every event: a revoked link cannot act, not even once
            # (the session watcher tells the page and disconnects it within a second; this answer
            # goes out first)
            return WireError("unauthorized", f"token {ended}: this session has ended").to_wire()
        bucket = self._buckets.get(sid)
        if bucket is None:
            bucket = self._buckets[sid] = TokenBucket(*self._rate, tokens=self._rate[1])
        if not bucket.allow(time.monotonic()):
            self.rate_limited += 1
            return WireError("rate_limited", "too many events from this page: slow down").to_wire()
        started = time.perf_counter()
        try:
            return await self._authorised(sid, identity, event, payload, handler)
        finally:
            self.latency(event, time.perf_counter() - started)

    async def _authorised(self, sid: str, identity: Identity, event: str, payload: Any,
                          handler: Handler) -> dict[str, Any]:
        if not allowed(identity.role, event):
            return await self._refuse(identity, event, payload,
                                      WireError("forbidden", f"role {identity.role.value} may not {event}"))
        try:
            if event in IDENTIFIED:  # a command the client names can be retried safely
                payload, command_id = split_command_id(payload)
                scoped = None if command_id is None else f"{identity.token_id}:{command_id}"
                if handler == self._do_command:
                    return await handler(sid, identity, payload, scoped, event)
                return await handler(sid, identity, payload, scoped)
            return await handler(sid, identity, payload)
        except WireError as exc:
            return await self._refuse(identity, event, payload, exc)
        except Refused as refusal:  # the domain refused it, and audited it in the same change
            return WireError(refusal.code, refusal.message).to_wire()
        except AlreadyApplied as done:  # a retry: the first one was made, once
            return ok(version=done.version, repeated=True)
        except Exception:
            log.exception("handler failed site=%s event=%s", identity.subject, event)
            return WireError("internal", "the server could not apply this command").to_wire()

    async def _refuse(self, identity: Identity, event: str, payload: Any,
                      error: WireError) -> dict[str, Any]:
        """A refusal at the edge; an action that would have changed the conference is audited."""
        if event in AUDITED:
            target = self._conference.audit_target(payload.get("site") if isinstance(payload, dict) else None)
            await self._service.refused(identity.actor(), event, target, error.code, error.message)
        return error.to_wire()

    # -- sessions whose token ended -----------------------------------------------------------

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch_sessions(), name="session-watch")

    async def stop(self) -> None:
        await cancel_and_wait([self._watcher])
        self._watcher = None

    async def _watch_sessions(self) -> None:
        """Every second: sessions whose token was revoked (on any process: the list is shared)
        or has expired are told why and disconnected."""
        while True:
            await asyncio.sleep(SESSION_CHECK_S)
            now = time.time()
            for sid, identity in list(self._identities.items()):
                ended = self._tokens.ended(identity, now)
                if ended is not None:
                    try:
                        await self._end(sid, ended)
                    except Exception:
                        log.exception("ending session %s failed", sid)

    async def _end(self, sid: str, reason: str) -> None:
        identity = self._identities.get(sid)
        if identity is None:
            return
        self.sessions_ended[reason] = self.sessions_ended.get(reason, 0) + 1
        log.info("session ended (%s) site=%s role=%s", reason, identity.subject, identity.role.value)
        await self.emit("session:ended", {"reason": reason}, to=sid)
        await self.disconnect(sid)

    # -- events ----------------------------------------------------------------------------

    async def _do_media_offer(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        offer = parse_media_offer(payload)
        answer = await self._service.media_offer(self._participant(sid, identity), identity.role,
                                                 identity.site_id, offer.sdp)
        return ok(answer={"type": "answer", "sdp": answer})

    async def _do_media_leave(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        parse_empty(payload)
        await self._service.media_leave(self._participant(sid, identity), identity.site_id)
        return ok()

    async def _do_state_get(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        parse_empty(payload)
        return ok(state=await self._service.snapshot())

    async def _do_command(self, sid: str, identity: Identity, payload: Any, command_id: str | None,
                          event: str) -> dict[str, Any]:
        command = parse_command(event, payload, identity.site_id)
        return ok(version=await self._service.apply(identity.actor(), command, command_id))

    async def _do_program_set(self, sid: str, identity: Identity, payload: Any,
                              command_id: str | None) -> dict[str, Any]:
        site = parse_site_choice(payload, self._conference.roster, allow_none=False)
        assert site is not None
        return ok(version=await self._service.set_program(identity.actor(), site, command_id))

    async def _do_program_mode(self, sid: str, identity: Identity, payload: Any,
                               command_id: str | None) -> dict[str, Any]:
        mode = parse_mode(payload)
        return ok(version=await self._service.set_mode(identity.actor(), mode, command_id))

    async def _do_line_set(self, sid: str, identity: Identity, payload: Any,
                           command_id: str | None) -> dict[str, Any]:
        site, poor = parse_poor_line(payload, self._conference.roster)
        return ok(version=await self._service.set_poor_line(identity.actor(), site, poor, command_id))

    async def _do_listen_set(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        site = parse_site_choice(payload, self._conference.roster, allow_none=True)
        await self._service.set_listen(self._participant(sid, identity), site, identity.actor())
        return ok(site=site)

    async def _do_audit_get(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        since, latest = parse_audit_query(payload)
        return ok(entries=await self._service.audit(since, latest))

    async def _do_record_start(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        parse_empty(payload)
        return ok(file=await self._service.start_recording(identity.actor()))

    async def _do_record_stop(self, sid: str, identity: Identity, payload: Any) -> dict[str, Any]:
        parse_empty(payload)
        summary = await self._service.stop_recording(identity.actor())
        if summary is None:  # the recording had ended with the process that made it
            return ok(file="", seconds=0.0, video_frames=0, audio_frames=0)
        return ok(file=Path(summary.path).name, seconds=round(summary.seconds, 1),
                  video_frames=summary.video_frames, audio_frames=summary.audio_frames,
                  content_frames=summary.content_frames)

    # -- helpers ---------------------------------------------------------------------------

    def _participant(self, sid: str, identity: Identity) -> str:
        """Sites (and the hall) own a slot named by their site id; other roles one per page."""
        return identity.site_id or f"{identity.role.value}:{sid}"

    def _welcome(self, identity: Identity) -> dict[str, Any]:
        site = self._conference.roster.get(identity.site_id) if identity.site_id else None
        return {"you": {"role": identity.role.value, "site": site.to_wire() if site else None},
                "roster": self._conference.roster.to_wire(),
                "regions": self._conference.roster.regions,
                "hall": self._conference.roster.hall.id,
                "state": self._conference.snapshot(time.time()),
                "commands": sorted(IDENTIFIED),  # the events that take a command `id`
                "ice": {"servers": self._ice_servers(
                    identity.site_id or f"{identity.role.value}-{identity.token_id[:12]}")},
                "media": {"send": identity.role.publishes,
                          "receive": identity.role.receives_program,
                          "lines": [line.to_wire() for line in self._service.lines(identity.role)]}}
