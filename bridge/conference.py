"""The conference's shared state: presence, program, recording and control, under one version.

Pure: every change takes `now`, bumps the version once and returns the patch to broadcast, or
raises `Refused` and changes nothing (the refusal is still written to the audit log). Every
action someone takes (commands, program and mode, listen-in, recording) is audited here, in the
same change the state keeper commits; so are the bridge's own floor actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bridge.control import Refused
from bridge.control.audit import AuditLog
from bridge.control.commands import Changes, Command, Control, Witness
from bridge.control.floor import FloorRules
from bridge.control.rollcall import Evidence
from bridge.permissions import check
from bridge.roles import Role
from bridge.roster import Roster

MODES = {
    "floor": "the floor holder is the program (while connected); the main hall otherwise",
    "voice": "the dominant speaker among unmuted sources (main hall included) is the program",
    "lecture": "the main hall stays on the program; granted sites are heard",
    "pinned": "a technician's chosen source stays on the program",
}


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
    host: str = ""  # the server process whose page connection holds it ("" while offline)

    def to_wire(self) -> dict[str, Any]:
        return {"presence": self.presence.value, "since": round(self.since, 3), "joins": self.joins}


@dataclass(frozen=True, slots=True)
class Actor:
    role: Role
    site: str | None
    name: str  # for the audit log: the site id or the role

    @property
    def audit_role(self) -> str:
        """The audit log's `role`: "bridge" for the bridge's own actions."""
        return "bridge" if self == BRIDGE else self.role.value


BRIDGE = Actor(Role.TECHNICIAN, None, "bridge")  # automatic actions (timers, grace)


class Conference:
    """One conference's state; versioned so clients can tell what they missed."""

    def __init__(self, conference_id: str, title: str, roster: Roster,
                 rules: FloorRules | None = None) -> None:
        self.id = conference_id
        self.title = title
        self.roster = roster
        self.version = 0
        self.mode = "floor"  # see MODES
        self.pinned = roster.hall.id
        self.dominant: str | None = None  # the dominant speaker (voice activity)
        self.program = roster.hall.id
        self.recording: dict[str, Any] | None = None  # {"file", "since"} while recording
        self.sites = {s.id: SiteStatus() for s in roster}
        self.control = Control(roster, rules or FloorRules())
        self.audit = AuditLog()
        self.restarted_at: float | None = None  # set when this process took over a stored state
        # console participant -> the site it listens to (this process's connections: not stored)
        self.listen: dict[str, str] = {}
        # sites a technician pinned to the low program layer (a known poor line): stored
        self.poor_lines: set[str] = set()
        self._clock_now = 0.0

    # -- commands --------------------------------------------------------------------------

    def apply(self, actor: Actor, command: Command, now: float,
              media: Witness | None = None) -> dict[str, Any]:
        """Authorise and apply one control command; the patch to broadcast. `media`: what the
        media core observes of a site (audio heard, video received), for roll-call evidence."""

        def witness(site: str) -> Evidence:
            seen = media(site) if media is not None else Evidence()
            return replace(seen, connected=self.sites[site].presence is Presence.LIVE)

        def change() -> dict[str, Any]:
            check(actor.role, actor.site, command.action, command.site)
            changes = self.control.apply(command, actor.role in (Role.SITE, Role.HALL), now, witness)
            return self._patch(changes, now)

        patch = self._audited(actor, command.action, self.audit_target(command.site), now, change)
        assert patch is not None
        return patch

    def audit_target(self, site: object) -> str:
        """The audit log's `target` for a site a client named: a roster site, or "" (never the
        client's raw text)."""
        return site if isinstance(site, str) and site in self.roster else ""

    def refuse(self, actor: Actor, action: str, target: str, code: str, message: str,
               now: float) -> None:
        """An action refused before it reached the state (its role, its payload): audited."""
        self.audit.add(now, actor.name, actor.audit_role, action, target, code, message)

    def _audited(self, actor: Actor, action: str, target: str, now: float,
                 change: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        try:
            patch = change()
        except Refused as refusal:
            self.audit.add(now, actor.name, actor.audit_role, action, target, refusal.code,
                           refusal.message)
            raise
        self.audit.add(now, actor.name, actor.audit_role, action, target, "ok")
        return patch

    def tick(self, now: float) -> dict[str, Any] | None:
        """Timers: speaking-time warnings and ends, grace periods. A patch when anything moved."""
        self.control.attendance.program_is(self.program, now)  # the first tick starts its clock
        changes = self.control.tick(now)
        for event in changes.floor_events:
            if event.kind in ("expired", "revoked", "cancelled"):
                self.audit.add(now, BRIDGE.name, "bridge", f"floor:{event.kind}", event.site, "ok")
        for content in changes.content_events:  # a presenter away too long
            self.audit.add(now, BRIDGE.name, "bridge", f"present:{content.kind}", content.site, "ok")
        return self._patch(changes, now) if changes else None

    def set_program(self, site_id: str, now: float, actor: Actor = BRIDGE) -> dict[str, Any] | None:
        """Pin a source on the program (a technician's or moderator's choice)."""

        def change() -> dict[str, Any] | None:
            if site_id not in self.roster:
                raise Refused("bad_request", "site must be a site id of the roster")
            if self.mode == "pinned" and site_id == self.pinned:
                return None
            self.mode, self.pinned = "pinned", site_id
            return self._patch(Changes({"program"}), now)

        return self._audited(actor, "program:set", site_id, now, change)

    def set_mode(self, mode: str, now: float, actor: Actor = BRIDGE) -> dict[str, Any] | None:
        def change() -> dict[str, Any] | None:
            if mode not in MODES:
                raise Refused("bad_request", f"mode must be one of {', '.join(MODES)}")
            if mode == self.mode:
                return None
            self.mode = mode
            return self._patch(Changes({"program"}), now)

        return self._audited(actor, "program:mode", mode, now, change)

    def set_listen(self, participant: str, site: str | None, now: float,
                   actor: Actor | None = None) -> None:
        """A console listens to one site privately (None: stops). Nothing to broadcast; audited
        when someone chose it (not when the console left)."""

        def change() -> None:
            if site is not None and site not in self.roster:
                raise Refused("bad_request", "site must be a site id of the roster")
            if site is None:
                self.listen.pop(participant, None)
            else:
                self.listen[participant] = site

        if actor is None:
            change()
        else:
            self._audited(actor, "listen:set", site or "", now, change)

    def set_poor_line(self, site: str, poor: bool, now: float,
                      actor: Actor = BRIDGE) -> dict[str, Any] | None:
        """A technician marks a site's line poor ("đường truyền yếu"): it gets the low program
        layer whatever its browser reports, until the mark is taken off."""

        def change() -> dict[str, Any] | None:
            if site not in self.roster or site == self.roster.hall.id:
                raise Refused("bad_request", "site must be a remote site id of the roster")
            if (site in self.poor_lines) == poor:
                return None
            if poor:
                self.poor_lines.add(site)
            else:
                self.poor_lines.discard(site)
            return self._patch(Changes({"lines"}), now)

        return self._audited(actor, "line:set", site, now, change)

    def set_dominant(self, site: str | None, now: float) -> dict[str, Any] | None:
        """The voice-activity decision; in `voice` mode it moves the program. Its time is the
        report's talk time."""
        if site == self.dominant:
            return None
        self.control.attendance.talker_is(site, now)
        self.dominant = site
        patch = self._patch(Changes({"dominant"}), now)
        patch["dominant"] = site
        return patch

    # -- presence and recording ------------------------------------------------------------

    def set_presence(self, site_id: str, presence: Presence, now: float,
                     since: float | None = None, host: str | None = None) -> dict[str, Any] | None:
        """Record a site's presence; the patch to broadcast, or None when nothing changed.

        `since`: when it really happened, if earlier (a lost site: its last packet), so that the
        attendance gap starts where the site fell silent, not where the watchdog noticed.
        `host`: the server process that saw it (its page's connection is there).
        """
        away = self._away()
        if not self._presence(site_id, presence, now, since, host):
            return None
        return self._presence_patch([site_id], away, now)

    def hosts(self) -> set[str]:
        """The server processes holding a present site."""
        return {s.host for s in self.sites.values() if s.presence is not Presence.OFFLINE}

    def hosts_gone(self, gone: dict[str, float], now: float) -> dict[str, Any] | None:
        """Server processes that died (host -> its last sign of life): the sites they held are
        offline from then on (their pages did not come back through another process in time):
        the attendance gap starts there, and a floor holder among them is away (its grace runs).
        One patch for them all."""
        away = self._away()
        changed = [site_id for site_id, status in self.sites.items()
                   if status.presence is not Presence.OFFLINE and status.host in gone
                   and self._presence(site_id, Presence.OFFLINE, now, gone[status.host], "")]
        return self._presence_patch(changed, away, now) if changed else None

    def _presence(self, site_id: str, presence: Presence, now: float, since: float | None,
                  host: str | None) -> bool:
        status = self.sites[site_id]
        host = "" if presence is Presence.OFFLINE else (status.host if host is None else host)
        if status.presence is presence:
            changed = host != status.host  # the page came back through another process
            status.host = host
            return changed
        at = now if since is None else min(now, max(since, status.since))
        status.presence, status.since, status.host = presence, at, host
        attendance, floor = self.control.attendance, self.control.floor
        outage = self._outage_start(site_id, at)
        if outage is not None:  # connected before the server restarted: the gap shows
            attendance.left(site_id, outage)
        if presence is Presence.LIVE:
            status.joins += 1
            attendance.joined(site_id, at)
            floor.site_back(site_id)
            self.control.content.site_back(site_id)
        else:
            attendance.left(site_id, at)
            if presence in (Presence.OFFLINE, Presence.LOST):
                floor.site_left(site_id, at)
                self.control.content.site_left(site_id, at)
        return True

    def _away(self) -> tuple[set[str], bool]:
        """Who is away inside a grace: floor holders and queued sites, and the presenter."""
        return set(self.control.floor.away_since), self.control.content.away_since is not None

    def _presence_patch(self, sites: list[str], away: tuple[set[str], bool],
                        now: float) -> dict[str, Any]:
        # a holder who dropped leaves the program to the hall until it is back (no frozen picture)
        now_away = self._away()
        sections = {name for name, was, is_ in (("floor", away[0], now_away[0]),
                                                ("content", away[1], now_away[1])) if was != is_}
        patch = self._patch(Changes(sections), now)
        patch["sites"] = {site_id: self.sites[site_id].to_wire() for site_id in sites}
        return patch

    def _outage_start(self, site_id: str, now: float) -> float | None:
        record = self.control.attendance.sites[site_id]
        restarted = self.restarted_at
        if restarted is None or not record.connected:
            return None
        opened = record.intervals[-1][0]
        return restarted if opened is not None and opened < restarted <= now else None

    def start_recording(self, file: str, now: float, actor: Actor = BRIDGE) -> dict[str, Any]:
        """One recording at a time: a second start is refused (`conflict`), whoever asks."""

        def change() -> dict[str, Any]:
            if self.recording is not None:
                raise Refused("conflict", "already recording")
            self.recording = {"file": file, "since": round(now, 3)}
            return self._recording_patch(now)

        patch = self._audited(actor, "record:start", file, now, change)
        assert patch is not None
        return patch

    def stop_recording(self, now: float, actor: Actor = BRIDGE) -> dict[str, Any]:
        file = self.recording["file"] if self.recording else ""

        def change() -> dict[str, Any]:
            if self.recording is None:
                raise Refused("conflict", "not recording")
            self.recording = None
            return self._recording_patch(now)

        patch = self._audited(actor, "record:stop", file, now, change)
        assert patch is not None
        return patch

    def _recording_patch(self, now: float) -> dict[str, Any]:
        self._clock_now = now
        self.version += 1
        return {"version": self.version, "recording": self.recording}

    # -- views -----------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = self._clock_now if now is None else now
        return {"version": self.version, "conference": {"id": self.id, "title": self.title},
                "program": self.program, "mode": self.mode, "dominant": self.dominant,
                "recording": self.recording,
                "sites": {sid: st.to_wire() for sid, st in self.sites.items()},
                **{name: self._section(name, now)
                   for name in ("floor", "mutes", "rollcall", "agenda", "lines", "content")}}

    def muted(self) -> set[str]:
        return self.control.mutes.muted()

    def _section(self, name: str, now: float) -> Any:
        c = self.control
        if name == "floor":
            return c.floor.to_wire(now)
        if name == "mutes":
            return c.mutes.to_wire()
        if name == "rollcall":
            return c.rollcalls.to_wire()
        if name == "lines":
            return {"poor": sorted(self.poor_lines)}
        if name == "content":
            return c.content.to_wire()
        return c.agenda.to_wire()

    def _patch(self, changes: Changes, now: float) -> dict[str, Any]:
        self._clock_now = now
        self.version += 1
        patch: dict[str, Any] = {"version": self.version}
        for name in sorted(changes.sections - {"program", "dominant"}):
            patch[name] = self._section(name, now)
        program = self._choose_program()
        self.control.attendance.program_is(program, now)
        if program != self.program or "program" in changes.sections:
            self.program = program
            patch["program"], patch["mode"] = program, self.mode
        if changes.floor_events:
            patch["events"] = [{"kind": e.kind, "site": e.site, "at": round(e.at, 3), "detail": e.detail}
                               for e in changes.floor_events]
        return patch

    def _choose_program(self) -> str:
        hall = self.roster.hall.id
        if self.mode == "pinned":
            return self.pinned
        if self.mode == "lecture":
            return hall
        if self.mode == "voice":
            return self.dominant or hall
        floor = self.control.floor
        return next((s for s in floor.holders if s not in floor.away_since), hall)
