"""Presentations across the pages in real Chromium (issue 18): the hall presents a slide (a canvas
showing a code), a remote site's page shows it large on the content slot while its program picture
(picture-in-picture) still shows the hall's camera; a site that joins late shows the current slide;
the moderator's revoke blanks it everywhere; a site without a grant is refused; once granted it
shares its screen (the browser's screen picker, Chromium's fake screen here) and the hall sees it;
the technician cuts it from the console; the hall presents a capture input (its camera here).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from bridge.roles import Role
from signaling.settings import Settings
from tests.conftest import RunningServer, running
from tests.web.conftest import CHROMIUM, FLAGS, READ_CODE
from tests.web.test_meeting_pages import write_y4m

pytestmark = pytest.mark.browser
A, LATE = "stttt-hai-duong", "stttt-lam-dong"
CODE_HALL, CODE_A = 1234, 2002
SLIDES = (3001, 3002, 3003)
LATE_JOINER_S = 2.0  # the bounds: a late joiner's first slide, a revoke blanking it
REVOKE_S = 1.0

# A slide deck in the page: a 1280x720 canvas whose strip shows the current slide's code, painted
# only when window.slide(code) turns the page — a still slide, like an idle shared screen, makes
# no frames by itself (the late joiner's slide comes from the share path's relay).
SLIDE_DECK = """(code) => {
  const c = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
  const g = c.getContext('2d');
  window.slide = (n) => {
    g.fillStyle = '#203050'; g.fillRect(0, 0, c.width, c.height);
    const cw = Math.floor(c.width / 16), ch = Math.floor(c.height / 12);
    for (let i = 0; i < 16; i++) {
      const on = i === 0 || (i >= 2 && i < 14 && (n >> (i - 2)) & 1);
      g.fillStyle = on ? '#ffffff' : '#000000'; g.fillRect(i * cw, 0, cw, ch);
    }
    g.fillStyle = '#ffffff'; g.font = '64px sans-serif';
    g.fillText('Báo cáo tổng kết — trang ' + n, 80, 360);
  };
  window.deck = c.captureStream(15).getVideoTracks()[0];
  window.slide(code);  // after the capture started: a canvas is captured when it is painted
  return true;
}"""


@pytest.fixture
async def content_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running(replace(settings, media=replace(settings.media, content=True))) as server:
        yield server


@pytest.fixture
async def browsers(tmp_path: Path) -> AsyncIterator[dict[str, Browser]]:
    """The hall's Chromium and the sites', each camera showing its own code."""
    async with async_playwright() as pw:
        launched = {}
        for name, code in (("hall", CODE_HALL), ("sites", CODE_A)):
            y4m = write_y4m(tmp_path / f"{name}.y4m", name, code)
            launched[name] = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=[*FLAGS, f"--use-file-for-fake-video-capture={y4m}"])
        try:
            yield launched
        finally:
            for b in launched.values():
                await b.close()


async def code(page: Page, element: str) -> int | None:
    value = await page.evaluate(READ_CODE, element)
    return None if value is None else int(value)


async def wait_code(page: Page, element: str, wanted: int, timeout_ms: int) -> None:
    await page.wait_for_function(f"() => ({READ_CODE})('{element}') === {wanted}",
                                 timeout=timeout_ms, polling=50)


async def open_site(browser: Browser, server: RunningServer, site: str, width: int = 1366,
                    height: int = 768) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": height})
    await page.goto(f"{server.url}/site.html#token={server.token(Role.SITE, site)}")
    await page.click("#join")
    await page.wait_for_function("() => window.hallbridge.client.pc"
                                 " && window.hallbridge.client.pc.connectionState === 'connected'",
                                 timeout=20_000)
    return page


async def test_slides_beside_the_speaker_late_joiner_revoke_and_a_granted_site(
        content_server: RunningServer, browsers: dict[str, Browser], artifacts: Path) -> None:
    server = content_server
    hall_id = server.bridge.roster.hall.id
    hall = await browsers["hall"].new_page(viewport={"width": 1366, "height": 768})
    pages: list[Page] = [hall]
    try:
        await hall.goto(f"{server.url}/hall.html#token={server.token(Role.HALL)}")
        await hall.wait_for_selector("#share:not([hidden])", timeout=15_000)  # the hall needs no grant
        site = await open_site(browsers["sites"], server, A)
        pages.append(site)
        await wait_code(site, "program", CODE_HALL, 20_000)
        assert await site.is_hidden("#share"), "a site without a grant is offered no share button"

        # the hall presents its slide deck; the site shows it large, the hall's camera beside it
        await hall.evaluate(SLIDE_DECK, SLIDES[0])
        await hall.evaluate("window.hallbridge.share(window.deck, 'screen')")
        await hall.wait_for_selector("#share[data-presenting='screen']", timeout=10_000)
        await wait_code(site, "content", SLIDES[0], 10_000)
        assert await code(site, "program") == CODE_HALL, "the program still shows the speaker"
        assert await site.get_attribute("#content-caption", "data-presenter") == hall_id
        assert await site.is_visible("#content") and await site.is_visible("#swap")
        content_box = await site.locator("#content").bounding_box()
        program_box = await site.locator("#program").bounding_box()
        assert content_box and program_box and program_box["width"] < content_box["width"] / 2, \
            "the content is large, the program picture-in-picture"
        # a slide change reaches the site
        await hall.evaluate(f"window.slide({SLIDES[1]})")
        await wait_code(site, "content", SLIDES[1], 5_000)
        await site.screenshot(path=str(artifacts / "site-page-content-1366x768.png"))
        await site.click("#swap")  # the speaker large, the slide small
        program_box = await site.locator("#program").bounding_box()
        content_box = await site.locator("#content").bounding_box()
        assert content_box and program_box and content_box["width"] < program_box["width"] / 2
        await site.click("#swap")

        # a site that joins late shows the current slide
        late = await open_site(browsers["sites"], server, LATE, 1920, 1080)
        pages.append(late)
        connected = time.monotonic()
        await wait_code(late, "content", SLIDES[1], int(LATE_JOINER_S * 3 * 1000))
        late_s = time.monotonic() - connected
        await late.wait_for_selector("#content:visible", timeout=2_000)
        await late.screenshot(path=str(artifacts / "site-page-content-1920x1080.png"))

        # the moderator revokes: the slide goes everywhere, the hall's share stops
        moderator = await browsers["sites"].new_page(viewport={"width": 1366, "height": 768})
        pages.append(moderator)
        await moderator.goto(f"{server.url}/moderator.html#token={server.token(Role.MODERATOR)}")
        await moderator.wait_for_selector(f"#presenter[data-site='{hall_id}'] button")
        revoked = time.monotonic()
        await moderator.click(f"#presenter[data-site='{hall_id}'] button")
        for page in (site, late):
            await page.wait_for_selector("#content", state="hidden", timeout=int(REVOKE_S * 3 * 1000))
        blank_s = time.monotonic() - revoked
        await hall.wait_for_selector("#share-stop", state="hidden", timeout=5_000)
        assert await hall.evaluate("window.deck.readyState") == "ended", "the hall's share is stopped"
        assert await hall.get_attribute("#share", "data-presenting") == ""

        # a site without a grant is refused forbidden; granted, it shares its screen
        await site.evaluate(SLIDE_DECK, SLIDES[2])
        await site.evaluate("window.hallbridge.share(window.deck, 'screen')")
        await site.wait_for_selector("#share-status:text('forbidden')", timeout=5_000)
        assert server.bridge.conference.control.content.presenter is None
        assert await site.evaluate("window.deck.readyState") == "ended", "a refused share is stopped"
        console = await browsers["hall"].new_page(viewport={"width": 1920, "height": 1080})
        pages.append(console)
        await console.goto(f"{server.url}/console.html#token={server.token(Role.TECHNICIAN)}")
        await console.wait_for_selector(f".tile[data-site='{A}'][data-presence='live']", timeout=15_000)
        await moderator.click(f"#sites li[data-site='{A}'] [data-act=present]")
        await site.wait_for_selector("#share:not([hidden])", timeout=5_000)
        await site.click("#share-screen")  # the browser's own screen picker (Chromium's fake screen)
        await site.wait_for_selector("#share[data-presenting='screen']", timeout=10_000)
        await hall.wait_for_function(
            "async () => { const s = await window.hallbridge.client.contentStats();"
            " return s && s.framesDecoded > 5 && s.frameWidth >= 1280; }", timeout=10_000)
        await hall.wait_for_selector("#content:visible", timeout=5_000)
        assert await hall.get_attribute("#content-caption", "data-presenter") == A
        await late.wait_for_selector(f"#content-caption[data-presenter='{A}'][data-shown='1']", timeout=5_000)
        await moderator.wait_for_selector(f"#presenter[data-site='{A}']")
        # the console: the slide in the program monitor, the presenter's tile marked
        await console.wait_for_selector("#content:visible", timeout=5_000)
        await console.wait_for_selector(f".tile.presenting[data-site='{A}']", timeout=5_000)
        assert await console.locator(".tile.presenting").count() == 1
        await hall.screenshot(path=str(artifacts / "hall-page-content.png"))
        await moderator.evaluate("window.scrollTo(0, 0)")
        await moderator.screenshot(path=str(artifacts / "moderator-page-content.png"))
        await console.screenshot(path=str(artifacts / "console-content.png"))
        assert server.bridge.conference.control.content.presenter == A
        # a wrong screen on air: the technician cuts it; the site's share stops, the hall's slide goes
        await console.click("#content-cut")
        await site.wait_for_selector("#share-stop", state="hidden", timeout=5_000)
        await hall.wait_for_selector("#content", state="hidden", timeout=int(REVOKE_S * 3 * 1000))
        assert server.bridge.conference.control.content.presenter is None

        # the hall presents its second camera / capture input (here its one fake camera, whose
        # picture carries the hall's code): the sites see it on the content slot
        await hall.click("#share-camera")
        await hall.wait_for_selector("#share[data-presenting='camera']", timeout=10_000)
        await wait_code(late, "content", CODE_HALL, 10_000)
        assert server.bridge.conference.control.content.source == "camera"
        print(f"late joiner's first slide {late_s * 1000:.0f} ms after its media connected;"
              f" revoke blanked both sites in {blank_s * 1000:.0f} ms")
        assert late_s < LATE_JOINER_S, f"the late joiner's slide after {late_s:.2f} s"
        assert blank_s < REVOKE_S, f"the revoke blanked the slide after {blank_s:.2f} s"
    finally:
        for page in pages:
            await page.close()
