"""The moderator panel in real Chromium: agenda, requests on a site's behalf, report download."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, WebSocket

from bridge.roles import Role
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser


async def test_agenda_and_requests_on_behalf(server: RunningServer, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    sent: list[list[object]] = []  # the Socket.IO events the page sent ("42<ack>[event, payload]")

    def on_socket(ws: WebSocket) -> None:
        ws.on("framesent", lambda frame: sent.append(json.loads(frame[frame.index("["):]))
              if isinstance(frame, str) and frame.startswith("42") else None)

    page.on("websocket", on_socket)
    try:
        await page.goto(f"{server.url}/moderator.html#token={server.token(Role.MODERATOR)}")
        await page.wait_for_selector("#behalf option[value='stttt-yen-bai']", state="attached")
        await page.select_option("#behalf", "stttt-yen-bai")
        await page.click("#behalf-go")
        await page.wait_for_selector("#queue li[data-site='stttt-yen-bai']")
        await page.click("text=Sửa chương trình")
        await page.fill("#agenda-text", "Khai mạc | hall | 5\nBáo cáo của Sở Hà Nội | stttt-ha-noi | 10")
        await page.click("#agenda-save")
        await page.wait_for_selector("#agenda li:has-text('Báo cáo của Sở Hà Nội')")
        await page.click("#agenda-next")
        await page.click("#agenda-next")
        await page.wait_for_selector("#holder[data-site='stttt-ha-noi']")
        assert "còn" in (await page.text_content("#holder") or "")
        conference = server.bridge.conference
        assert conference.program == "stttt-ha-noi" and conference.control.agenda.current == 1
        # every command went with a command id of its own (a retry is made once); reads without
        commands = [(e, p) for e, p, *_ in sent if e in ("floor:request", "agenda:set", "agenda:next")]
        assert len(commands) == 4, sent
        ids = [p["id"] for _, p in commands]  # type: ignore[index]
        assert len(set(ids)) == 4 and all(len(i) == 24 for i in ids)
        assert all("id" not in p for e, p, *_ in sent if e == "state:get" and isinstance(p, dict))
        async with page.expect_download() as download:
            await page.click("#report")
        text = (await (await download.value).path()).read_text(encoding="utf-8-sig")
        assert text.startswith("site_id,site,region") and "stttt-yen-bai" in text
    finally:
        await page.close()
