"""HTTP response hardening for every response the server sends (pages, modules, API, Socket.IO).

Scripts, styles, media and connections from this origin only; never framed; no referrer (the join
token rides in the URL fragment, and a page's links must not leak its path); no MIME sniffing;
no caching of reports and API answers; no software version in `Server`; over TLS, HSTS.
"""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

from bridge.control.attendance import REPORT_CSS
from signaling.proxies import FORWARDED_SECURE

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
# the attendance report is one self-contained page: nothing but its own inline style
REPORT_CSP = ("default-src 'none'; style-src 'sha256-"
              + base64.b64encode(hashlib.sha256(REPORT_CSS.encode()).digest()).decode()
              + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HSTS = "max-age=31536000"  # a year; not includeSubDomains: the ministry's other hosts are not ours
HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
}


async def _harden(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    if request.path.startswith("/api/") or request.path in ("/metrics", "/readyz", "/healthz"):
        headers["Cache-Control"] = "no-store"
    # served over TLS (here, or by a trusted proxy): browsers keep to HTTPS for this host from now on
    if request.secure or request.get(FORWARDED_SECURE, False):
        headers.setdefault("Strict-Transport-Security", HSTS)
    headers["Server"] = "hallbridge"  # aiohttp would name itself and its version


def install(app: web.Application) -> None:
    app.on_response_prepare.append(_harden)
