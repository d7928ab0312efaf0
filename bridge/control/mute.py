"""Who is muted, by whom, and whether they may unmute themselves.

Remote sites start muted (a professional bridge opens with every remote microphone closed); the
main hall starts open. A hard mute can only be lifted by a moderator (or by accepting their
request to unmute). The media core drops a muted site's audio whatever its browser does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bridge.control import Refused


@dataclass(slots=True)
class MuteStatus:
    muted: bool
    by: str  # "self" | "moderator" | "floor" | "" (never muted)
    hard: bool = False
    asked: bool = False  # a moderator asks this site to unmute

    def to_wire(self) -> dict[str, Any]:
        return {"muted": self.muted, "by": self.by, "hard": self.hard, "asked": self.asked}


class Mutes:
    def __init__(self, sites: Iterable[str], hall: str) -> None:
        self.hall = hall
        self.status = {s: MuteStatus(False, "") if s == hall else MuteStatus(True, "moderator")
                       for s in sites}

    def self_mute(self, site: str, muted: bool) -> None:
        st = self.status[site]
        if not muted and st.muted and st.hard:
            raise Refused("hard_muted", "the moderator has muted this site: ask for the floor")
        st.muted, st.by, st.asked = muted, "self", False

    def set_muted(self, site: str, muted: bool, hard: bool = False, by: str = "moderator") -> None:
        st = self.status[site]
        st.muted, st.by, st.hard, st.asked = muted, by, hard and muted, False

    def mute_all(self, keep_open: set[str]) -> list[str]:
        """Mute every site but `keep_open` (hard mutes stay hard); the sites newly muted."""
        changed = []
        for site, st in self.status.items():
            if site not in keep_open and not st.muted:
                st.muted, st.by, st.asked = True, "moderator", False
                changed.append(site)
        return changed

    def ask(self, site: str) -> None:
        st = self.status[site]
        if not st.muted:
            raise Refused("conflict", "this site is not muted")
        st.asked = True

    def answer(self, site: str, accept: bool) -> None:
        st = self.status[site]
        if not st.asked:
            raise Refused("conflict", "nobody asked this site to unmute")
        st.asked = False
        if accept:
            st.muted, st.by, st.hard = False, "self", False

    def muted(self) -> set[str]:
        return {s for s, st in self.status.items() if st.muted}

    def to_wire(self) -> dict[str, Any]:
        return {s: st.to_wire() for s, st in self.status.items()}
