"""Every HTTP response carries the hardening a government deployment expects."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

import aiohttp
import pytest

from bridge.roles import Role
from tests.conftest import RunningServer

PAGES = ["/index.html", "/site.html", "/console.html", "/moderator.html", "/hall.html"]
OTHERS = ["/js/protocol.js", "/css/hallbridge.css", "/healthz", "/readyz", "/metrics", "/nothing.html",
          "/api/reports/attendance"]


def check_common(path: str, headers: Mapping[str, str]) -> None:
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, path
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, path
    assert headers.get("X-Frame-Options") == "DENY", path
    assert headers.get("Referrer-Policy") == "no-referrer", path
    assert headers.get("X-Content-Type-Options") == "nosniff", path
    # HSTS only over TLS (tests/signaling/test_tls.py): plain HTTP on localhost must stay usable
    assert "Strict-Transport-Security" not in headers, path
    server = headers.get("Server", "")
    assert not re.search(r"\d|aiohttp|python", server, re.I), f"{path}: Server says {server!r}"


async def test_pages_modules_and_api_answers_are_hardened(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        for path in PAGES + OTHERS:
            async with session.get(server.url + path) as r:
                check_common(path, r.headers)
                if path in PAGES:
                    assert r.status == 200
                    csp = r.headers["Content-Security-Policy"]
                    for directive in ("script-src 'self'", "connect-src 'self'", "default-src 'self'"):
                        assert directive in csp, (path, csp)
                if path.startswith("/api/") or path in ("/metrics", "/readyz", "/healthz"):
                    assert r.headers.get("Cache-Control") == "no-store", path


@pytest.mark.parametrize("fmt", ["csv", "html"])
async def test_the_attendance_report_is_never_cached_and_its_page_allows_only_its_own_style(
        server: RunningServer, fmt: str) -> None:
    token = server.bridge.tokens.issue(Role.MODERATOR)
    async with aiohttp.ClientSession() as session, session.get(
            f"{server.url}/api/reports/attendance?format={fmt}",
            headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
        body = await r.text()
        check_common(fmt, r.headers)
        assert r.headers["Cache-Control"] == "no-store"
        if fmt == "html":
            style = re.search(r"<style>(.*?)</style>", body, re.S)
            assert style is not None
            digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
            csp = r.headers["Content-Security-Policy"]
            assert f"style-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
