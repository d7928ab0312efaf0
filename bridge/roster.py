"""The roster: the main hall and the remote bridge points of one conference (pure data)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SITE_KINDS = ("hall", "ministry", "office", "province")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class RosterError(ValueError):
    """The roster file is malformed: the message names the entry and the field."""


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    short: str
    region: str
    kind: str

    @property
    def is_hall(self) -> bool:
        return self.kind == "hall"

    def to_wire(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "short": self.short,
                "region": self.region, "kind": self.kind}


class Roster:
    """Sites in roster order; exactly one main hall."""

    def __init__(self, sites: list[Site], regions: Mapping[str, str]) -> None:
        self._sites = {s.id: s for s in sites}
        self.regions = dict(regions)
        halls = [s for s in sites if s.is_hall]
        if len(self._sites) != len(sites):
            raise RosterError("duplicate site id in roster")
        if len(halls) != 1:
            raise RosterError(f"roster needs exactly one site of kind 'hall', found {len(halls)}")
        self.hall = halls[0]

    def __iter__(self) -> Iterator[Site]:
        return iter(self._sites.values())

    def __len__(self) -> int:
        return len(self._sites)

    def __contains__(self, site_id: object) -> bool:
        return site_id in self._sites

    def get(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    def remote_sites(self) -> list[Site]:
        return [s for s in self._sites.values() if not s.is_hall]

    def to_wire(self) -> list[dict[str, str]]:
        return [s.to_wire() for s in self._sites.values()]


def roster_from_mapping(data: Mapping[str, Any]) -> Roster:
    regions = data.get("regions", {})
    entries = data.get("sites")
    if not isinstance(entries, list) or not entries:
        raise RosterError("roster has no [[sites]] entries")
    return Roster([_site(i, e, regions) for i, e in enumerate(entries)], regions)


def load_roster(path: Path) -> Roster:
    with open(path, "rb") as f:
        return roster_from_mapping(tomllib.load(f))


def _site(index: int, entry: Any, regions: Mapping[str, str]) -> Site:
    if not isinstance(entry, dict):
        raise RosterError(f"sites[{index}] must be a table")
    unknown = set(entry) - {"id", "name", "short", "region", "kind"}
    if unknown:
        raise RosterError(f"sites[{index}]: unknown key {sorted(unknown)[0]!r}")
    for key in ("id", "name", "region", "kind"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise RosterError(f"sites[{index}]: missing or empty {key!r}")
    if not _ID.match(entry["id"]):
        raise RosterError(f"sites[{index}]: id {entry['id']!r} must be lowercase ASCII, digits, '-'")
    if entry["kind"] not in SITE_KINDS:
        raise RosterError(f"sites[{index}]: kind {entry['kind']!r} not one of {SITE_KINDS}")
    if regions and entry["region"] not in regions:
        raise RosterError(f"sites[{index}]: region {entry['region']!r} is not in [regions]")
    short = entry.get("short") or entry["name"]
    return Site(entry["id"], entry["name"], short, entry["region"], entry["kind"])
