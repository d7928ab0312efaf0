"""The edge: raw Socket.IO payloads become typed commands or a clear error; errors map to the wire.

Nothing beyond this module handles a raw payload dict.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.control.agenda import Item
from bridge.control.commands import (
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
    PresentGrant,
    PresentRevoke,
    PresentStart,
    PresentStop,
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


COMMAND_ID_MAX = 64
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def split_command_id(payload: Any) -> tuple[Any, str | None]:
    """A state-changing event may carry `id`, the client's name for this command (1-64 of
    A-Z a-z 0-9 _ -): a retry with the same id is made once. The payload without it, and it."""
    if not isinstance(payload, dict) or "id" not in payload:
        return payload, None
    rest = {k: v for k, v in payload.items() if k != "id"}
    value = payload["id"]
    if not isinstance(value, str) or not 0 < len(value) <= COMMAND_ID_MAX or set(value) - _ID_CHARS:
        raise WireError("bad_request", f"id must be 1-{COMMAND_ID_MAX} characters of A-Z, a-z, 0-9, _ and -")
    return rest, value


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


# direction overrides, embeddings and isolates: text that shows in another order than it is stored
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _text(name: str, value: Any) -> str:
    """Text as people typed it: NFC (one form of every Vietnamese letter), and refused when it
    holds a control character (NUL, newline, …) or a direction override."""
    if not isinstance(value, str):
        raise WireError("bad_request", f"{name} must be text")
    for ch in value:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs"):
            raise WireError("bad_request",
                            f"{name} holds a control or direction-override character (U+{ord(ch):04X})")
    return unicodedata.normalize("NFC", value)


def _integer(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError("bad_request", f"{name} must be a whole number")
    return value


def _number(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise WireError("bad_request", f"{name} must be a number")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise WireError("bad_request", f"{name} must be true or false")
    return value


def _site(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise WireError("bad_request", "site must be a site id of the roster")
    return value


def _items(name: str, value: Any) -> tuple[Item, ...]:
    if not isinstance(value, list):
        raise WireError("bad_request", "items must be a list of agenda items")
    out = []
    for raw in value:
        data = _object(raw, {"title", "speaker", "minutes"})
        if not {"title", "speaker", "minutes"} <= set(data):
            raise WireError("bad_request", "each item needs title, speaker and minutes")
        out.append(Item(_text("title", data["title"]), _site("speaker", data["speaker"]),
                        _number("minutes", data["minutes"])))
    return tuple(out)


# Shapes only (types, required fields): the ranges are the domain's (bridge/control/commands.py)
# event -> command class, its fields (name -> check), and the fields that must be present
COMMANDS: dict[str, tuple[type[Command], dict[str, Field], set[str]]] = {
    "floor:request": (FloorRequest, {"site": _site, "topic": _text, "priority": _integer}, set()),
    "floor:cancel": (FloorCancel, {"site": _site}, set()),
    "floor:release": (FloorRelease, {"site": _site}, set()),
    "floor:accept": (FloorAccept, {"site": _site}, {"site"}),
    "floor:deny": (FloorDeny, {"site": _site, "reason": _text}, {"site"}),
    "floor:grant": (FloorGrant, {"site": _site, "limit_s": _number}, {"site"}),
    "floor:next": (FloorGrantNext, {}, set()),
    "floor:revoke": (FloorRevoke, {"site": _site}, {"site"}),
    "floor:reorder": (FloorReorder, {"site": _site, "position": _integer}, {"site", "position"}),
    "mute:self": (MuteSelf, {"muted": _flag}, {"muted"}),
    "mute:set": (MuteSet, {"site": _site, "muted": _flag, "hard": _flag}, {"site", "muted"}),
    "mute:all": (MuteAll, {"except_floor": _flag}, set()),
    "mute:ask": (MuteAsk, {"site": _site}, {"site"}),
    "mute:answer": (MuteAnswer, {"accept": _flag}, {"accept"}),
    "rollcall:start": (RollcallStart, {}, set()),
    "rollcall:answer": (RollcallAnswer, {"status": _text, "name": _text, "reason": _text}, {"status"}),
    "rollcall:mark": (RollcallMark, {"site": _site, "status": _text, "name": _text, "reason": _text},
                      {"site", "status"}),
    "rollcall:end": (RollcallEnd, {}, set()),
    "agenda:set": (AgendaSet, {"items": _items}, {"items"}),
    "agenda:next": (AgendaNext, {}, set()),
    "present:start": (PresentStart, {"site": _site, "source": _text}, set()),
    "present:stop": (PresentStop, {"site": _site}, set()),
    "present:grant": (PresentGrant, {"site": _site}, {"site"}),
    "present:revoke": (PresentRevoke, {"site": _site}, {"site"}),
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
    since, latest = _integer("since", data.get("since", 0)), data.get("latest")
    if since < 0:
        raise WireError("bad_request", "since must be 0 or a seq")
    if latest is not None and not 1 <= _integer("latest", latest) <= AUDIT_PAGE:
        raise WireError("bad_request", f"latest must be a whole number from 1 to {AUDIT_PAGE}")
    return since, latest


def parse_poor_line(payload: Any, roster: Roster) -> tuple[str, bool]:
    """`{"site": "<roster id>", "poor": true|false}` (line:set)."""
    data = _object(payload, {"site", "poor"})
    site, poor = data.get("site"), data.get("poor")
    if not isinstance(site, str) or site not in roster:
        raise WireError("bad_request", "site must be a site id of the roster")
    if not isinstance(poor, bool):
        raise WireError("bad_request", "poor must be true or false")
    return site, poor


def parse_mode(payload: Any) -> str:
    data = _object(payload, {"mode"})
    mode = data.get("mode")
    if not isinstance(mode, str):
        raise WireError("bad_request", "mode must be text")  # which modes exist: the conference's
    return mode
