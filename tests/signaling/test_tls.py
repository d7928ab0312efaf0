"""HTTPS and WSS built in: `hallbridge cert`, `hallbridge serve` over TLS only, a certificate
swapped by SIGHUP under a live WSS session (issue 16)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import socketio
from cryptography import x509

from bridge.roles import Role
from bridge.roster import load_roster
from signaling.settings import DEFAULT_CONFIG, REPO_ROOT, load_settings
from signaling.tls import fingerprints, make_certificate, write_certificate
from signaling.tokens import TokenAuthority, load_secret
from tests.conftest import free_port


def test_a_certificate_names_every_host_and_its_key_is_private(tmp_path: Path) -> None:
    cert, key = write_certificate(tmp_path, ["cau.bo-tttt.gov.vn", "10.0.0.5", "::1"], days=30)
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["cau.bo-tttt.gov.vn"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5"),
                                                        ipaddress.ip_address("::1")]
    life = parsed.not_valid_after_utc - parsed.not_valid_before_utc
    assert datetime.timedelta(days=29) < life <= datetime.timedelta(days=30, minutes=5)
    assert (key.stat().st_mode & 0o777) == 0o600
    prints = fingerprints(cert.read_bytes())
    assert len(prints.sha256.split(":")) == 32 and len(prints.spki_sha256) == 44


def test_the_cert_command_prints_the_fingerprint_of_what_it_wrote(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "signaling.cli", "cert", "--host", "127.0.0.1",
                          "--host", "cau.local", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=60, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert fingerprints((tmp_path / "cert.pem").read_bytes()).sha256 in out.stdout


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def presented(port: int) -> str:
    """The SHA-256 of the certificate the server presents to a new connection."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), 5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return fingerprints(ssl.DER_cert_to_PEM_cert(der).encode()).sha256


async def test_serve_speaks_tls_only_and_a_sighup_swaps_the_certificate_under_live_sessions(
        tmp_path: Path) -> None:
    cert, key = write_certificate(tmp_path / "tls", ["127.0.0.1"])
    port = free_port()
    env = dict(os.environ, HALLBRIDGE__SERVER__PORT=str(port), HALLBRIDGE__SERVER__TLS_CERT=str(cert),
               HALLBRIDGE__SERVER__TLS_KEY=str(key),
               HALLBRIDGE__TOKENS__SECRET_FILE=str(tmp_path / "secret"),
               HALLBRIDGE__TOKENS__REVOKED_FILE=str(tmp_path / "revoked"))
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve"], cwd=REPO_ROOT, env=env,
                            stdout=log, stderr=log)
    url = f"https://127.0.0.1:{port}"
    trusted = aiohttp.TCPConnector(ssl=client_context(cert))
    try:
        async with aiohttp.ClientSession(connector=trusted) as http:
            for _ in range(150):
                try:
                    async with http.get(f"{url}/healthz") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the server did not answer over TLS")
            async with http.get(f"{url}/site.html") as response:
                assert response.status == 200
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            # the same port over plain HTTP gets nothing
            async with aiohttp.ClientSession() as plain:
                try:
                    async with plain.get(f"http://127.0.0.1:{port}/healthz") as response:
                        raise AssertionError(f"plain HTTP was answered: {response.status}")
                except (aiohttp.ClientError, ConnectionError):
                    pass
            settings = load_settings(env={})
            roster = load_roster(DEFAULT_CONFIG.parent / "sites.toml")
            tokens = TokenAuthority(load_secret("HALLBRIDGE_TEST_NO_SECRET", tmp_path / "secret"),
                                    settings.conference.id, roster)
            sio = socketio.AsyncClient(reconnection=False, http_session=lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_context(cert))))
            welcomed = asyncio.Event()
            sio.on("welcome", lambda data: welcomed.set())
            await sio.connect(url, auth={"token": tokens.issue(Role.SITE, "stttt-ha-noi")},
                              transports=["websocket"], wait_timeout=10)
            await asyncio.wait_for(welcomed.wait(), 10)
            assert sio.transport() == "websocket" and sio.eio.base_url.startswith("wss://")
            before = presented(port)
            assert before == fingerprints(cert.read_bytes()).sha256
            # a new certificate in the same files, read again on SIGHUP
            new_cert, new_key = make_certificate(["127.0.0.1"])
            cert.write_bytes(new_cert)
            key.write_bytes(new_key)
            proc.send_signal(signal.SIGHUP)
            end = time.monotonic() + 10
            while presented(port) == before and time.monotonic() < end:
                await asyncio.sleep(0.1)
            assert presented(port) == fingerprints(new_cert).sha256, "new connections get the new one"
            reply = await sio.call("state:get", {}, timeout=10)
            assert reply["ok"] and sio.connected, "the live WSS session was not dropped"
            await sio.disconnect()
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_links_use_https_and_the_public_name(tmp_path: Path) -> None:
    env = dict(os.environ, HALLBRIDGE__SERVER__TLS_CERT="c.pem", HALLBRIDGE__SERVER__TLS_KEY="k.pem",
               HALLBRIDGE__SERVER__PUBLIC_URL="https://cau.bo-tttt.gov.vn",
               HALLBRIDGE__TOKENS__SECRET_FILE=str(tmp_path / "secret"))
    out = subprocess.run([sys.executable, "-m", "signaling.cli", "links", "--role", "site"],
                         capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env)
    assert out.returncode == 0, out.stderr
    urls = [line.split()[-1] for line in out.stdout.splitlines() if "#token=" in line]
    assert len(urls) == 66 and all(u.startswith("https://cau.bo-tttt.gov.vn/site.html#token=") for u in urls)
    env.pop("HALLBRIDGE__SERVER__PUBLIC_URL")
    out = subprocess.run([sys.executable, "-m", "signaling.cli", "links", "--role", "moderator"],
                         capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=env)
    assert "https://127.0.0.1:8080/moderator.html#token=" in out.stdout
