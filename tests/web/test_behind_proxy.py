"""hallbridge behind the reverse proxies docs/deploy.md gives (configs/proxy/: Debian's Caddy and
nginx, run by the test on loopback with a test certificate in place of the public name's): real
Chromium opens a site page over HTTPS through the proxy, joins over WSS and decodes the program;
hallbridge counts the proxy's client (X-Forwarded-For from a trusted proxy), sends HSTS (the
forwarded scheme) and ignores an X-Forwarded-For the client forges (issue 16)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest

from bridge.roles import Role
from signaling.settings import REPO_ROOT, Settings
from signaling.tls import fingerprints, write_certificate
from tests.conftest import RunningServer, free_port, running
from tests.web.conftest import chromium
from tests.web.test_site_page import decodes_the_program

pytestmark = pytest.mark.browser
PROXY_DIR = REPO_ROOT / "configs" / "proxy"
PUBLIC = "cau.bo-tttt.gov.vn"


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str
    port: int
    cert: Path


def caddy_config(folder: Path, port: int, upstream: int, cert: Path, key: Path) -> list[str]:
    text = (PROXY_DIR / "Caddyfile").read_text(encoding="utf-8")
    # the test's stand-ins: this port instead of 443 with a certificate of ours instead of ACME,
    # no admin endpoint, no :80 redirect listener, state in the test's folder
    text = text.replace(f"{PUBLIC} {{", f"https://127.0.0.1:{port} {{\n\ttls {cert} {key}")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    glob = f"{{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system {folder}\n}}\n"
    (folder / "Caddyfile").write_text(glob + text, encoding="utf-8")
    return ["caddy", "run", "--config", str(folder / "Caddyfile"), "--adapter", "caddyfile"]


def nginx_config(folder: Path, port: int, upstream: int, cert: Path, key: Path) -> list[str]:
    text = (PROXY_DIR / "hallbridge.nginx.conf").read_text(encoding="utf-8")
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    text = text.replace("/etc/hallbridge/tls/fullchain.pem", str(cert))
    text = text.replace("/etc/hallbridge/tls/privkey.pem", str(key))
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    temp = "".join(f"    {kind}_temp_path {folder / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n    access_log off;\n{temp}{text}\n}}\n", encoding="utf-8")
    return ["nginx", "-c", str(folder / "nginx.conf"), "-p", str(folder)]


CONFIGS = {"caddy": caddy_config, "nginx": nginx_config}


@pytest.fixture(params=sorted(CONFIGS))
def proxy_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if shutil.which(name) is None and shutil.which(f"/usr/sbin/{name}") is None:
        pytest.fail(f"{name} is missing: .ci/setup --proxy installs Debian's caddy and nginx")
    return name


@pytest.fixture
def proxy_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, proxy_port: int) -> Settings:
    return replace(settings, server=replace(
        settings.server, public_url=f"https://127.0.0.1:{proxy_port}",
        trusted_proxies=["127.0.0.1/32"]))


@pytest.fixture
def proxy(proxy_name: str, proxy_port: int, settings: Settings, tmp_path: Path) -> Iterator[Proxy]:
    cert, key = write_certificate(tmp_path / "tls", ["127.0.0.1"])
    folder = tmp_path / proxy_name
    folder.mkdir()
    command = CONFIGS[proxy_name](folder, proxy_port, settings.server.port, cert, key)
    command[0] = shutil.which(command[0]) or f"/usr/sbin/{command[0]}"
    log = open(folder / "out.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", proxy_port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > end:
                pytest.fail(f"{proxy_name} did not start: {(folder / 'out.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield Proxy(proxy_name, proxy_port, cert)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running(settings) as running_server:
        yield running_server


async def test_a_site_joins_through_the_proxy_and_the_server_sees_the_client(
        server: RunningServer, proxy: Proxy) -> None:
    url = f"https://127.0.0.1:{proxy.port}"
    tls = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(proxy.cert)))
    async with aiohttp.ClientSession(connector=tls) as session:
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200
            # the proxy's X-Forwarded-Proto: https, believed because it comes from a trusted proxy
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        # a client that forges X-Forwarded-For through the proxy is counted under its own address
        ws_url = url.replace("https://", "wss://") + "/socket.io/?EIO=4&transport=websocket"
        async with session.ws_connect(ws_url, headers={"X-Forwarded-For": "127.9.9.9"}):
            await asyncio.sleep(0.3)
            assert dict(server.bridge.sio._by_address) == {"127.0.0.1": 1}, proxy.name

    hall = server.participant(Role.HALL, width=640, height=360, fps=30, ca_file=str(proxy.cert))
    await hall.connect()
    await hall.join_media()
    spki = fingerprints(proxy.cert.read_bytes()).spki_sha256
    async with chromium(f"--ignore-certificate-errors-spki-list={spki}") as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        try:
            token = server.token(Role.SITE, "stttt-binh-dinh")
            started = time.monotonic()
            await page.goto(f"{url}/site.html#token={token}")
            await page.wait_for_selector("#join:visible")
            await page.click("#join")
            await decodes_the_program(page)
            assert server.bridge.conference.sites["stttt-binh-dinh"].presence == "live"
            assert await page.evaluate("() => location.protocol") == "https:"
            print(f"{proxy.name}: page to program {time.monotonic() - started:.2f} s")
        finally:
            await page.close()
            await hall.close()
