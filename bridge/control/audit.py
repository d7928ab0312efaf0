"""The audit log: every moderation and technician action, applied or refused — the minutes' basis.

Entries are numbered 1, 2, 3, … without gaps for the whole meeting: the state keeper commits each
change's entries with the state, against the last number the store holds, so no two processes
ever give out one number. This process keeps only the most recent entries; the store keeps them
all (`audit:get` reads there).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

RECENT = 1000  # entries kept in memory (one change writes a handful)


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
        self.entries: deque[Entry] = deque(maxlen=RECENT)
        self.last_seq = 0

    def add(self, at: float, actor: str, role: str, action: str, target: str, result: str,
            detail: str = "") -> Entry:
        self.last_seq += 1
        entry = Entry(self.last_seq, at, actor, role, action, target, result, detail)
        self.entries.append(entry)
        return entry

    def since(self, seq: int) -> list[Entry]:
        """The recent entries numbered after `seq`, oldest first."""
        newer: list[Entry] = []
        for entry in reversed(self.entries):
            if entry.seq <= seq:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    def forget_after(self, seq: int) -> None:
        """Take back the entries numbered after `seq` (their change was not committed)."""
        while self.entries and self.entries[-1].seq > seq:
            self.entries.pop()
        self.last_seq = seq

    def resume(self, last_seq: int) -> None:
        """Continue the numbering the store holds (another process may have written since)."""
        if last_seq != self.last_seq:
            self.entries.clear()
            self.last_seq = last_seq
