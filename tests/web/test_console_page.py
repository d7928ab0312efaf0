"""The technician console in real Chromium: every site, who is live, thumbnails, meters, health."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from bridge.roles import Role
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser
SITES = ["bo-tttt", "stttt-ha-noi", "stttt-nghe-an", "stttt-can-tho"]
THUMB_PLAYING = """(site) => {
  const v = document.querySelector(`.tile[data-site='${site}'] video`);
  return v && v.readyState >= 2 && v.videoWidth === 320 && !v.paused;
}"""


async def test_console_shows_every_site_live_with_thumbnail_meter_and_health(
    server: RunningServer, browser: Browser, artifacts: Path
) -> None:
    hall = server.participant(Role.HALL)
    sites = [server.participant(Role.SITE, s, width=320, height=180, fps=15) for s in SITES]
    page = await browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        await page.goto(f"{server.url}/console.html#token={server.token(Role.TECHNICIAN)}")
        await page.wait_for_selector(".tile[data-site='stttt-ca-mau']")
        assert await page.locator(".tile").count() == 66, "one tile per bridge point"
        await page.wait_for_selector("#summary[data-live='0']")
        for p in [hall, *sites]:
            await p.connect()
            await p.join_media()
        await page.wait_for_selector(f"#summary[data-live='{len(SITES)}']", timeout=15_000)
        assert await page.text_content("#summary") == f"Trực tuyến {len(SITES)}/66"
        for site_id in SITES:
            tile = page.locator(f".tile[data-site='{site_id}']")
            assert await tile.get_attribute("data-presence") == "live"
            await page.wait_for_function(THUMB_PLAYING, arg=site_id, timeout=10_000)
        levels = set()
        for _ in range(6):  # the meter follows the site's sound
            await page.wait_for_timeout(300)
            levels.add(await page.get_attribute(f".tile[data-site='{SITES[1]}']", "data-level"))
        assert levels - {"-127", None}, f"meter never moved: {levels}"
        net = page.locator(f".tile[data-site='{SITES[1]}'] .net")
        # a live site is never "lost"; "good" or "poor" is the jitter of this (possibly loaded)
        # machine's loopback (the thresholds are tested in tests/bridge/test_stats.py)
        assert await net.get_attribute("data-health") in ("good", "poor")
        assert "RTT" in (await net.get_attribute("title") or "")
        offline = page.locator(".tile[data-site='stttt-ca-mau']")
        assert await offline.get_attribute("data-presence") == "offline"
        assert "Chưa vào" in (await offline.text_content() or "")
        assert "Tắt tiếng" in (await page.locator(f".tile[data-site='{SITES[2]}']").text_content() or "")
        await page.wait_for_function("() => document.getElementById('program').videoWidth === 640")
        await page.screenshot(path=str(artifacts / "console-page.png"))

        await sites[0].close()  # a site leaves: the console shows it at once
        await page.wait_for_selector(f"#summary[data-live='{len(SITES) - 1}']", timeout=10_000)
        await page.click("#lang")  # English on demand
        assert await page.text_content("#summary") == f"Live {len(SITES) - 1}/66"
        await page.click(f".tile[data-site='{SITES[1]}'] [data-act=pin]")
        await page.wait_for_function(f"() => window.hallbridge.client.state.program === '{SITES[1]}'")
        assert server.bridge.conference.program == SITES[1]
    finally:
        await page.close()
        for p in [hall, *sites]:
            await p.close()
