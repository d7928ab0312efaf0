"""Rehearsals: scenario files are checked before anything runs, and a short one plays in CI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.sim.scenario import ScenarioError, load_scenario, parse_scenario
from bridge.roster import load_roster
from signaling.settings import DEFAULT_CONFIG
from tests.conftest import RunningServer
from tests.signaling.test_cli import run_cli

ROSTER = load_roster(DEFAULT_CONFIG.parent / "sites.toml")


def test_shipped_scenarios_are_valid() -> None:
    reference = load_scenario("reference-meeting", ROSTER)
    assert len(reference.sites) == 66 and reference.duration_s == 1200
    assert sum(1 for e in reference.events if e.action == "rollcall:answer") == 66
    short = load_scenario("short-rehearsal", ROSTER)
    assert len(short.sites) == 8 and short.duration_s == 60


@pytest.mark.parametrize(("events", "message"), [
    ([{"at": 1, "action": "floor:steal", "site": "bo-tttt"}], "unknown action 'floor:steal'"),
    ([{"at": 1, "action": "floor:request", "site": "stttt-atlantis"}], "does not take part"),
    ([{"at": 1, "action": "floor:request", "site": "stttt-ca-mau"}], "does not take part"),
    ([{"at": 99, "action": "rollcall:start"}], "outside the rehearsal"),
    ([{"at": 1, "action": "rollcall:start", "site": "bo-tttt"}], "names no site"),
    ([{"at": 1, "action": "speak", "site": "bo-tttt", "volume": 3}], "takes no 'volume'"),
    ([{"at": 1, "action": "speak", "site": "bo-tttt", "seconds": "long"}], "seconds must be float"),
    (["rollcall:start"], "must be a table"),
])
def test_a_bad_scenario_is_a_clear_error(events: list[Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse_scenario({"sites": 3, "duration_s": 30, "events": events}, ROSTER)


def test_unknown_keys_and_sites_are_errors() -> None:
    with pytest.raises(ScenarioError, match="unknown key 'site'"):
        parse_scenario({"site": 3}, ROSTER)
    with pytest.raises(ScenarioError, match="not a remote site"):
        parse_scenario({"sites": ["hall"]}, ROSTER)


async def test_the_cli_refuses_a_bad_scenario_before_anything_runs(tmp_path: Path,
                                                                   server: RunningServer) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('sites = 2\n[[events]]\nat = 1\naction = "dance"\n', encoding="utf-8")
    code, _, err = await run_cli(server.settings, "simulate", "--scenario", str(bad), "--url", server.url)
    assert code == 2 and "unknown action 'dance'" in err
    assert server.bridge.conference.version == 0, "nothing ran"


async def test_a_short_rehearsal_runs_as_scripted(tmp_path: Path, server: RunningServer) -> None:
    out = tmp_path / "summary.json"
    code, stdout, stderr = await run_cli(server.settings, "simulate", "--scenario", "short-rehearsal",
                                         "--url", server.url, "--out", str(out), timeout=150)
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0, (stdout, stderr, summary["errors"])
    sites = summary["sites"]
    assert len(sites) == 8 and all(s["joined"] for s in sites.values())
    assert all(s["received_program"] for s in sites.values()), sites
    expected = {"vpdd-da-nang": "representative", "stttt-ha-giang": "late"}
    assert {k: v["rollcall"] for k, v in sites.items()} == {k: expected.get(k, "present") for k in sites}
    assert summary["floor_granted_in_order"] == ["stttt-ha-noi", "vpdd-da-nang"]
    assert summary["errors"] == []
    assert "8/8 joined" in stdout
