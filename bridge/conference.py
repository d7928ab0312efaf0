"""The conference's shared state: who is present, what is on air, and the state version.

Pure: every change takes `now`, bumps the version and returns the patch to broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.roster import Roster


class Presence(StrEnum):
    OFFLINE = "offline"  # never joined, or left
    SIGNALING = "signaling"  # its page is connected, media not (yet) flowing
    CONNECTING = "connecting"  # media negotiated, ICE/DTLS under way
    LIVE = "live"  # media connected
    LOST = "lost"  # media failed or the page dropped without leaving


@dataclass(slots=True)
class SiteStatus:
    presence: Presence = Presence.OFFLINE
    since: float = 0.0
    joins: int = 0  # how many times its media connected (reconnects show here)

    def to_wire(self) -> dict[str, Any]:
        return {"presence": self.presence.value, "since": round(self.since, 3), "joins": self.joins}


class Conference:
    """Presence and program of one conference; versioned so clients can tell what they missed."""

    def __init__(self, conference_id: str, title: str, roster: Roster) -> None:
        self.id = conference_id
        self.title = title
        self.roster = roster
        self.version = 0
        self.program = roster.hall.id
        self.recording: dict[str, Any] | None = None  # {"file", "since"} while recording
        self.sites = {s.id: SiteStatus() for s in roster}

    def set_presence(self, site_id: str, presence: Presence, now: float) -> dict[str, Any] | None:
        """Record a site's presence; the patch to broadcast, or None when nothing changed."""
        status = self.sites[site_id]
        if status.presence is presence:
            return None
        status.presence, status.since = presence, now
        if presence is Presence.LIVE:
            status.joins += 1
        return self._bump({"sites": {site_id: status.to_wire()}})

    def set_program(self, site_id: str) -> dict[str, Any] | None:
        if site_id not in self.roster:
            raise KeyError(site_id)
        if site_id == self.program:
            return None
        self.program = site_id
        return self._bump({"program": site_id})

    def set_recording(self, file: str | None, now: float) -> dict[str, Any]:
        self.recording = None if file is None else {"file": file, "since": round(now, 3)}
        return self._bump({"recording": self.recording})

    def snapshot(self) -> dict[str, Any]:
        return {"version": self.version, "conference": {"id": self.id, "title": self.title},
                "program": self.program, "recording": self.recording,
                "sites": {sid: st.to_wire() for sid, st in self.sites.items()}}

    def _bump(self, patch: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        return {"version": self.version, **patch}
