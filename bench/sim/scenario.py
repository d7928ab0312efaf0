"""Rehearsal scenarios (configs/scenarios/*.toml): who joins, speaks, asks, answers, drops — when.

A scenario is checked whole before anything runs: an unknown action, a site outside the roster
(or outside the sites taking part), a time outside the rehearsal, or a missing field is an error
that names the event.

    name = "short-rehearsal"
    sites = 8              # the first N remote sites of the roster take part (or a list of ids)
    duration_s = 60
    join_rate = 4.0        # sites joining per second
    [[events]]
    at = 5.0
    action = "rollcall:start"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.roster import Roster

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "configs" / "scenarios"
# action -> (who acts: "moderator" or "site", fields it takes: name -> type)
ACTIONS: dict[str, tuple[str, dict[str, type]]] = {
    "rollcall:start": ("moderator", {}),
    "rollcall:end": ("moderator", {}),
    "rollcall:answer": ("site", {"status": str, "name": str}),
    "floor:request": ("site", {"topic": str}),
    "floor:release": ("site", {}),
    "floor:grant": ("moderator", {"limit_s": float}),
    "floor:next": ("moderator", {}),
    "floor:revoke": ("moderator", {}),
    "mute:all": ("moderator", {}),
    "program:mode": ("moderator", {"mode": str}),
    "speak": ("site", {"seconds": float}),  # the site talks (its microphone open if allowed)
    "noise": ("site", {}),  # a 200 ms transient: a cough, a door
    "drop": ("site", {}),  # the site's page and media vanish...
    "rejoin": ("site", {}),  # ...and come back with the same link
    "hall:speak": ("moderator", {"seconds": float}),  # the main hall talks
}
SITE_TARGETED = {"floor:grant", "floor:revoke"}  # moderator actions that name a site


class ScenarioError(ValueError):
    """The scenario cannot run: the message names the event and what is wrong."""


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    action: str
    site: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    sites: tuple[str, ...]
    duration_s: float
    join_rate: float
    events: tuple[Event, ...]


def load_scenario(name_or_path: str, roster: Roster) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse_scenario(data, roster)


def parse_scenario(data: dict[str, Any], roster: Roster) -> Scenario:
    unknown = set(data) - {"name", "sites", "duration_s", "join_rate", "events"}
    if unknown:
        raise ScenarioError(f"unknown key {sorted(unknown)[0]!r}")
    remote = [s.id for s in roster.remote_sites()]
    sites = data.get("sites", len(remote))
    if isinstance(sites, int) and 0 < sites <= len(remote):
        chosen = tuple(remote[:sites])
    elif isinstance(sites, list) and sites and all(isinstance(s, str) for s in sites):
        bad = [s for s in sites if s not in remote]
        if bad:
            raise ScenarioError(f"sites: {bad[0]!r} is not a remote site of the roster")
        chosen = tuple(sites)
    else:
        raise ScenarioError(f"sites must be 1..{len(remote)} or a list of roster site ids")
    duration = _number(data.get("duration_s", 60), "duration_s")
    rate = _number(data.get("join_rate", 10), "join_rate")
    events = tuple(sorted((_event(n, raw, chosen, duration) for n, raw in
                           enumerate(data.get("events", []))), key=lambda e: e.at))
    return Scenario(str(data.get("name", "scenario")), chosen, duration, rate, events)


def _event(n: int, raw: Any, sites: tuple[str, ...], duration: float) -> Event:
    where = f"events[{n}]"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where} must be a table")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ScenarioError(f"{where}: unknown action {action!r}")
    who, fields = ACTIONS[action]
    at = _number(raw.get("at"), f"{where}.at")
    if not 0 <= at <= duration:
        raise ScenarioError(f"{where}: at {at} is outside the rehearsal (0..{duration} s)")
    extra = set(raw) - {"at", "action", "site"} - set(fields)
    if extra:
        raise ScenarioError(f"{where}: {action} takes no {sorted(extra)[0]!r}")
    site = raw.get("site")
    if who == "site" or action in SITE_TARGETED:
        if site not in sites:
            raise ScenarioError(f"{where}: site {site!r} does not take part in this rehearsal")
    elif site is not None:
        raise ScenarioError(f"{where}: {action} names no site")
    params = {}
    for key, kind in fields.items():
        if key in raw:
            value = raw[key]
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind):
                raise ScenarioError(f"{where}.{key} must be {kind.__name__}")
            params[key] = value
    return Event(at, str(action), site, params)


def _number(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ScenarioError(f"{name} must be a non-negative number")
    return float(value)
