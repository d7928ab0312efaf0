"""The command line as a user runs it: links, and simulate against a live server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bridge.roles import Role
from signaling.settings import REPO_ROOT, Settings
from tests.conftest import RunningServer, answers


def cli_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["HALLBRIDGE__SERVER__PORT"] = str(settings.server.port)
    env["HALLBRIDGE__TOKENS__SECRET_FILE"] = settings.tokens.secret_file
    return env


async def run_cli(settings: Settings, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", *args, cwd=REPO_ROOT, env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_links_gives_one_working_link_per_role_and_site(server: RunningServer) -> None:
    code, out, _ = await run_cli(server.settings, "links")
    assert code == 0
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert len(lines) == 4 + 66
    by_name = {name: url for name, url in lines}
    url = by_name["Sở Thông tin và Truyền thông Quảng Ninh"]
    assert url.startswith(f"{server.url}/site.html#token=")
    ident = server.bridge.tokens.verify(url.split("#token=")[1])
    assert ident.role is Role.SITE and ident.site_id == "stttt-quang-ninh"
    assert server.bridge.tokens.verify(lines[0][1].split("#token=")[1]).role is Role.TECHNICIAN


async def test_simulate_joins_sites_that_receive_the_program(server: RunningServer) -> None:
    code, out, err = await run_cli(server.settings, "simulate", "--sites", "3", "--seconds", "3",
                                   "--url", server.url)
    assert code == 0, err
    assert "joined Hội trường" in out and "joined VPĐD Đà Nẵng" in out
    assert "4 joined, 3 receiving the program" in out, out


async def test_unknown_setting_stops_the_start_with_its_name(tmp_path: Path, settings: Settings) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nhots = '127.0.0.1'\n", encoding="utf-8")
    code, _, err = await run_cli(settings, "--config", str(bad), "serve", timeout=20)
    assert code == 2 and "server.hots" in err


async def test_a_short_secret_is_a_clear_error_not_a_traceback(settings: Settings) -> None:
    env = cli_env(settings)
    env[settings.tokens.secret_env] = "too-short"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "links", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and out == b""
    assert "at least 32 bytes" in err.decode() and "Traceback" not in err.decode()


# the interpreter as it would be without the `sim` extra: Pillow and rich cannot be imported
WITHOUT_SIM = ("import sys; sys.modules['PIL'] = None; sys.modules['rich'] = None; "
               "from signaling.cli import main; sys.exit(main(sys.argv[1:]))")


async def test_the_server_runs_without_the_simulator_and_simulate_says_what_is_missing(
        settings: Settings) -> None:
    env = cli_env(settings)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WITHOUT_SIM, "simulate", "--sites", "1", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(sim.communicate(), 60)
    assert sim.returncode == 2 and "hallbridge[sim]" in err.decode() and "Traceback" not in err.decode()

    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WITHOUT_SIM, "serve", cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        # 30 s: it answers in ~2 s when idle
        assert await answers(f"{settings.server.base_url()}/site.html", 30,
                             alive=lambda: serve.returncode is None), \
            "the server without Pillow and rich never answered"
    finally:
        serve.terminate()
        _, err = await asyncio.wait_for(serve.communicate(), 30)
    assert "ModuleNotFoundError" not in err.decode()
