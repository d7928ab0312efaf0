"""Control commands: typed, one class per action, applied by `Control` in one place.

A command names its action (the permission matrix and the audit log use it) and its target site.
`Control.apply` either changes the state and returns what changed, or raises `Refused` having
changed nothing (it validates before it mutates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from bridge.control import Refused
from bridge.control.agenda import Agenda, Item
from bridge.control.attendance import Attendance
from bridge.control.content import Content, ContentEvent
from bridge.control.floor import Floor, FloorEvent, FloorRules
from bridge.control.mute import Mutes
from bridge.control.rollcall import Evidence, RollCalls
from bridge.roster import Roster

Witness = Callable[[str], Evidence]  # what the bridge observes of a site, for roll-call answers

# The ranges the rules allow, by field name: the domain owns them (the edge checks only shapes)
TEXT_MAX = {"topic": 200, "reason": 300, "name": 120, "status": 20, "title": 200}
RANGES: dict[str, tuple[float, float]] = {
    "limit_s": (10, 4 * 3600), "priority": (0, 9), "position": (1, 1000), "minutes": (0, 600)}
AGENDA_MAX = 200  # items


def check_limits(command: Command) -> None:
    """Refuse a command whose text is too long or whose number is out of range."""
    values = [(f.name, getattr(command, f.name)) for f in fields(command)]
    if isinstance(command, AgendaSet):
        if len(command.items) > AGENDA_MAX:
            raise Refused("too_large", f"an agenda has at most {AGENDA_MAX} items")
        values += [(f.name, getattr(item, f.name)) for item in command.items for f in fields(item)]
    for name, value in values:
        if isinstance(value, str) and len(value) > TEXT_MAX.get(name, 64):
            raise Refused("too_large", f"{name} is longer than {TEXT_MAX.get(name, 64)} characters")
        if name in RANGES and value is not None:
            low, high = RANGES[name]
            if not low <= value <= high:
                raise Refused("bad_request", f"{name} must be from {low:g} to {high:g}")


@dataclass(frozen=True, slots=True)
class Command:
    action = ""
    site: str | None = None  # the target; None for conference-wide actions


@dataclass(frozen=True, slots=True)
class FloorRequest(Command):
    action = "floor:request"
    topic: str = ""
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class FloorCancel(Command):
    action = "floor:cancel"


@dataclass(frozen=True, slots=True)
class FloorAccept(Command):
    action = "floor:accept"


@dataclass(frozen=True, slots=True)
class FloorDeny(Command):
    action = "floor:deny"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FloorGrant(Command):
    action = "floor:grant"
    limit_s: float | None = None


@dataclass(frozen=True, slots=True)
class FloorGrantNext(Command):
    action = "floor:next"


@dataclass(frozen=True, slots=True)
class FloorRevoke(Command):
    action = "floor:revoke"


@dataclass(frozen=True, slots=True)
class FloorRelease(Command):
    action = "floor:release"


@dataclass(frozen=True, slots=True)
class FloorReorder(Command):
    action = "floor:reorder"
    position: int = 1


@dataclass(frozen=True, slots=True)
class MuteSelf(Command):
    action = "mute:self"
    muted: bool = True


@dataclass(frozen=True, slots=True)
class MuteSet(Command):
    action = "mute:set"
    muted: bool = True
    hard: bool = False


@dataclass(frozen=True, slots=True)
class MuteAll(Command):
    action = "mute:all"
    except_floor: bool = True  # keep the floor holders open (the hall is always kept open)


@dataclass(frozen=True, slots=True)
class MuteAsk(Command):
    action = "mute:ask"


@dataclass(frozen=True, slots=True)
class MuteAnswer(Command):
    action = "mute:answer"
    accept: bool = False


@dataclass(frozen=True, slots=True)
class RollcallStart(Command):
    action = "rollcall:start"


@dataclass(frozen=True, slots=True)
class RollcallAnswer(Command):
    action = "rollcall:answer"
    status: str = "present"
    name: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RollcallMark(Command):
    action = "rollcall:mark"
    status: str = "present"
    name: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RollcallEnd(Command):
    action = "rollcall:end"


@dataclass(frozen=True, slots=True)
class AgendaSet(Command):
    action = "agenda:set"
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True)
class AgendaNext(Command):
    action = "agenda:next"


@dataclass(frozen=True, slots=True)
class PresentStart(Command):
    action = "present:start"
    source: str = "screen"


@dataclass(frozen=True, slots=True)
class PresentStop(Command):
    action = "present:stop"


@dataclass(frozen=True, slots=True)
class PresentGrant(Command):
    action = "present:grant"


@dataclass(frozen=True, slots=True)
class PresentRevoke(Command):
    action = "present:revoke"


@dataclass(slots=True)
class Changes:
    """What one applied command (or tick) changed: the sections to broadcast, the floor and
    presentation events."""

    sections: set[str] = field(default_factory=set)
    floor_events: list[FloorEvent] = field(default_factory=list)
    content_events: list[ContentEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sections)


class Control:
    """Floor, mutes, roll-calls and agenda of one conference, changed only through `apply`."""

    def __init__(self, roster: Roster, rules: FloorRules) -> None:
        self.roster = roster
        self.floor = Floor(rules)
        self.mutes = Mutes((s.id for s in roster), roster.hall.id)
        self.rollcalls = RollCalls()
        self.agenda = Agenda()
        self.attendance = Attendance(roster)
        self.content = Content(roster.hall.id, rules.grace_s)

    def apply(self, command: Command, by_site: bool, now: float,
              witness: Witness = lambda site: Evidence()) -> Changes:
        """Apply a command (`by_site`: a site acting on itself, not a moderator); `witness` is what
        the bridge observes of a site, recorded with a roll-call answer."""
        check_limits(command)
        site = command.site
        if site is not None and site not in self.roster:
            raise Refused("bad_request", "site must be a site id of the roster")
        changes: Changes
        if isinstance(command, RollcallAnswer | RollcallMark):
            by = "site" if isinstance(command, RollcallAnswer) else "moderator"
            changes = self._rollcall_record(self._site(command), command, by, witness, now)
        else:
            changes = getattr(self, "_" + command.action.replace(":", "_"))(command, by_site, now)
        self._follow_floor(changes, now)
        self._follow_content(changes)
        return changes

    def tick(self, now: float) -> Changes:
        changes = Changes()
        changes.floor_events = self.floor.tick(now)
        if changes.floor_events:
            changes.sections.add("floor")
        changes.content_events = self.content.tick(now)
        if changes.content_events:
            changes.sections.add("content")
        self._follow_floor(changes, now)
        self._follow_content(changes)
        return changes

    def _follow_content(self, changes: Changes) -> None:
        """Who presented when, for the attendance report."""
        for event in changes.content_events:
            self.attendance.content_event(event.kind, event.site, event.at)

    def _follow_floor(self, changes: Changes, now: float) -> None:
        """A grant opens the holder's microphone; the end of a grant closes it."""
        for event in changes.floor_events:
            self.attendance.floor_event(event.kind, event.site, now)
            if event.kind == "granted":
                self.mutes.set_muted(event.site, False, by="floor")
                changes.sections.add("mutes")
            elif event.kind in ("released", "revoked", "expired") and event.site != self.roster.hall.id:
                self.mutes.set_muted(event.site, True, by="floor")
                changes.sections.add("mutes")

    def _site(self, command: Command) -> str:
        if command.site is None:
            raise Refused("bad_request", "site is required")
        return command.site

    # -- floor -----------------------------------------------------------------------------

    def _floor(self, events: list[FloorEvent]) -> Changes:
        return Changes({"floor"}, events)

    def _floor_request(self, c: FloorRequest, by_site: bool, now: float) -> Changes:
        site = self._site(c)
        if site == self.roster.hall.id:
            raise Refused("bad_request", "the main hall does not queue for the floor")
        entry = self.roster.get(site)
        default = 1 if entry is not None and entry.kind == "ministry" else 0  # leadership first
        priority = default if c.priority is None or by_site else c.priority
        return self._floor(self.floor.request(site, c.topic.strip(), priority, now))

    def _floor_cancel(self, c: FloorCancel, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.cancel(self._site(c), now))

    def _floor_accept(self, c: FloorAccept, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.accept(self._site(c), now))

    def _floor_deny(self, c: FloorDeny, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.deny(self._site(c), c.reason, now))

    def _floor_grant(self, c: FloorGrant, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.grant(self._site(c), now, c.limit_s))

    def _floor_next(self, c: FloorGrantNext, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.grant_next(now))

    def _floor_revoke(self, c: FloorRevoke, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.release(self._site(c), now, kind="revoked"))

    def _floor_release(self, c: FloorRelease, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.release(self._site(c), now))

    def _floor_reorder(self, c: FloorReorder, by_site: bool, now: float) -> Changes:
        return self._floor(self.floor.reorder(self._site(c), c.position, now))

    # -- presentations ---------------------------------------------------------------------

    def _content(self, events: list[ContentEvent]) -> Changes:
        return Changes({"content"}, content_events=events)

    def _present_start(self, c: PresentStart, by_site: bool, now: float) -> Changes:
        return self._content(self.content.start(self._site(c), c.source, now))

    def _present_stop(self, c: PresentStop, by_site: bool, now: float) -> Changes:
        return self._content(self.content.stop(self._site(c), now))

    def _present_grant(self, c: PresentGrant, by_site: bool, now: float) -> Changes:
        return self._content(self.content.grant(self._site(c), now))

    def _present_revoke(self, c: PresentRevoke, by_site: bool, now: float) -> Changes:
        return self._content(self.content.revoke(self._site(c), now))

    # -- mutes -----------------------------------------------------------------------------

    def _mute_self(self, c: MuteSelf, by_site: bool, now: float) -> Changes:
        self.mutes.self_mute(self._site(c), c.muted)
        return Changes({"mutes"})

    def _mute_set(self, c: MuteSet, by_site: bool, now: float) -> Changes:
        self.mutes.set_muted(self._site(c), c.muted, c.hard)
        return Changes({"mutes"})

    def _mute_all(self, c: MuteAll, by_site: bool, now: float) -> Changes:
        keep = {self.roster.hall.id} | (set(self.floor.holders) if c.except_floor else set())
        self.mutes.mute_all(keep)
        return Changes({"mutes"})

    def _mute_ask(self, c: MuteAsk, by_site: bool, now: float) -> Changes:
        self.mutes.ask(self._site(c))
        return Changes({"mutes"})

    def _mute_answer(self, c: MuteAnswer, by_site: bool, now: float) -> Changes:
        self.mutes.answer(self._site(c), c.accept)
        return Changes({"mutes"})

    # -- roll-call -------------------------------------------------------------------------

    def _rollcall_start(self, c: RollcallStart, by_site: bool, now: float) -> Changes:
        self.rollcalls.start((s.id for s in self.roster.remote_sites()), now)
        return Changes({"rollcall"})

    def _rollcall_record(self, site: str, c: RollcallAnswer | RollcallMark, by: str,
                         witness: Witness, now: float) -> Changes:
        if site == self.roster.hall.id:
            raise Refused("bad_request", "the main hall is not called")
        self.rollcalls.answer(site, c.status, c.name, c.reason, by, witness(site), now)
        return Changes({"rollcall"})

    def _rollcall_end(self, c: RollcallEnd, by_site: bool, now: float) -> Changes:
        self.rollcalls.end(now)
        return Changes({"rollcall"})

    # -- agenda ----------------------------------------------------------------------------

    def _agenda_set(self, c: AgendaSet, by_site: bool, now: float) -> Changes:
        for item in c.items:
            if item.speaker not in self.roster:
                raise Refused("bad_request", f"agenda speaker {item.speaker!r} is not in the roster")
        self.agenda.set(list(c.items))
        return Changes({"agenda"})

    def _agenda_next(self, c: AgendaNext, by_site: bool, now: float) -> Changes:
        item = self.agenda.upcoming()
        changes = Changes({"agenda", "floor"})
        if item.speaker == self.roster.hall.id:  # the hall speaks: every remote floor ends
            for holder in list(self.floor.holders):
                changes.floor_events += self.floor.release(holder, now, kind="revoked")
        elif item.speaker not in self.floor.holders:
            changes.floor_events += self.floor.grant(item.speaker, now, max(10.0, item.minutes * 60))
        self.agenda.advance(now)
        return changes
