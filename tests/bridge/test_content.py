"""The presentation token (issue 18), pure with a fake clock: grant, start, conflict, stop,
revoke, the grace of a presenter who dropped; through the conference: authorised, versioned,
audited, stored and in the attendance report."""

from __future__ import annotations

import csv
import io

import pytest

from bridge.conference import Actor, Conference, Presence
from bridge.control import Refused
from bridge.control.attendance import to_csv
from bridge.control.commands import PresentGrant, PresentRevoke, PresentStart, PresentStop
from bridge.control.content import Content
from bridge.control.floor import FloorRules
from bridge.permissions import MATRIX
from bridge.roles import Role
from bridge.state_codec import load_document, to_document
from tests.bridge.test_control import MOD, ROSTER

HALL = Actor(Role.HALL, "hall", "hall")
HN = Actor(Role.SITE, "hn", "hn")
DN = Actor(Role.SITE, "dn", "dn")
TECH = Actor(Role.TECHNICIAN, None, "technician")


def test_one_presenter_at_a_time_and_a_site_only_once_granted() -> None:
    c = Content("hall", grace_s=60)
    with pytest.raises(Refused) as no_grant:
        c.start("hn", "screen", 1.0)
    assert no_grant.value.code == "forbidden"
    assert [e.kind for e in c.start("hall", "camera", 2.0)] == ["started"], "the hall needs no grant"
    assert c.grant("hn", 3.0)[0].kind == "granted"
    with pytest.raises(Refused) as second:
        c.start("hn", "screen", 4.0)
    assert second.value.code == "conflict" and c.presenter == "hall"
    assert c.stop("hall", 5.0)[0].detail == "3.0"  # seconds presented
    assert c.start("hn", "screen", 6.0)[0].kind == "started"
    assert c.to_wire() == {"presenter": "hn", "since": 6.0, "source": "screen", "granted": ["hn"],
                           "away": False}
    assert c.start("hn", "camera", 7.0)[0].kind == "switched" and c.source == "camera"
    with pytest.raises(Refused) as again:
        c.start("hn", "camera", 8.0)
    assert again.value.code == "conflict"
    with pytest.raises(Refused) as bad:
        c.start("hn", "projector", 8.0)
    assert bad.value.code == "bad_request"
    with pytest.raises(Refused):
        c.stop("dn", 8.0)
    with pytest.raises(Refused):
        c.grant("hall", 8.0)
    with pytest.raises(Refused):
        c.grant("hn", 8.0)  # already granted


def test_a_revoke_ends_the_presentation_and_the_grant() -> None:
    c = Content("hall")
    c.grant("hn", 1.0)
    c.grant("dn", 1.0)
    c.start("hn", "screen", 2.0)
    assert [(e.kind, e.site) for e in c.revoke("hn", 3.0)] == [("revoked", "hn")]
    assert c.presenter is None and c.granted.keys() == {"dn"}
    with pytest.raises(Refused) as gone:
        c.start("hn", "screen", 4.0)
    assert gone.value.code == "forbidden"
    assert c.revoke("dn", 5.0)[0].kind == "revoked", "a grant not used is taken back too"
    with pytest.raises(Refused):
        c.revoke("dn", 6.0)
    c.start("hall", "screen", 7.0)
    assert c.revoke("hall", 8.0)[0].kind == "revoked", "the hall's presentation can be ended"


def test_a_presenter_who_drops_keeps_the_token_for_the_grace() -> None:
    c = Content("hall", grace_s=10)
    c.grant("hn", 0.0)
    c.start("hn", "screen", 1.0)
    c.site_left("hn", 5.0)
    assert c.tick(14.9) == [] and c.to_wire()["away"] is True
    c.site_back("hn")
    assert c.tick(20.0) == [] and c.presenter == "hn", "back inside the grace: still presenting"
    c.site_left("hn", 30.0)
    (lost,) = c.tick(40.0)
    assert (lost.kind, lost.site, c.presenter) == ("lost", "hn", None)
    assert "hn" in c.granted, "the grant stays: it may present again when back"


def conference() -> Conference:
    return Conference("c1", "Hội nghị", ROSTER, FloorRules(grace_s=2.0))


def test_the_commands_through_the_conference_are_authorised_versioned_and_audited() -> None:
    c = conference()
    with pytest.raises(Refused) as refused:
        c.apply(HN, PresentGrant("hn"), 1.0)
    assert refused.value.code == "forbidden", "a site does not grant itself"
    with pytest.raises(Refused):
        c.apply(HN, PresentStart("hn", "screen"), 1.5)
    version = c.version
    patch = c.apply(TECH, PresentGrant("hn"), 2.0)
    assert patch["version"] == version + 1 and patch["content"]["granted"] == ["hn"]
    with pytest.raises(Refused) as other:
        c.apply(HN, PresentStart("dn", "screen"), 2.5)
    assert other.value.code == "forbidden", "a site presents only itself"
    assert c.apply(HN, PresentStart("hn", "screen"), 3.0)["content"]["presenter"] == "hn"
    with pytest.raises(Refused) as busy:
        c.apply(HALL, PresentStart("hall", "camera"), 4.0)
    assert busy.value.code == "conflict"
    assert c.apply(MOD, PresentRevoke("hn"), 5.0)["content"]["presenter"] is None
    c.apply(HALL, PresentStart("hall", "camera"), 6.0)
    c.apply(HALL, PresentStop("hall"), 9.0)
    actions = [(e.actor, e.action, e.result) for e in c.audit.entries]
    assert actions[:4] == [("hn", "present:grant", "forbidden"), ("hn", "present:start", "forbidden"),
                           ("technician", "present:grant", "ok"), ("hn", "present:start", "forbidden")]
    assert actions[-5:] == [("hn", "present:start", "ok"), ("hall", "present:start", "conflict"),
                            ("moderator", "present:revoke", "ok"), ("hall", "present:start", "ok"),
                            ("hall", "present:stop", "ok")]
    rows = {r["site_id"]: r for r in csv.DictReader(io.StringIO(to_csv(
        c.control.attendance.rows([], 10.0))))}
    assert rows["hn"]["presented_s"] == "2" and rows["hall"]["presented_s"] == "3"
    assert rows["dn"]["presented"] == ""


def test_a_presenter_that_drops_loses_the_token_after_the_grace_and_it_is_stored() -> None:
    c = conference()
    c.set_presence("hn", Presence.LIVE, 1.0)
    c.apply(MOD, PresentGrant("hn"), 1.0)
    c.apply(HN, PresentStart("hn", "screen"), 2.0)
    patch = c.set_presence("hn", Presence.LOST, 3.0)
    assert patch is not None and patch["content"]["away"] is True
    copy = conference()
    load_document(copy, to_document(c))
    assert copy.control.content.to_wire() == c.control.content.to_wire(), "a restart keeps it"
    c.tick(4.5)
    assert c.control.content.presenter == "hn", "inside the grace"
    ended = c.tick(5.1)
    assert ended is not None and ended["content"]["presenter"] is None
    assert c.audit.entries[-1].action == "present:lost"
    assert c.control.attendance.sites["hn"].presented == [[2.0, 5.1]]


def test_every_presentation_action_has_its_roles() -> None:
    assert MATRIX["present:grant"] == MATRIX["present:revoke"] == {Role.MODERATOR, Role.TECHNICIAN}
    assert MATRIX["present:start"] == MATRIX["present:stop"] == {Role.SITE, Role.HALL}
