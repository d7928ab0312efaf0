from __future__ import annotations

import pytest

from bridge.roster import RosterError, load_roster, roster_from_mapping
from signaling.settings import DEFAULT_CONFIG


def test_reference_roster_has_the_hall_and_66_bridge_points() -> None:
    roster = load_roster(DEFAULT_CONFIG.parent / "sites.toml")
    assert len(roster) == 67
    assert roster.hall.id == "hall"
    remote = roster.remote_sites()
    assert len(remote) == 66
    kinds = [s.kind for s in remote]
    assert kinds.count("ministry") == 1 and kinds.count("office") == 2 and kinds.count("province") == 63
    hcm = roster.get("stttt-ho-chi-minh")
    assert hcm is not None and hcm.name == "Sở Thông tin và Truyền thông TP. Hồ Chí Minh"
    assert {s.region for s in roster} == {"bac", "trung", "nam"}
    assert roster.regions["trung"] == "Miền Trung"


def test_any_roster_size_works() -> None:
    sites = [{"id": "hall", "name": "Hội trường", "region": "x", "kind": "hall"}]
    sites += [{"id": f"s{i}", "name": f"Điểm cầu {i}", "region": "x", "kind": "province"} for i in range(200)]
    roster = roster_from_mapping({"sites": sites})
    assert len(roster.remote_sites()) == 200
    assert roster.get("s7") is not None and roster.get("s7").short == "Điểm cầu 7"  # type: ignore[union-attr]


@pytest.mark.parametrize(("sites", "message"), [
    ([], "no \\[\\[sites\\]\\]"),
    ([{"id": "a", "name": "A", "region": "x", "kind": "province"}], "exactly one"),
    ([{"id": "Hà Nội", "name": "A", "region": "x", "kind": "hall"}], "lowercase"),
    ([{"id": "a", "name": "A", "region": "x", "kind": "hall", "colour": "red"}], "colour"),
    ([{"id": "a", "name": "", "region": "x", "kind": "hall"}], "name"),
    ([{"id": "a", "name": "A", "region": "x", "kind": "stadium"}], "kind"),
    ([{"id": "a", "name": "A", "region": "x", "kind": "hall"},
      {"id": "a", "name": "B", "region": "x", "kind": "province"}], "duplicate"),
])
def test_malformed_rosters_are_refused(sites: list[dict[str, str]], message: str) -> None:
    with pytest.raises(RosterError, match=message):
        roster_from_mapping({"sites": sites})


def test_region_must_be_declared_when_regions_are_listed() -> None:
    with pytest.raises(RosterError, match="region"):
        roster_from_mapping({"regions": {"bac": "Miền Bắc"},
                             "sites": [{"id": "h", "name": "H", "region": "tay", "kind": "hall"}]})
