"""The run of show: ordered items, each with a speaker and a planned duration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.control import Refused


@dataclass(frozen=True, slots=True)
class Item:
    title: str
    speaker: str  # a site id (the hall included)
    minutes: float

    def to_wire(self) -> dict[str, Any]:
        return {"title": self.title, "speaker": self.speaker, "minutes": self.minutes}


class Agenda:
    def __init__(self) -> None:
        self.items: list[Item] = []
        self.current = -1  # index of the item under way; -1 before the first
        self.started_at: float | None = None

    def set(self, items: list[Item]) -> None:
        self.items, self.current, self.started_at = list(items), -1, None

    def upcoming(self) -> Item:
        if self.current + 1 >= len(self.items):
            raise Refused("conflict", "the agenda has no next item")
        return self.items[self.current + 1]

    def advance(self, now: float) -> Item:
        item = self.upcoming()
        self.current += 1
        self.started_at = now
        return item

    def to_wire(self) -> dict[str, Any]:
        return {"items": [i.to_wire() for i in self.items], "current": self.current,
                "started_at": self.started_at}
