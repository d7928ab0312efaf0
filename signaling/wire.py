"""The edge: raw Socket.IO payloads become typed commands or a clear error; errors map to the wire.

Nothing beyond this module handles a raw payload dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.conference import MODES
from bridge.control.agenda import Item
from bridge.control.commands import (
    TOPIC_MAX,
    AgendaNext,
    AgendaSet,
    Command,
    FloorAccept,
    FloorCancel,
    FloorDeny,
    FloorGrant,
    FloorGrantNext,
    FloorRelease,
    FloorReorder,
    FloorRequest,
    FloorRevoke,
    MuteAll,
    MuteAnswer,
    MuteAsk,
    MuteSelf,
    MuteSet,
    RollcallAnswer,
    RollcallEnd,
    RollcallMark,
    RollcallStart,
)
from bridge.media.hub import MAX_SDP_BYTES
from bridge.roster import Roster
from bridge.store import AUDIT_PAGE


class WireError(Exception):
    """A refusal sent to the client in an ack: a stable code and a human message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_wire(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": self.code, "message": self.message}}


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


@dataclass(frozen=True, slots=True)
class MediaOffer:
    sdp: str


def _object(payload: Any, allowed: set[str]) -> dict[str, Any]:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise WireError("bad_request", "payload must be a JSON object")
    unknown = set(payload) - allowed
    if unknown:
        raise WireError("bad_request", f"unknown field {sorted(map(str, unknown))[0]!r}")
    return payload


def parse_empty(payload: Any) -> None:
    _object(payload, set())


def parse_media_offer(payload: Any) -> MediaOffer:
    data = _object(payload, {"type", "sdp"})
    if data.get("type") != "offer":
        raise WireError("bad_request", "type must be 'offer'")
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise WireError("bad_request", "sdp must be an SDP offer text starting with 'v=0'")
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise WireError("too_large", f"sdp is larger than {MAX_SDP_BYTES} bytes")
    return MediaOffer(sdp)


def parse_site_choice(payload: Any, roster: Roster, allow_none: bool) -> str | None:
    """`{"site": "<roster id>"}` (or `{"site": null}` where allowed)."""
    data = _object(payload, {"site"})
    site = data.get("site")
    if site is None and allow_none and "site" in data:
        return None
    if not isinstance(site, str) or site not in roster:
        raise WireError("bad_request", "site must be a site id of the roster")
    return site


# -- control commands ----------------------------------------------------------------------

Field = Callable[[str, Any], Any]


def _text(limit: int) -> Field:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise WireError("bad_request", f"{name} must be text")
        if len(value) > limit:
            raise WireError("too_large", f"{name} is longer than {limit} characters")
        return value
    return check


def _integer(low: int, high: int) -> Field:
    def check(name: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise WireError("bad_request", f"{name} must be a whole number from {low} to {high}")
        return value
    return check


def _number(low: float, high: float) -> Field:
    def check(name: str, value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
            raise WireError("bad_request", f"{name} must be a number from {low} to {high}")
        return float(value)
    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise WireError("bad_request", f"{name} must be true or false")
    return value


def _site(name: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise WireError("bad_request", "site must be a site id of the roster")
    return value


def _items(name: str, value: Any) -> tuple[Item, ...]:
    if not isinstance(value, list) or len(value) > 200:
        raise WireError("bad_request", "items must be a list of at most 200 agenda items")
    out = []
    for raw in value:
        data = _object(raw, {"title", "speaker", "minutes"})
        if not {"title", "speaker", "minutes"} <= set(data):
            raise WireError("bad_request", "each item needs title, speaker and minutes")
        out.append(Item(_text(200)("title", data["title"]), _site("speaker", data["speaker"]),
                        _number(0, 600)("minutes", data["minutes"])))
    return tuple(out)


TOPIC, NAME, REASON = _text(TOPIC_MAX), _text(120), _text(300)
# event -> command class, its fields (name -> check), and the fields that must be present
COMMANDS: dict[str, tuple[type[Command], dict[str, Field], set[str]]] = {
    "floor:request": (FloorRequest, {"site": _site, "topic": TOPIC, "priority": _integer(0, 9)}, set()),
    "floor:cancel": (FloorCancel, {"site": _site}, set()),
    "floor:release": (FloorRelease, {"site": _site}, set()),
    "floor:accept": (FloorAccept, {"site": _site}, {"site"}),
    "floor:deny": (FloorDeny, {"site": _site, "reason": REASON}, {"site"}),
    "floor:grant": (FloorGrant, {"site": _site, "limit_s": _number(10, 14400)}, {"site"}),
    "floor:next": (FloorGrantNext, {}, set()),
    "floor:revoke": (FloorRevoke, {"site": _site}, {"site"}),
    "floor:reorder": (FloorReorder, {"site": _site, "position": _integer(1, 1000)}, {"site", "position"}),
    "mute:self": (MuteSelf, {"muted": _flag}, {"muted"}),
    "mute:set": (MuteSet, {"site": _site, "muted": _flag, "hard": _flag}, {"site", "muted"}),
    "mute:all": (MuteAll, {"except_floor": _flag}, set()),
    "mute:ask": (MuteAsk, {"site": _site}, {"site"}),
    "mute:answer": (MuteAnswer, {"accept": _flag}, {"accept"}),
    "rollcall:start": (RollcallStart, {}, set()),
    "rollcall:answer": (RollcallAnswer, {"status": _text(20), "name": NAME, "reason": REASON}, {"status"}),
    "rollcall:mark": (RollcallMark, {"site": _site, "status": _text(20), "name": NAME, "reason": REASON},
                      {"site", "status"}),
    "rollcall:end": (RollcallEnd, {}, set()),
    "agenda:set": (AgendaSet, {"items": _items}, {"items"}),
    "agenda:next": (AgendaNext, {}, set()),
}


def parse_command(event: str, payload: Any, own_site: str | None) -> Command:
    """A control command from its payload; a site's own commands target itself by default."""
    cls, fields, required = COMMANDS[event]
    data = _object(payload, set(fields))
    missing = required - set(data)
    if missing:
        raise WireError("bad_request", f"missing field {sorted(missing)[0]!r}")
    values = {name: fields[name](name, value) for name, value in data.items()}
    if "site" not in values and own_site is not None and cls not in _CONFERENCE_WIDE:
        values["site"] = own_site
    return cls(**values)


_CONFERENCE_WIDE = (FloorGrantNext, MuteAll, RollcallStart, RollcallEnd, AgendaSet, AgendaNext)


def parse_audit_query(payload: Any) -> tuple[int, int | None]:
    """`{"since"?: seq}` (entries after it) or `{"latest": n}` (the last n, 1..1000)."""
    data = _object(payload, {"since", "latest"})
    if "since" in data and "latest" in data:
        raise WireError("bad_request", "give since or latest, not both")
    since = int(_integer(0, 1 << 62)("since", data.get("since", 0)))
    latest = data.get("latest")
    return since, None if latest is None else int(_integer(1, AUDIT_PAGE)("latest", latest))


def parse_mode(payload: Any) -> str:
    data = _object(payload, {"mode"})
    mode = data.get("mode")
    if not isinstance(mode, str) or mode not in MODES:
        raise WireError("bad_request", f"mode must be one of {', '.join(MODES)}")
    return str(mode)
