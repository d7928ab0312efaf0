"""The presentation token, after H.239 / BFCP's content role: one presenter at a time.

A moderator or technician grants a remote site the right to present; a granted site (or the main
hall, which needs no grant) starts presenting and holds the token until it stops, its grant is
revoked, or it stays away longer than the grace. A second presenter is refused until the first
stops: a moderator who wants another revokes first. Grants outlive a presentation (a site may
show its slides in several turns); a site may hold a grant without presenting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.control import Refused

SOURCES = ("screen", "camera")  # a shared screen or window; a second camera / capture input


@dataclass(slots=True)
class ContentEvent:
    """What the token did (the audit log and the attendance report keep it)."""

    kind: str  # granted | revoked | started | switched | stopped | lost
    site: str
    at: float
    detail: str = ""


@dataclass(slots=True)
class Content:
    hall: str
    grace_s: float = 60.0
    presenter: str | None = None
    since: float = 0.0  # when the presenter started
    source: str = ""  # one of SOURCES while someone presents
    granted: dict[str, float] = field(default_factory=dict)  # site -> granted at
    away_since: float | None = None  # the presenter dropped, inside the grace

    def grant(self, site: str, now: float) -> list[ContentEvent]:
        if site == self.hall:
            raise Refused("bad_request", "the main hall presents without a grant")
        if site in self.granted:
            raise Refused("conflict", "this site may already present")
        self.granted[site] = now
        return [ContentEvent("granted", site, now)]

    def revoke(self, site: str, now: float) -> list[ContentEvent]:
        """Take the right away; a presentation under way ends with it (the hall's too)."""
        if site not in self.granted and site != self.presenter:
            raise Refused("conflict", "this site has no grant to present")
        events = self._end(now, "revoked") if site == self.presenter else []
        if site in self.granted:
            del self.granted[site]
            if not events:
                events = [ContentEvent("revoked", site, now)]
        return events

    def start(self, site: str, source: str, now: float) -> list[ContentEvent]:
        if source not in SOURCES:
            raise Refused("bad_request", f"source must be one of {', '.join(SOURCES)}")
        if site != self.hall and site not in self.granted:
            raise Refused("forbidden", "a site presents once a moderator grants it")
        if self.presenter is not None and self.presenter != site:
            raise Refused("conflict", "someone else is presenting: they stop first")
        if self.presenter == site:
            if source == self.source:
                raise Refused("conflict", "this site is already presenting")
            self.source, self.away_since = source, None
            return [ContentEvent("switched", site, now, source)]
        self.presenter, self.since, self.source, self.away_since = site, now, source, None
        return [ContentEvent("started", site, now, source)]

    def stop(self, site: str, now: float) -> list[ContentEvent]:
        if self.presenter != site:
            raise Refused("conflict", "this site is not presenting")
        return self._end(now, "stopped")

    def _end(self, now: float, kind: str, detail: str = "") -> list[ContentEvent]:
        assert self.presenter is not None
        site, took = self.presenter, now - self.since
        self.presenter, self.source, self.away_since = None, "", None
        return [ContentEvent(kind, site, now, detail or f"{took:.1f}")]

    # -- time and presence -------------------------------------------------------------------

    def site_left(self, site: str, now: float) -> None:
        if site == self.presenter and self.away_since is None:
            self.away_since = now

    def site_back(self, site: str) -> None:
        if site == self.presenter:
            self.away_since = None

    def tick(self, now: float) -> list[ContentEvent]:
        """A presenter away for the grace loses the token."""
        if self.away_since is not None and now - self.away_since >= self.grace_s:
            return self._end(now, "lost", "left")
        return []

    def to_wire(self) -> dict[str, Any]:
        return {"presenter": self.presenter,
                "since": round(self.since, 3) if self.presenter else None,
                "source": self.source or None, "granted": sorted(self.granted),
                "away": self.away_since is not None}
