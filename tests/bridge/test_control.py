"""Mutes, roll-call, agenda and the conference's versioned, audited command path."""

from __future__ import annotations

import csv
import io

import pytest

from bridge.conference import Actor, Conference, Presence
from bridge.control import Refused
from bridge.control.agenda import Item
from bridge.control.attendance import to_csv, to_html
from bridge.control.commands import (
    AgendaNext,
    AgendaSet,
    FloorGrant,
    FloorRelease,
    FloorRequest,
    MuteAll,
    MuteAnswer,
    MuteAsk,
    MuteSelf,
    MuteSet,
    RollcallAnswer,
    RollcallEnd,
    RollcallMark,
    RollcallStart,
)
from bridge.control.floor import FloorRules
from bridge.roles import Role
from bridge.roster import roster_from_mapping

ROSTER = roster_from_mapping({"sites": [
    {"id": "hall", "name": "Hội trường", "region": "bac", "kind": "hall"},
    {"id": "bo", "name": "Trụ sở Bộ", "region": "bac", "kind": "ministry"},
    {"id": "hn", "name": "Sở TT&TT Hà Nội", "region": "bac", "kind": "province"},
    {"id": "dn", "name": "Sở TT&TT Đà Nẵng", "region": "trung", "kind": "province"},
]})
MOD = Actor(Role.MODERATOR, None, "moderator")


def site(sid: str) -> Actor:
    return Actor(Role.SITE, sid, sid)


def conference(**rules: float) -> Conference:
    return Conference("c", "Hội nghị", ROSTER, FloorRules(**rules))  # type: ignore[arg-type]


def test_grant_opens_the_microphone_and_puts_the_site_on_the_program() -> None:
    c = conference()
    assert c.muted() == {"bo", "hn", "dn"}, "remote sites start muted, the hall open"
    patch = c.apply(site("hn"), FloorRequest("hn", "hỏi về ngân sách"), 1.0)
    assert patch["floor"]["queue"][0] == {"site": "hn", "topic": "hỏi về ngân sách", "priority": 0,
                                          "since": 1.0, "position": 1}
    patch = c.apply(MOD, FloorGrant("hn"), 2.0)
    assert patch["program"] == "hn" and "hn" not in c.muted()
    assert patch["mutes"]["hn"] == {"muted": False, "by": "floor", "hard": False, "asked": False}
    patch = c.apply(site("hn"), FloorRelease("hn"), 30.0)
    assert patch["program"] == "hall" and "hn" in c.muted()
    assert [e["kind"] for e in patch["events"]] == ["released"]


def test_versions_rise_by_one_per_applied_command_and_refusals_change_nothing() -> None:
    c = conference()
    v = c.version
    c.apply(site("hn"), FloorRequest("hn"), 1.0)
    assert c.version == v + 1
    snapshot = c.snapshot(1.0)
    with pytest.raises(Refused) as refused:
        c.apply(site("hn"), FloorRequest("hn"), 2.0)
    assert refused.value.code == "conflict"
    with pytest.raises(Refused) as forbidden:
        c.apply(site("hn"), FloorGrant("hn"), 2.0)
    assert forbidden.value.code == "forbidden"
    with pytest.raises(Refused):
        c.apply(site("hn"), FloorRequest("dn"), 2.0)  # a site acts only on itself
    assert c.version == v + 1 and c.snapshot(1.0) == snapshot
    results = [(e.action, e.result) for e in c.audit.entries]
    assert results == [("floor:request", "ok"), ("floor:request", "conflict"),
                       ("floor:grant", "forbidden"), ("floor:request", "forbidden")]


def test_ministry_requests_go_first() -> None:
    c = conference()
    c.apply(site("hn"), FloorRequest("hn"), 1.0)
    c.apply(site("bo"), FloorRequest("bo", priority=0), 2.0)  # a site cannot lower or raise it
    assert [q["site"] for q in c.snapshot(2.0)["floor"]["queue"]] == ["bo", "hn"]
    c.apply(MOD, FloorRequest("dn", priority=5), 3.0)  # a moderator may, on a site's behalf
    assert [q["site"] for q in c.snapshot(3.0)["floor"]["queue"]] == ["dn", "bo", "hn"]


def test_speaking_limit_warns_and_ends_through_tick() -> None:
    c = conference(speaking_limit_s=60, warning_s=10)
    c.apply(MOD, FloorGrant("dn"), 0.0)
    assert c.tick(30.0) is None
    warned = c.tick(50.0)
    assert warned is not None and warned["events"][0]["kind"] == "warned"
    ended = c.tick(60.0)
    assert ended is not None and ended["program"] == "hall" and "dn" in c.muted()
    assert c.audit.entries[-1].action == "floor:expired" and c.audit.entries[-1].actor == "bridge"
    assert c.audit.entries[-1].role == "bridge"


def test_a_dropped_holder_keeps_the_floor_for_the_grace_period() -> None:
    c = conference(grace_s=30)
    c.set_presence("hn", Presence.LIVE, 0.0)
    c.apply(MOD, FloorGrant("hn"), 1.0)
    lost = c.set_presence("hn", Presence.LOST, 10.0)
    assert lost is not None and lost["program"] == "hall", "no frozen picture while it is away"
    assert lost["floor"]["away"] == ["hn"] and lost["floor"]["holders"][0]["site"] == "hn"
    assert c.tick(39.0) is None and c.program == "hall"
    back = c.set_presence("hn", Presence.LIVE, 20.0)
    assert back is not None and back["program"] == "hn" and back["floor"]["away"] == []
    assert c.tick(45.0) is None and c.program == "hn", "back in time: still speaking"
    c.set_presence("hn", Presence.OFFLINE, 50.0)
    assert c.program == "hall"
    patch = c.tick(80.0)
    assert patch is not None and patch["floor"]["holders"] == [], "the grace ran out: revoked"


def test_mutes() -> None:
    c = conference()
    c.apply(site("hn"), MuteSelf("hn", muted=False), 1.0)
    assert "hn" not in c.muted()
    c.apply(MOD, MuteSet("hn", muted=True, hard=True), 2.0)
    with pytest.raises(Refused) as refused:
        c.apply(site("hn"), MuteSelf("hn", muted=False), 3.0)
    assert refused.value.code == "hard_muted"
    c.apply(MOD, MuteAsk("hn"), 4.0)
    assert c.snapshot(4.0)["mutes"]["hn"]["asked"] is True
    c.apply(site("hn"), MuteAnswer("hn", accept=True), 5.0)
    assert "hn" not in c.muted()
    c.apply(site("dn"), MuteSelf("dn", muted=False), 6.0)
    c.apply(MOD, FloorGrant("bo"), 7.0)
    c.apply(MOD, MuteAll(except_floor=True), 8.0)
    assert c.muted() == {"hn", "dn"}, "all but the hall and the floor holder"
    c.apply(MOD, MuteAll(except_floor=False), 9.0)
    assert c.muted() == {"hn", "dn", "bo"}
    with pytest.raises(Refused):
        c.apply(site("dn"), MuteAnswer("dn", accept=True), 10.0)  # nobody asked


def test_rollcall() -> None:
    c = conference()
    with pytest.raises(Refused):
        c.apply(site("hn"), RollcallAnswer("hn", status="present"), 0.0)
    c.apply(MOD, RollcallStart(), 1.0)
    tally = c.snapshot(1.0)["rollcall"]["current"]["tally"]
    assert tally["not_checked"] == 3 and tally["sites"] == 3
    c.apply(site("hn"), RollcallAnswer("hn", status="present"), 2.0)
    c.apply(site("dn"), RollcallAnswer("dn", status="representative", name="Nguyễn Văn An"), 3.0)
    with pytest.raises(Refused):
        c.apply(site("bo"), RollcallAnswer("bo", status="representative"), 3.0)  # who?
    c.apply(MOD, RollcallMark("bo", status="absent", reason="mất điện"), 4.0)
    current = c.snapshot(4.0)["rollcall"]["current"]
    assert current["tally"]["present_total"] == 2 and current["tally"]["absent"] == 1
    assert current["answers"]["dn"]["name"] == "Nguyễn Văn An"
    assert current["answers"]["bo"]["by"] == "moderator"
    c.apply(MOD, RollcallEnd(), 5.0)
    rollcall = c.snapshot(5.0)["rollcall"]
    assert rollcall["current"] is None and rollcall["history"][0]["tally"]["present_total"] == 2


def test_agenda_advance_grants_the_speaker() -> None:
    c = conference()
    items = (Item("Khai mạc", "hall", 5), Item("Báo cáo Hà Nội", "hn", 10), Item("Đà Nẵng", "dn", 8))
    c.apply(MOD, AgendaSet(items=items), 0.0)
    c.apply(MOD, AgendaNext(), 1.0)
    assert c.program == "hall"
    patch = c.apply(MOD, AgendaNext(), 2.0)
    assert patch["program"] == "hn" and patch["agenda"]["current"] == 1
    assert c.control.floor.holders["hn"].limit_s == 600
    c.apply(MOD, AgendaNext(), 3.0)
    assert list(c.control.floor.holders) == ["dn"]
    with pytest.raises(Refused):
        c.apply(MOD, AgendaNext(), 4.0)
    with pytest.raises(Refused):
        c.apply(MOD, AgendaSet(items=(Item("?", "nowhere", 1),)), 5.0)


def test_attendance_report_of_a_scripted_meeting() -> None:
    c = conference()
    c.set_presence("hn", Presence.LIVE, 1000.0)
    c.set_presence("dn", Presence.LIVE, 1010.0)
    c.set_presence("hn", Presence.LOST, 1100.0)
    c.set_presence("hn", Presence.LIVE, 1130.0)
    c.apply(MOD, RollcallStart(), 1200.0)
    c.apply(site("hn"), RollcallAnswer("hn", status="present"), 1201.0)
    c.apply(site("dn"), RollcallAnswer("dn", status="late", reason="kẹt xe"), 1202.0)
    c.apply(MOD, RollcallEnd(), 1210.0)
    c.apply(site("dn"), FloorRequest("dn"), 1300.0)
    c.apply(MOD, FloorGrant("dn"), 1310.0)
    c.apply(MOD, FloorRelease("dn"), 1400.0)
    c.set_presence("dn", Presence.OFFLINE, 1500.0)
    rows = c.control.attendance.rows(c.control.rollcalls.history, 1600.0)
    parsed = {r["site_id"]: r for r in csv.DictReader(io.StringIO(to_csv(rows)))}
    assert parsed["hn"]["connected_s"] == str(100 + 470) and parsed["hn"]["reconnects"] == "1"
    assert parsed["dn"]["connected_s"] == "490" and parsed["dn"]["rollcall"] == "late (kẹt xe)"
    assert parsed["dn"]["floor_requests"] == "1" and parsed["dn"]["floor_grants"] == "1"
    assert parsed["dn"]["floor_s"] == "90"
    assert parsed["bo"]["connected_s"] == "0" and parsed["bo"]["rollcall"] == "not_checked"
    page = to_html(rows, "Hội nghị", "vi", 1600.0)
    assert "Báo cáo tham dự" in page and "Sở TT&amp;TT Đà Nẵng" in page
    assert "Attendance report" in to_html(rows, "Hội nghị", "en", 1600.0)


def test_program_modes() -> None:
    c = conference()
    c.apply(MOD, FloorGrant("hn"), 1.0)
    assert c.program == "hn"
    c.set_dominant("dn", 2.0)
    assert c.program == "hn", "floor mode: the floor holder, not the loudest"
    patch = c.set_mode("voice", 3.0)
    assert patch is not None and patch["program"] == "dn" and patch["mode"] == "voice"
    assert c.set_dominant("bo", 4.0)["program"] == "bo"  # type: ignore[index]
    assert c.set_mode("lecture", 5.0)["program"] == "hall"  # type: ignore[index]
    assert c.set_program("dn", 6.0)["program"] == "dn"  # type: ignore[index]
    assert c.mode == "pinned"
    assert c.set_mode("floor", 7.0)["program"] == "hn"  # type: ignore[index]
    with pytest.raises(Refused):
        c.set_mode("karaoke", 8.0)


def test_a_restart_shows_as_a_gap_in_attendance() -> None:
    c = conference()
    c.set_presence("hn", Presence.LIVE, 100.0)
    c.restarted_at = 500.0  # the server died and came back with the stored state
    c.set_presence("hn", Presence.SIGNALING, 520.0)  # the site's page reconnects...
    c.set_presence("hn", Presence.LIVE, 530.0)  # ...and its media
    assert c.control.attendance.sites["hn"].intervals == [[100.0, 500.0], [530.0, None]]
    c.set_presence("dn", Presence.LIVE, 600.0)
    c.set_presence("dn", Presence.OFFLINE, 700.0)
    assert c.control.attendance.sites["dn"].intervals == [[600.0, 700.0]], "after the restart: as usual"


def test_program_and_talk_time_are_state_and_survive_a_reload() -> None:
    """Program and talk time are counted by the state's own changes (not by a clock beside it),
    so what the store holds, read back, reports the same times."""
    from bridge.state_codec import load_document, to_document

    c = conference()
    c.tick(100.0)  # the hall is on the program from here
    c.apply(MOD, FloorGrant("hn"), 130.0)
    c.set_dominant("hn", 131.0)
    c.set_dominant("dn", 151.0)
    c.apply(MOD, FloorRelease("hn"), 190.0)
    rows = {r["site_id"]: r for r in c.control.attendance.rows([], 200.0)}
    assert (rows["hall"]["program_s"], rows["hn"]["program_s"]) == (40, 60)
    assert (rows["hn"]["talk_s"], rows["dn"]["talk_s"]) == (20, 49), "the running part counts"
    again = conference()
    load_document(again, to_document(c))
    assert again.control.attendance.rows([], 200.0) == c.control.attendance.rows([], 200.0)


def test_recording_is_one_at_a_time_and_audited() -> None:
    c = conference()
    tech = Actor(Role.TECHNICIAN, None, "technician")
    c.start_recording("a.mkv", 1.0, tech)
    with pytest.raises(Refused) as refused:
        c.start_recording("b.mkv", 1.0, tech)
    assert refused.value.code == "conflict" and c.recording and c.recording["file"] == "a.mkv"
    c.stop_recording(2.0, tech)
    assert [(e.action, e.target, e.result) for e in c.audit.entries] == [
        ("record:start", "a.mkv", "ok"), ("record:start", "b.mkv", "conflict"),
        ("record:stop", "a.mkv", "ok")]


def test_the_bridge_stopping_a_recording_is_audited_as_the_bridge_not_a_technician() -> None:
    c = conference()
    c.start_recording("a.mkv", 1.0, Actor(Role.TECHNICIAN, None, "technician"))
    c.stop_recording(2.0)  # the bridge's own stop: the recorder failed
    started, stopped = list(c.audit.entries)[-2:]
    assert (started.actor, started.role) == ("technician", "technician")
    assert (stopped.action, stopped.actor, stopped.role) == ("record:stop", "bridge", "bridge")
