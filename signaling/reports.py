"""`GET /api/reports/attendance?format=csv|html&lang=vi|en` with `Authorization: Bearer <token>`."""

from __future__ import annotations

import time

from aiohttp import web

from bridge.control.attendance import to_csv, to_html
from bridge.permissions import allowed
from signaling.security import REPORT_CSP
from signaling.tokens import TokenError


async def attendance_report(request: web.Request) -> web.Response:
    from signaling.app import BRIDGE  # the app module imports this one

    bridge = request.app[BRIDGE]
    header = request.headers.get("Authorization", "")
    try:
        identity = bridge.tokens.verify(header.removeprefix("Bearer ").strip())
    except TokenError as exc:
        raise web.HTTPUnauthorized(text=str(exc)) from None
    if not allowed(identity.role, "report:attendance"):
        raise web.HTTPForbidden(text=f"role {identity.role.value} may not read the attendance report")
    fmt = request.query.get("format", "csv")
    lang = request.query.get("lang", "vi")
    if fmt not in ("csv", "html") or lang not in ("vi", "en"):
        raise web.HTTPBadRequest(text="format must be csv or html, lang vi or en")
    conference = bridge.conference
    control = conference.control
    current = control.rollcalls.current
    rollcalls = [*control.rollcalls.history, *([current] if current else [])]
    now = time.time()
    rows = control.attendance.rows(rollcalls, now)
    name = f"attendance-{conference.id}"
    if fmt == "csv":
        return web.Response(body=to_csv(rows).encode("utf-8-sig"), content_type="text/csv",
                            charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return web.Response(text=to_html(rows, conference.title, lang, now), content_type="text/html",
                        headers={"Content-Security-Policy": REPORT_CSP})
