from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from signaling.settings import DEFAULT_CONFIG, Settings, SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hallbridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    s = load_settings(None, env={})
    assert s == Settings(base_dir=s.base_dir)
    assert s.ice.servers == [] and s.ice.host_addresses == ["127.0.0.1"]
    assert s.store.backend == "memory"


def test_shipped_file_matches_the_defaults_and_documents_every_key() -> None:
    shipped = load_settings(DEFAULT_CONFIG, env={})
    assert shipped == load_settings(None, env={})
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    sections = [f.name for f in dataclasses.fields(shipped) if f.name != "base_dir"]
    assert len(sections) == 10
    for section in sections:
        assert f"\n[{section}]\n" in text, f"[{section}] is not in configs/hallbridge.toml"
        for key in type(getattr(shipped, section)).__dataclass_fields__:
            assert f"\n{key} = " in text, f"{section}.{key} is not in configs/hallbridge.toml"


def test_file_overrides_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[server]\nport = 9090\n[conference]\ntitle = "Hội nghị"\n'), env={})
    assert s.server.port == 9090 and s.conference.title == "Hội nghị"
    assert s.server.host == "127.0.0.1"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9090\n")
    env = {"HALLBRIDGE__SERVER__PORT": "9191", "HALLBRIDGE__ICE__SERVERS": '["stun:127.0.0.1:3478"]',
           "HALLBRIDGE__CONFERENCE__ID": "hop-thu"}
    s = load_settings(path, env=env)
    assert s.server.port == 9191
    assert s.ice.servers == ["stun:127.0.0.1:3478"]
    assert s.conference.id == "hop-thu"


@pytest.mark.parametrize(("text", "env", "named"), [
    ("[server]\nprot = 1\n", {}, "server.prot"),
    ("[sever]\nport = 1\n", {}, "[sever]"),
    ("", {"HALLBRIDGE__MEDIA__BITRATE": "1"}, "media.bitrate"),
    ("", {"HALLBRIDGE__NOPE__X": "1"}, "[nope]"),
])
def test_unknown_key_is_an_error_naming_it(
    tmp_path: Path, text: str, env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load_settings(write(tmp_path, text), env=env)


@pytest.mark.parametrize("text", [
    '[server]\nport = "80"\n', "[server]\nport = 70000\n", '[store]\nbackend = "mongo"\n',
    '[ice]\nhost_addresses = ["not-an-ip"]\n', '[ice]\nservers = ["http://x"]\n',
    "[media]\nthumbnail_fps = 0\n", "[server]\nport = true\n",
])
def test_invalid_values_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(SettingsError):
        load_settings(write(tmp_path, text), env={})


@pytest.mark.parametrize(("text", "named"), [
    ('[ice]\nport_range = "40000"\n', "ice.port_range"),
    ('[ice]\nport_range = "40010-40000"\n', "ice.port_range"),
    ('[ice]\nport_range = "80-200"\n', "ice.port_range"),
    ('[ice]\nhost_addresses = ["0.0.0.0"]\n', "ice.host_addresses"),
    ('[ice]\nannounce_addresses = ["127.0.0.1", "127.0.0.2"]\n', "ice.announce_addresses"),
    ('[ice]\nhost_addresses = ["0.0.0.0"]\nannounce_addresses = ["0.0.0.0"]\n',
     "ice.announce_addresses"),
    ('[server]\ntrusted_proxies = ["10.0.0.0/33"]\n', "server.trusted_proxies"),
])
def test_network_settings_name_what_is_wrong(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load_settings(write(tmp_path, text), env={})


def test_a_port_range_and_announced_address(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[ice]\nhost_addresses = ["0.0.0.0"]\n'
                                      'announce_addresses = ["127.0.0.1"]\n'
                                      'port_range = "40000-40199"\n'), env={})
    assert s.ice.ports() == range(40000, 40200) and s.ice.announce_addresses == ["127.0.0.1"]
    assert load_settings(None, env={}).ice.ports() is None


def test_environment_value_of_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=re.escape("server.port")):
        load_settings(None, env={"HALLBRIDGE__SERVER__PORT": "eighty"})
