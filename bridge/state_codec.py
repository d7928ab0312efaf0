"""The conference state as one JSON document, and back: what a store keeps between restarts.

Everything a restart must not lose: presence and attendance, program and mode, floor, mutes,
roll-calls, agenda, recording, the version and the last audit number. The audit log is stored
apart (append-only).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from bridge.conference import Conference, Presence, SiteStatus
from bridge.control.agenda import Item
from bridge.control.audit import Entry
from bridge.control.floor import Grant, Request
from bridge.control.mute import MuteStatus
from bridge.control.rollcall import Answer, Evidence, RollCall

FORMAT = 1
_ATOMS = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def asdict(value: Any) -> Any:
    """`dataclasses.asdict` for the state's own types, several times faster (it runs twice per
    command on every site's records): containers are copied, so the document never shares a list
    with the live state; atoms are shared."""
    cls = type(value)
    if cls in _ATOMS:
        return value
    if cls is list:
        return [asdict(v) for v in value]
    if cls is dict:
        return {k: asdict(v) for k, v in value.items()}
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            return copy.deepcopy(value)
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return {name: asdict(getattr(value, name)) for name in names}


def to_document(c: Conference) -> dict[str, Any]:
    ctl = c.control
    return {
        "format": FORMAT, "conference": c.id, "version": c.version, "mode": c.mode,
        "pinned": c.pinned, "program": c.program, "dominant": c.dominant, "recording": c.recording,
        "audit_seq": c.audit.last_seq,
        "sites": {s: [st.presence.value, st.since, st.joins, st.host] for s, st in c.sites.items()},
        "floor": {"requests": [asdict(r) for r in ctl.floor.requests],
                  "holders": [asdict(g) for g in ctl.floor.holders.values()],
                  "away": dict(ctl.floor.away_since)},
        "mutes": {s: asdict(m) for s, m in ctl.mutes.status.items()},
        "rollcalls": {"current": _rollcall(ctl.rollcalls.current),
                      "history": [_rollcall(r) for r in ctl.rollcalls.history]},
        "agenda": {"items": [asdict(i) for i in ctl.agenda.items], "current": ctl.agenda.current,
                   "started_at": ctl.agenda.started_at},
        "attendance": {s: asdict(r) for s, r in ctl.attendance.sites.items()},
        "on_air": list(ctl.attendance.on_air) if ctl.attendance.on_air else None,
        "talking": list(ctl.attendance.talking) if ctl.attendance.talking else None,
        "poor_lines": sorted(c.poor_lines),
        "content": {"presenter": ctl.content.presenter, "since": ctl.content.since,
                    "source": ctl.content.source, "granted": dict(ctl.content.granted),
                    "away": ctl.content.away_since},
    }


def load_document(c: Conference, doc: dict[str, Any]) -> None:
    """Put a stored document into a conference built from the same roster."""
    if doc.get("format") != FORMAT or doc.get("conference") != c.id:
        raise ValueError("the stored state is of another format or conference")
    ctl = c.control
    c.version, c.mode, c.pinned = doc["version"], doc["mode"], doc["pinned"]
    c.program, c.dominant, c.recording = doc["program"], doc["dominant"], doc["recording"]
    c.audit.last_seq = doc["audit_seq"]
    for site, (presence, since, joins, *host) in doc["sites"].items():
        if site in c.sites:  # (a state stored before hosts were kept names none)
            c.sites[site] = SiteStatus(Presence(presence), since, joins, host[0] if host else "")
    floor = doc["floor"]
    ctl.floor.requests = [Request(**r) for r in floor["requests"]]
    ctl.floor.holders = {g["site"]: Grant(**g) for g in floor["holders"]}
    ctl.floor.away_since = dict(floor["away"])
    for site, status in doc["mutes"].items():
        if site in ctl.mutes.status:
            ctl.mutes.status[site] = MuteStatus(**status)
    ctl.rollcalls.current = _load_rollcall(doc["rollcalls"]["current"])
    ctl.rollcalls.history = [r for r in map(_load_rollcall, doc["rollcalls"]["history"]) if r]
    agenda = doc["agenda"]
    ctl.agenda.items = [Item(**i) for i in agenda["items"]]
    ctl.agenda.current, ctl.agenda.started_at = agenda["current"], agenda["started_at"]
    for site, record in doc["attendance"].items():
        if site in ctl.attendance.sites:
            rec = ctl.attendance.sites[site]
            rec.intervals, rec.grants = record["intervals"], record["grants"]
            rec.floor_requests, rec.talk_s = record["floor_requests"], record["talk_s"]
            rec.program_s = record["program_s"]
            rec.presented = record.get("presented", [])  # (none before 18)
    on_air, talking = doc.get("on_air"), doc.get("talking")
    ctl.attendance.on_air = (on_air[0], on_air[1]) if on_air else None
    ctl.attendance.talking = (talking[0], talking[1]) if talking else None
    c.poor_lines = {s for s in doc.get("poor_lines", ()) if s in c.sites}  # (none before 17)
    content = doc.get("content") or {}  # (none before 18)
    presenter = content.get("presenter")
    ctl.content.presenter = presenter if presenter in c.sites else None
    ctl.content.since, ctl.content.source = content.get("since", 0.0), content.get("source", "")
    ctl.content.granted = {s: t for s, t in content.get("granted", {}).items() if s in c.sites}
    ctl.content.away_since = content.get("away") if ctl.content.presenter else None


def audit_to_wire(entries: list[Entry]) -> list[dict[str, Any]]:
    return [asdict(e) for e in entries]


def _rollcall(r: RollCall | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"number": r.number, "started_at": r.started_at, "ended_at": r.ended_at,
            "answers": {s: asdict(a) for s, a in r.answers.items()}}


def _load_rollcall(d: dict[str, Any] | None) -> RollCall | None:
    if d is None:
        return None
    answers = {s: Answer(**{**a, "evidence": Evidence(**a["evidence"])}) for s, a in d["answers"].items()}
    return RollCall(d["number"], d["started_at"], answers, d["ended_at"])
