"""The stored document: what `dataclasses.asdict` would give, sharing nothing with the live state."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from bridge import state_codec
from bridge.conference import Conference
from bridge.state_codec import load_document, to_document
from tests.store.test_stores import CONF, ROSTER, SCRIPT


def scripted() -> Conference:
    conference = Conference(CONF, "Hội nghị", ROSTER)
    clock = itertools.count(1000)
    for step in SCRIPT:
        step(conference, float(next(clock)))
    conference.control.attendance.talker_is("stttt-da-nang", 2000.0)
    return conference


def test_the_document_is_what_dataclasses_asdict_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    conference = scripted()
    fast = to_document(conference)
    monkeypatch.setattr(state_codec, "asdict", dataclasses.asdict)
    assert fast == to_document(conference)
    assert fast["rollcalls"]["current"]["answers"]["stttt-da-nang"]["name"] == "Trần Thị Bình"
    assert fast["attendance"]["stttt-ha-noi"]["intervals"], "attendance intervals are in it"


def test_the_document_shares_no_list_with_the_live_state() -> None:
    conference = scripted()
    document = to_document(conference)
    kept = to_document(conference)
    record = conference.control.attendance.sites["stttt-ha-noi"]
    record.intervals.append([2000.0, None])
    record.intervals[0][1] = 1999.0
    conference.control.floor.requests.clear()
    assert document == kept


def test_a_document_loads_back_into_the_same_state() -> None:
    conference = scripted()
    fresh = Conference(CONF, "Hội nghị", ROSTER)
    load_document(fresh, to_document(conference))
    assert to_document(fresh) == to_document(conference)


def test_a_poor_line_mark_survives_a_restart() -> None:
    before = Conference(CONF, "t", ROSTER)
    site = ROSTER.remote_sites()[3].id
    before.set_poor_line(site, True, 1.0)
    after = Conference(CONF, "t", ROSTER)
    load_document(after, to_document(before))
    assert after.poor_lines == {site}
    assert after.snapshot()["lines"] == {"poor": [site]}
