"""The audit log: every moderation and technician action, applied or refused — the minutes' basis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 100_000  # a long meeting has a few thousand; beyond this the oldest go


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: float
    actor: str  # "moderator", "technician", a site id, or "bridge" for automatic actions
    role: str
    action: str
    target: str
    result: str  # "ok" or the refusal code
    detail: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": round(self.at, 3), "actor": self.actor, "role": self.role,
                "action": self.action, "target": self.target, "result": self.result,
                "detail": self.detail}


class AuditLog:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.last_seq = 0

    def add(self, at: float, actor: str, role: str, action: str, target: str, result: str,
            detail: str = "") -> Entry:
        self.last_seq += 1
        entry = Entry(self.last_seq, at, actor, role, action, target, result, detail)
        self.entries.append(entry)
        if len(self.entries) > MAX_ENTRIES:
            del self.entries[0]
        return entry

    def since(self, seq: int) -> list[Entry]:
        return [e for e in self.entries if e.seq > seq]
