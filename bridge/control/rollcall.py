"""Roll-call (điểm danh): each site's answer beside what the media saw of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bridge.control import Refused

STATUSES = ("not_checked", "present", "representative", "absent", "late")
PRESENT = ("present", "representative", "late")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the bridge itself observed of a site when it was checked."""

    connected: bool = False
    audio_heard: bool = False
    video_received: bool = False

    def to_wire(self) -> dict[str, bool]:
        return {"connected": self.connected, "audio_heard": self.audio_heard,
                "video_received": self.video_received}


@dataclass(slots=True)
class Answer:
    status: str = "not_checked"
    name: str = ""  # the representative's name
    reason: str = ""  # why absent / late
    by: str = ""  # "site" | "moderator"
    at: float | None = None
    evidence: Evidence = field(default_factory=Evidence)

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status, "name": self.name, "reason": self.reason, "by": self.by,
                "at": None if self.at is None else round(self.at, 3),
                "evidence": self.evidence.to_wire()}


@dataclass(slots=True)
class RollCall:
    number: int
    started_at: float
    answers: dict[str, Answer]
    ended_at: float | None = None

    def tally(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for a in self.answers.values():
            counts[a.status] += 1
        counts["present_total"] = sum(counts[s] for s in PRESENT)
        counts["sites"] = len(self.answers)
        return counts

    def to_wire(self) -> dict[str, Any]:
        return {"number": self.number, "started_at": round(self.started_at, 3),
                "ended_at": None if self.ended_at is None else round(self.ended_at, 3),
                "tally": self.tally(), "answers": {s: a.to_wire() for s, a in self.answers.items()}}


class RollCalls:
    def __init__(self) -> None:
        self.current: RollCall | None = None
        self.history: list[RollCall] = []

    def start(self, sites: Iterable[str], now: float) -> RollCall:
        if self.current is not None:
            raise Refused("conflict", "a roll-call is already running")
        number = len(self.history) + 1
        self.current = RollCall(number, now, {s: Answer() for s in sites})
        return self.current

    def answer(self, site: str, status: str, name: str, reason: str, by: str,
               evidence: Evidence, now: float) -> None:
        rc = self.current
        if rc is None:
            raise Refused("conflict", "no roll-call is running")
        if status not in STATUSES or (status == "not_checked" and by == "site"):
            raise Refused("bad_request", f"status must be one of {', '.join(STATUSES[1:])}")
        if status == "representative" and not name.strip():
            raise Refused("bad_request", "a representative's name is needed")
        rc.answers[site] = Answer(status, name.strip(), reason.strip(), by, now, evidence)

    def end(self, now: float) -> RollCall:
        rc = self.current
        if rc is None:
            raise Refused("conflict", "no roll-call is running")
        rc.ended_at = now
        self.history.append(rc)
        self.current = None
        return rc

    def latest(self) -> RollCall | None:
        return self.current or (self.history[-1] if self.history else None)

    def to_wire(self) -> dict[str, Any]:
        return {"current": self.current.to_wire() if self.current else None,
                "history": [{"number": r.number, "started_at": round(r.started_at, 3),
                             "ended_at": None if r.ended_at is None else round(r.ended_at, 3),
                             "tally": r.tally()} for r in self.history]}
