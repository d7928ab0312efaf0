"""The edge: raw Socket.IO payloads become typed commands or a clear error; errors map to the wire.

Nothing beyond this module handles a raw payload dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.media.hub import MAX_SDP_BYTES
from bridge.roster import Roster


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
