"""The floor state machine, driven with a fake clock."""

from __future__ import annotations

import pytest

from bridge.control import Refused
from bridge.control.floor import Floor, FloorRules


def kinds(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.kind for e in events]


def test_request_queue_grant_release() -> None:
    floor = Floor(FloorRules(auto_accept=True))
    assert kinds(floor.request("a", "ngân sách", 0, 0.0)) == ["requested", "accepted"]
    floor.request("b", "", 0, 1.0)
    assert [r.site for r in floor.queue()] == ["a", "b"] and floor.position("b") == 2
    assert kinds(floor.grant("a", 2.0)) == ["granted"]
    assert floor.position("a") is None and floor.position("b") == 1, "the grant leaves the queue"
    released = floor.release("a", 12.0)
    assert kinds(released) == ["released"] and released[0].detail == "10.0"


def test_pending_until_a_moderator_accepts() -> None:
    floor = Floor(FloorRules(auto_accept=False))
    assert kinds(floor.request("a", "", 0, 0.0)) == ["requested"]
    assert floor.queue() == [] and floor.to_wire(0.0)["pending"][0]["site"] == "a"
    floor.accept("a", 1.0)
    assert floor.position("a") == 1
    with pytest.raises(Refused):
        floor.accept("a", 2.0)


def test_every_refusal_changes_nothing() -> None:
    floor = Floor()
    floor.request("a", "", 0, 0.0)
    before = floor.to_wire(0.0)
    for attempt in (lambda: floor.request("a", "", 0, 1.0), lambda: floor.release("a", 1.0),
                    lambda: floor.cancel("zz", 1.0), lambda: floor.deny("zz", "", 1.0),
                    lambda: floor.reorder("a", 5, 1.0), lambda: floor.accept("a", 1.0)):
        with pytest.raises(Refused):
            attempt()
        assert floor.to_wire(0.0) == before
    floor.grant("a", 1.0)
    with pytest.raises(Refused):
        floor.grant("a", 2.0)
    with pytest.raises(Refused):
        floor.request("a", "", 0, 2.0)


def test_priority_goes_first_and_reorder_moves() -> None:
    floor = Floor()
    for site in ("a", "b"):
        floor.request(site, "", 0, 0.0)
    floor.request("lead", "", 1, 1.0)
    assert [r.site for r in floor.queue()] == ["lead", "a", "b"]
    floor.request("lead2", "", 1, 2.0)
    assert [r.site for r in floor.queue()] == ["lead", "lead2", "a", "b"]
    floor.reorder("b", 1, 3.0)
    assert [r.site for r in floor.queue()] == ["b", "lead", "lead2", "a"]


def test_deny_and_cancel() -> None:
    floor = Floor()
    floor.request("a", "", 0, 0.0)
    floor.request("b", "", 0, 0.0)
    assert kinds(floor.deny("a", "hết giờ", 1.0)) == ["denied"]
    assert kinds(floor.cancel("b", 1.0)) == ["cancelled"]
    assert floor.queue() == []


def test_one_speaker_a_new_grant_passes_the_floor_on() -> None:
    floor = Floor(FloorRules(max_holders=1))
    floor.grant("a", 0.0)
    assert kinds(floor.grant("b", 5.0)) == ["revoked", "granted"]
    assert list(floor.holders) == ["b"]


def test_several_speakers_when_configured() -> None:
    floor = Floor(FloorRules(max_holders=2))
    floor.grant("a", 0.0)
    floor.grant("b", 0.0)
    with pytest.raises(Refused):
        floor.grant("c", 0.0)
    assert set(floor.holders) == {"a", "b"}


def test_timer_warns_then_revokes() -> None:
    floor = Floor(FloorRules(speaking_limit_s=60, warning_s=10))
    floor.grant("a", 100.0)
    assert floor.tick(149.0) == []
    warned = floor.tick(150.0)
    assert kinds(warned) == ["warned"] and warned[0].detail == "10"
    assert floor.tick(155.0) == [], "warned once"
    assert kinds(floor.tick(160.0)) == ["expired"]
    assert floor.holders == {}


def test_per_grant_limit() -> None:
    floor = Floor(FloorRules(speaking_limit_s=300))
    floor.grant("a", 0.0, limit_s=30)
    assert kinds(floor.tick(30.0)) == ["expired"]


def test_grace_keeps_place_and_floor_then_lets_go() -> None:
    floor = Floor(FloorRules(grace_s=60))
    floor.request("q", "", 0, 0.0)
    floor.grant("h", 0.0)
    floor.site_left("q", 10.0)
    floor.site_left("h", 10.0)
    assert floor.tick(69.0) == [] and floor.position("q") == 1 and "h" in floor.holders
    floor.site_back("q")  # q came back in time: keeps its place
    assert kinds(floor.tick(70.0)) == ["revoked"]
    assert floor.position("q") == 1 and floor.holders == {}
    floor.site_left("q", 100.0)
    assert kinds(floor.tick(160.0)) == ["cancelled"] and floor.queue() == []


def test_grant_next() -> None:
    floor = Floor()
    with pytest.raises(Refused):
        floor.grant_next(0.0)
    floor.request("a", "", 0, 0.0)
    assert kinds(floor.grant_next(1.0)) == ["granted"] and "a" in floor.holders
