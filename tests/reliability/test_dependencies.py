"""Known vulnerabilities: none in what pyproject allows, what the lock pins, or what is installed.

The advisories come from the PyPA advisory database (advisories.toml says which and when); the
same check pip-audit makes against its online service, made here from a file because this machine
cannot reach that service (`bash .ci/audit` runs pip-audit itself where it can).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from signaling.settings import REPO_ROOT

ADVISORY_FILE = Path(__file__).parent / "advisories.toml"
ADVISORIES = tomllib.loads(ADVISORY_FILE.read_text(encoding="utf-8"))["advisory"]
NAMED = ("python-socketio", "python-engineio", "aiohttp", "aiortc")  # the issue names these


def affecting(package: str, version: str) -> list[str]:
    name = canonicalize_name(package)
    return [a["id"] for a in ADVISORIES
            if canonicalize_name(a["package"]) == name and Version(version) in SpecifierSet(a["affected"])]


def minimums() -> dict[str, Version]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if lows:
            out[canonicalize_name(req.name)] = max(lows)
    return out


def test_the_advisory_file_is_well_formed() -> None:
    assert len(ADVISORIES) > 50
    for a in ADVISORIES:
        spec = SpecifierSet(a["affected"])
        assert Version(a["fixed"]) not in spec, f"{a['id']}: its fixed release is inside its range"
        assert a["source"] and a["id"]


def test_pyproject_minimums_exclude_every_fixed_advisory_of_the_named_packages() -> None:
    lows = minimums()
    for package in NAMED:
        low = lows[canonicalize_name(package)]
        assert not affecting(package, str(low)), f"{package}>={low} admits {affecting(package, str(low))}"
        fixed = [Version(a["fixed"]) for a in ADVISORIES if a["package"] == package]
        assert all(low >= f for f in fixed), f"{package}>={low} is below a fixed release {max(fixed)}"


def test_the_locked_set_has_no_known_vulnerability() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    pins = dict(line.split("==", 1) for line in lock.splitlines()
                if "==" in line and not line.startswith("#"))
    assert {"aiohttp", "python-socketio", "python-engineio", "aiortc", "pip", "setuptools"} <= set(pins)
    found = {f"{name}=={version}": affecting(name, version) for name, version in pins.items()}
    assert not {k: v for k, v in found.items() if v}, found


def test_the_installed_set_has_no_known_vulnerability() -> None:
    found = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if name and affecting(name, version):
            found[f"{name}=={version}"] = affecting(name, version)
    assert not found, f"installed with known vulnerabilities: {found}"
