"""A site joins from the site page in real Chromium and decodes the main hall's program."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from bridge.roles import Role
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

INBOUND_VIDEO = """async () => {
  const s = await window.hallbridge.client.programStats();
  return s ? {frames: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0} : null;
}"""
SELECTED_PAIR = """async () => {
  const report = await window.hallbridge.client.pc.getStats();
  const stats = [...report.values()];
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport && report.get(transport.selectedCandidatePairId);
  const local = pair && report.get(pair.localCandidateId);
  const remote = pair && report.get(pair.remoteCandidateId);
  return {local: local && (local.address || local.ip), remote: remote && (remote.address || remote.ip)};
}"""


async def decoded(page: Page) -> dict[str, int]:
    stats = await page.evaluate(INBOUND_VIDEO)
    return stats or {"frames": 0, "width": 0, "height": 0}


async def decodes_the_program(page: Page, timeout_ms: float = 20_000) -> dict[str, int]:
    """The page's program picture is being decoded, and goes on (over 10 frames a second): its
    last figures."""
    await page.wait_for_function(
        "async () => { const s = await window.hallbridge.client.programStats();"
        " return s && s.framesDecoded > 10; }", timeout=timeout_ms, polling=250)
    first = await decoded(page)
    await page.wait_for_timeout(1500)
    later = await decoded(page)
    assert later["frames"] > first["frames"] + 15, (first, later)
    return later


async def test_site_page_decodes_the_hall_program(
    server: RunningServer, browser: Browser, artifacts: Path
) -> None:
    hall = server.participant(Role.HALL, width=640, height=360, fps=30)
    await hall.connect()
    await hall.join_media()
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        token = server.token(Role.SITE, "stttt-thua-thien-hue")
        await page.goto(f"{server.url}/site.html#token={token}")
        assert "token=" not in page.url, "the token must leave the address bar"
        await page.wait_for_selector("#join:visible")  # the pre-flight check comes first
        await page.wait_for_function(
            "() => document.getElementById('net-check').textContent.startsWith('OK')")
        await page.click("#join")
        later = await decodes_the_program(page)
        assert (later["width"], later["height"]) == (640, 360)
        pair = await page.evaluate(SELECTED_PAIR)
        for side in ("local", "remote"):
            assert ipaddress.ip_address(pair[side]).is_loopback, pair
        # the answer asks the browser for Opus in-band FEC on every audio m-line it sends on
        answer = await page.evaluate("() => window.hallbridge.client.pc.remoteDescription.sdp")
        opus = re.findall(r"a=rtpmap:(\d+) opus/48000/2", answer)
        assert opus and all(re.search(rf"a=fmtp:{pt} .*useinbandfec=1", answer) for pt in opus), answer
        status = server.bridge.conference.sites["stttt-thua-thien-hue"]
        assert status.presence == "live"
        await page.screenshot(path=str(artifacts / "site-page.png"))
    finally:
        await page.close()
        await hall.close()
