"""The floor, after BFCP (RFC 8855): requests queue, a moderator grants, holders speak, release.

States of a site's request: pending -> accepted (queued, with a position) -> granted -> released
(or denied / revoked / cancelled). One holder at a time by default; a grant has a speaking time
limit with a warning before its end; a holder or queued site that drops keeps its place for a
grace period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.control import Refused


@dataclass(frozen=True, slots=True)
class FloorRules:
    max_holders: int = 1
    auto_accept: bool = True  # requests join the queue at once; False: a moderator accepts each
    speaking_limit_s: float = 300.0
    warning_s: float = 30.0
    grace_s: float = 60.0


@dataclass(slots=True)
class Request:
    site: str
    topic: str
    priority: int
    requested_at: float
    state: str = "pending"  # pending | accepted


@dataclass(slots=True)
class Grant:
    site: str
    granted_at: float
    limit_s: float
    warned: bool = False

    def ends_at(self) -> float:
        return self.granted_at + self.limit_s


@dataclass(slots=True)
class FloorEvent:
    """Something the floor did that others must hear of (and the attendance report keeps)."""

    kind: str  # requested | accepted | denied | cancelled | granted | released | revoked | warned | expired
    site: str
    at: float
    detail: str = ""


@dataclass(slots=True)
class Floor:
    rules: FloorRules = field(default_factory=FloorRules)
    requests: list[Request] = field(default_factory=list)  # pending first, then the queue in order
    holders: dict[str, Grant] = field(default_factory=dict)
    away_since: dict[str, float] = field(default_factory=dict)  # dropped sites inside the grace

    # -- requests --------------------------------------------------------------------------

    def request(self, site: str, topic: str, priority: int, now: float) -> list[FloorEvent]:
        if site in self.holders:
            raise Refused("conflict", "this site already has the floor")
        if self._find(site) is not None:
            raise Refused("conflict", "this site has already asked for the floor")
        self.requests.append(Request(site, topic, priority, now))
        events = [FloorEvent("requested", site, now, topic)]
        if self.rules.auto_accept:
            events += self.accept(site, now)
        return events

    def accept(self, site: str, now: float) -> list[FloorEvent]:
        req = self._need(site)
        if req.state == "accepted":
            raise Refused("conflict", "this request is already in the queue")
        self.requests.remove(req)
        req.state = "accepted"
        queue = self.queue()
        # after every accepted request of the same or a higher priority
        position = sum(1 for r in queue if r.priority >= req.priority)
        self._place(req, position)
        return [FloorEvent("accepted", site, now, str(position + 1))]

    def deny(self, site: str, reason: str, now: float) -> list[FloorEvent]:
        self.requests.remove(self._need(site))
        return [FloorEvent("denied", site, now, reason)]

    def cancel(self, site: str, now: float) -> list[FloorEvent]:
        self.requests.remove(self._need(site))
        return [FloorEvent("cancelled", site, now)]

    def reorder(self, site: str, position: int, now: float) -> list[FloorEvent]:
        req = self._need(site)
        queue = self.queue()
        if req.state != "accepted":
            raise Refused("conflict", "only queued requests can be moved")
        if not 1 <= position <= len(queue):
            raise Refused("bad_request", f"position must be between 1 and {len(queue)}")
        self.requests.remove(req)
        self._place(req, position - 1)
        return [FloorEvent("accepted", site, now, str(position))]

    # -- grants ----------------------------------------------------------------------------

    def grant(self, site: str, now: float, limit_s: float | None = None) -> list[FloorEvent]:
        if site in self.holders:
            raise Refused("conflict", "this site already has the floor")
        events: list[FloorEvent] = []
        if len(self.holders) >= self.rules.max_holders:
            if self.rules.max_holders != 1:
                raise Refused("conflict", f"already {self.rules.max_holders} speakers: revoke one first")
            (current,) = list(self.holders)
            events += self.release(current, now, kind="revoked")  # one speaker: the grant passes on
        req = self._find(site)
        if req is not None:
            self.requests.remove(req)
        self.holders[site] = Grant(site, now, limit_s or self.rules.speaking_limit_s)
        return [*events, FloorEvent("granted", site, now)]

    def grant_next(self, now: float) -> list[FloorEvent]:
        queue = self.queue()
        if not queue:
            raise Refused("conflict", "nobody is waiting for the floor")
        return self.grant(queue[0].site, now)

    def release(self, site: str, now: float, kind: str = "released") -> list[FloorEvent]:
        grant = self.holders.pop(site, None)
        if grant is None:
            raise Refused("conflict", "this site does not have the floor")
        self.away_since.pop(site, None)
        return [FloorEvent(kind, site, now, f"{now - grant.granted_at:.1f}")]

    # -- time and presence -----------------------------------------------------------------

    def tick(self, now: float) -> list[FloorEvent]:
        """Warnings before a grant ends, the automatic revoke at its end, grace expiries."""
        events: list[FloorEvent] = []
        for site, grant in list(self.holders.items()):
            if now >= grant.ends_at():
                events += self.release(site, now, kind="expired")
            elif not grant.warned and now >= grant.ends_at() - self.rules.warning_s:
                grant.warned = True
                events.append(FloorEvent("warned", site, now, f"{grant.ends_at() - now:.0f}"))
        for site, since in list(self.away_since.items()):
            if now - since >= self.rules.grace_s:
                del self.away_since[site]
                if site in self.holders:
                    events += self.release(site, now, kind="revoked")
                req = self._find(site)
                if req is not None:
                    self.requests.remove(req)
                    events.append(FloorEvent("cancelled", site, now, "left"))
        return events

    def site_left(self, site: str, now: float) -> None:
        if site in self.holders or self._find(site) is not None:
            self.away_since.setdefault(site, now)

    def site_back(self, site: str) -> None:
        self.away_since.pop(site, None)

    # -- views -----------------------------------------------------------------------------

    def queue(self) -> list[Request]:
        return [r for r in self.requests if r.state == "accepted"]

    def position(self, site: str) -> int | None:
        for n, r in enumerate(self.queue(), 1):
            if r.site == site:
                return n
        return None

    def to_wire(self, now: float) -> dict[str, Any]:
        return {
            "holders": [{"site": g.site, "since": round(g.granted_at, 3),
                         "ends_at": round(g.ends_at(), 3), "left_s": round(max(0, g.ends_at() - now), 1),
                         "warned": g.warned} for g in self.holders.values()],
            "queue": [{"site": r.site, "topic": r.topic, "priority": r.priority,
                       "since": round(r.requested_at, 3), "position": n}
                      for n, r in enumerate(self.queue(), 1)],
            "pending": [{"site": r.site, "topic": r.topic, "since": round(r.requested_at, 3)}
                        for r in self.requests if r.state == "pending"],
            "away": sorted(self.away_since),
        }

    def _find(self, site: str) -> Request | None:
        return next((r for r in self.requests if r.site == site), None)

    def _need(self, site: str) -> Request:
        req = self._find(site)
        if req is None:
            raise Refused("conflict", "this site has no floor request")
        return req

    def _place(self, req: Request, queue_index: int) -> None:
        """Insert `req` at `queue_index` among the accepted requests (pending ones stay first)."""
        pending = [r for r in self.requests if r.state == "pending"]
        queue = self.queue()
        queue.insert(queue_index, req)
        self.requests = pending + queue
