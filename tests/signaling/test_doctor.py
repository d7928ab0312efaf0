"""`hallbridge doctor` against a real set-up — a certificate for the public name, a real coturn, a
real Redis with AOF on, a UDP port range — passes; each broken part fails, naming its check, with
a non-zero exit status (issue 16)."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signaling.cli import main
from signaling.tls import make_certificate
from tests.conftest import TURN_SECRET, free_port


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, with AOF on (as docs/deploy.md asks)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: .ci/setup installs it")
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "yes", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 15
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                         text=True).stdout.strip() != "PONG":
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.1)
    yield port, proc
    proc.kill()
    proc.wait()


def write_cert(folder: Path, hosts: list[str], days: int, start_days_ago: float = 0) -> None:
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=start_days_ago)
    cert, key = make_certificate(hosts, days, not_before=start)
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    (folder / "key.pem").chmod(0o600)


@pytest.fixture
def setup(tmp_path: Path, coturn: int, aof_redis: tuple[int, subprocess.Popen[bytes]]) -> Path:
    """A config like a real meeting's, on loopback."""
    write_cert(tmp_path, ["127.0.0.1", "cau.local"], days=90)
    (tmp_path / "turn-secret").write_text(TURN_SECRET.decode())
    (tmp_path / "secret").write_text("s" * 8 + "0123456789abcdefghijklmnopqrstuvwxyz")
    (tmp_path / "secret").chmod(0o600)
    config = tmp_path / "hallbridge.toml"
    roster = Path(__file__).resolve().parents[2] / "configs" / "sites.toml"
    config.write_text(f"""
[server]
public_url = "https://127.0.0.1:8443"
tls_cert = "{tmp_path / 'cert.pem'}"
tls_key = "{tmp_path / 'key.pem'}"
[conference]
roster = "{roster}"
[ice]
port_range = "{free_port_range()}"
[turn]
urls = ["turn:127.0.0.1:{coturn}?transport=tcp", "turn:127.0.0.1:{coturn}?transport=udp"]
secret_env = "HALLBRIDGE_DOCTOR_TEST_UNSET"
secret_file = "{tmp_path / 'turn-secret'}"
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:{aof_redis[0]}/0"
[tokens]
secret_env = "HALLBRIDGE_DOCTOR_TEST_UNSET"
secret_file = "{tmp_path / 'secret'}"
""", encoding="utf-8")
    return config


def free_port_range() -> str:
    first = free_port()
    first = min(first, 65535 - 40)
    return f"{first}-{first + 31}"


def run_doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, list[str]]]:
    status = main(["--config", str(config), "doctor"])
    lines: dict[str, list[str]] = {}
    for line in capsys.readouterr().out.splitlines():
        match = re.match(r"(OK|FAIL)\s+(\S+(?: ports)?)\s+(.*)", line)
        if match:
            lines.setdefault(match[2], []).append(f"{match[1]} {match[3]}")
    return status, lines


def failed(lines: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [v for v in values if v.startswith("FAIL")] for name, values in lines.items()
            if any(v.startswith("FAIL") for v in values)}


def test_the_doctor_passes_a_sound_setup(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = run_doctor(setup, capsys)
    assert status == 0 and not failed(lines), lines
    assert set(lines) == {"certificate", "turn", "udp ports", "redis", "secrets"}, lines
    assert len(lines["turn"]) == 2 and all("allocated relay 127.0.0.1:" in t for t in lines["turn"])
    assert "AOF on" in lines["redis"][0]
    assert "valid for 127.0.0.1" in lines["certificate"][0]


@pytest.mark.parametrize(("days", "ago", "says"), [
    (30, 100, "expired on"),  # ran out 70 days ago
    (100, 90, "expires on"),  # 10 days left: inside the 14-day warning
])
def test_a_certificate_that_is_or_soon_will_be_out_of_date_fails(
        setup: Path, capsys: pytest.CaptureFixture[str], days: int, ago: int, says: str) -> None:
    write_cert(setup.parent, ["127.0.0.1"], days=days, start_days_ago=ago)
    status, lines = run_doctor(setup, capsys)
    assert status == 1
    assert list(failed(lines)) == ["certificate"], lines
    assert says in lines["certificate"][0]


def test_a_certificate_for_another_name_fails(setup: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_cert(setup.parent, ["cau.local"], days=90)
    status, lines = run_doctor(setup, capsys)
    assert status == 1 and list(failed(lines)) == ["certificate"], lines
    assert "not valid for 127.0.0.1" in lines["certificate"][0]


def test_a_wrong_turn_secret_fails(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (setup.parent / "turn-secret").write_text("not-the-static-auth-secret-coturn-has")
    status, lines = run_doctor(setup, capsys)
    assert status == 1 and list(failed(lines)) == ["turn"], lines
    assert all("credential was refused" in t for t in lines["turn"]), lines


def test_redis_down_fails(setup: Path, capsys: pytest.CaptureFixture[str],
                          aof_redis: tuple[int, subprocess.Popen[bytes]]) -> None:
    aof_redis[1].kill()
    aof_redis[1].wait()
    status, lines = run_doctor(setup, capsys)
    assert status == 1 and list(failed(lines)) == ["redis"], lines
    assert "does not answer" in lines["redis"][0]


def test_redis_without_aof_fails(setup: Path, capsys: pytest.CaptureFixture[str],
                                 aof_redis: tuple[int, subprocess.Popen[bytes]]) -> None:
    subprocess.run(["redis-cli", "-p", str(aof_redis[0]), "config", "set", "appendonly", "no"],
                   check=True, capture_output=True)
    status, lines = run_doctor(setup, capsys)
    assert status == 1 and list(failed(lines)) == ["redis"], lines
    assert "AOF off" in lines["redis"][0]


def test_a_placeholder_or_shared_secret_fails(setup: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (setup.parent / "secret").write_text(TURN_SECRET.decode() + "-" * 10)
    (setup.parent / "turn-secret").write_text(TURN_SECRET.decode() + "-" * 10)
    status, lines = run_doctor(setup, capsys)
    assert status == 1
    assert "secrets" in failed(lines) and "TURN secret is the token secret" in \
        failed(lines)["secrets"][0], lines
