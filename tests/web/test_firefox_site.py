"""A site in real Firefox ESR (Debian's firefox-esr over WebDriver BiDi, fake camera and tone):
it joins, decodes the program, is heard at a site in Chromium when granted the floor, decodes the
hall's slides and, granted, presents its own to the Chromium site (issue 18), and leaves cleanly
(issue 16). The figures (fps, frame size beside the Chromium site's) go to
artifacts/firefox-site.json.

Firefox joins through TURN (a real coturn on 127.0.0.1, over TCP, `?ice=relay`): Firefox ESR
gathers no loopback host candidate (`media.peerconnection.ice.loopback` has no effect in 153
ESR), and the suite addresses loopback only, so its media takes the path of a department behind a
TCP-only firewall; the bridge sees coturn's 127.0.0.1 relay address.

The hall is silent here, so the sound the Chromium site hears once the floor is granted can only
be Firefox's.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.signaling.test_socketio import Client
from tests.web.firefox import FirefoxPage, firefox

pytestmark = pytest.mark.browser
FOX, CHROME = "stttt-quang-ninh", "stttt-can-tho"
PROGRAM = """async () => {
  const c = window.hallbridge && window.hallbridge.client;
  const s = c && c.pc && await c.programStats();
  return s ? {frames: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0}
           : null;
}"""
HEARD = """async () => {
  const c = window.hallbridge.client;
  const out = {};
  for (const slot of ["program-audio", "speaker-audio"]) {
    const s = await c.slotStats(slot);
    out[slot] = s ? {energy: s.totalAudioEnergy || 0, level: s.audioLevel || 0,
                     packets: s.packetsReceived || 0} : null;
  }
  return out;
}"""
DECODING = f"async () => {{ const s = await ({PROGRAM})(); return s && s.frames > 10; }}"
CONTENT = PROGRAM.replace("programStats", "contentStats")
CONTENT_DECODING = f"async () => {{ const s = await ({CONTENT})(); return s && s.frames > 3; }}"
SLIDE = 3101
# Firefox presents a 1280x720 canvas that keeps changing (its page's share path, without the
# screen picker, which needs a user's choice in Firefox)
FOX_PRESENTS = """() => {
  const c = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
  const g = c.getContext('2d');
  let n = 0;
  setInterval(() => { g.fillStyle = `hsl(${(n += 7) % 360} 60% 40%)`; g.fillRect(0, 0, 1280, 720); }, 100);
  window.hallbridge.share(c.captureStream(10).getVideoTracks()[0], 'screen');
  return true;
}"""
RELAY_PAIR = """async () => {
  const report = await window.hallbridge.client.pc.getStats();
  const pair = [...report.values()].find((s) => s.type === "candidate-pair" && s.selected);
  const local = pair && report.get(pair.localCandidateId);
  return local ? {type: local.candidateType, relayProtocol: local.relayProtocol || null} : null;
}"""
JOIN_VISIBLE = "() => { const b = document.getElementById('join'); return !!b && b.offsetParent !== null; }"


async def rate(sample: Any, seconds: float = 3.0) -> dict[str, float]:
    first, t0 = await sample(), time.monotonic()
    await asyncio.sleep(seconds)
    later, t1 = await sample(), time.monotonic()
    return {"fps": round((later["frames"] - first["frames"]) / (t1 - t0), 1),
            "width": later["width"], "height": later["height"]}


async def energy(page: Page) -> float:
    heard = await page.evaluate(HEARD)
    return sum(s["energy"] for s in heard.values() if s)


async def open_chromium_site(browser: Browser, server: RunningServer) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await page.goto(f"{server.url}/site.html#token={server.token(Role.SITE, CHROME)}")
    await page.click("#join")
    await page.wait_for_function(DECODING, timeout=30_000, polling=250)
    return page


async def test_a_firefox_site_decodes_is_heard_and_leaves(
        turn_server: RunningServer, browser: Browser, artifacts: Path) -> None:
    hall = turn_server.participant(Role.HALL, width=640, height=360, fps=30)
    await hall.connect()
    await hall.join_media()
    assert hall.audio is not None
    hall.audio.pattern = "silence"
    moderator = Client(turn_server.url)
    await moderator.connect(turn_server.token(Role.MODERATOR))
    chrome = await open_chromium_site(browser, turn_server)
    try:
        async with firefox() as fox:
            page: FirefoxPage = await fox.open(
                f"{turn_server.url}/site.html?ice=relay#token={turn_server.token(Role.SITE, FOX)}")
            await page.wait_for(JOIN_VISIBLE, 30)
            await page.click("#join")
            await page.wait_for(DECODING, 30)
            fox_program = await rate(lambda: page.evaluate(PROGRAM))
            chrome_program = await rate(lambda: chrome.evaluate(PROGRAM))
            assert fox_program["fps"] >= 10 and (fox_program["width"], fox_program["height"]) \
                == (640, 360), fox_program
            assert turn_server.bridge.conference.sites[FOX].presence == "live"
            assert await page.evaluate(RELAY_PAIR) == {"type": "relay", "relayProtocol": "tcp"}

            # silent hall: the Chromium site hears (next to) nothing
            quiet_before = await energy(chrome)
            await asyncio.sleep(1.5)
            quiet = await energy(chrome) - quiet_before
            # the floor: Firefox asks from its page, the moderator grants it
            await page.click("#floor")
            await page.wait_for("() => document.querySelector(\"#floor-state[data-position='1']\")"
                                " !== null", 10)
            assert (await moderator.call("floor:grant", {"site": FOX}))["ok"]
            await page.wait_for("() => document.querySelector(\"#mute-state[data-muted='false']\")"
                                " !== null", 10)
            await asyncio.sleep(1.0)  # the switch, and the first packets
            before = await energy(chrome)
            await asyncio.sleep(3.0)
            heard = await energy(chrome) - before
            assert heard > 0.01 and heard > 20 * quiet, (quiet, heard, await chrome.evaluate(HEARD))
            # a presentation: Firefox decodes the hall's slide on its content line, then, granted,
            # presents a canvas of its own that the Chromium site decodes
            hall.present(SLIDE, 640, 360, 5)
            assert (await hall.call("present:start", {"source": "screen"}))["ok"]
            await page.wait_for(CONTENT_DECODING, 15)
            await page.wait_for("() => !document.getElementById('content').hidden", 5)
            await page.screenshot(artifacts / "firefox-site-1280x720.png")
            assert (await moderator.call("present:revoke", {"site": "hall"}))["ok"]
            hall.stop_presenting()
            assert (await moderator.call("present:grant", {"site": FOX}))["ok"]
            await page.wait_for("() => !document.getElementById('share').hidden", 10)
            await page.evaluate(FOX_PRESENTS)
            await page.wait_for("() => document.querySelector(\"#share[data-presenting='screen']\")"
                                " !== null", 10)
            await chrome.wait_for_function(CONTENT_DECODING, timeout=15_000, polling=250)
            await chrome.wait_for_function("() => !document.getElementById('content').hidden",
                                           timeout=5_000)
            assert turn_server.bridge.conference.control.content.presenter == FOX
            fox_content = await rate(lambda: chrome.evaluate(CONTENT))
            assert fox_content["fps"] > 2 and fox_content["width"] == 1280, fox_content

            # leaving: closing the page lets the site go at once (its socket closes)
            await page.close()
            end = time.monotonic() + 15
            while turn_server.bridge.conference.sites[FOX].presence == "live":
                assert time.monotonic() < end, "the Firefox site still live 15 s after leaving"
                await asyncio.sleep(0.2)
            version = fox.version
        (artifacts / "firefox-site.json").write_text(json.dumps({
            "firefox": version, "firefox_program": fox_program,
            "chromium_program": chrome_program, "silent_hall_energy_1_5s": quiet,
            "heard_energy_3s": heard, "firefox_content_at_chromium": fox_content}, indent=2))
    finally:
        await chrome.close()
        await moderator.sio.disconnect()
        await hall.close()


CONSOLE_SITES = ["stttt-ha-noi", "stttt-nghe-an"]
THUMBS_PLAYING = "() => " + json.dumps(CONSOLE_SITES) + """.every((site) => {
  const v = document.querySelector(`.tile[data-site='${site}'] video`);
  return v && v.readyState >= 2 && v.videoWidth === 320 && !v.paused;
})"""


async def test_the_console_in_firefox_shows_live_sites_thumbnails_and_program(
        turn_server: RunningServer, artifacts: Path) -> None:
    hall = turn_server.participant(Role.HALL, width=640, height=360, fps=30)
    sites = [turn_server.participant(Role.SITE, s, width=320, height=180, fps=15) for s in CONSOLE_SITES]
    try:
        for p in [hall, *sites]:
            await p.connect()
            await p.join_media()
        async with firefox() as fox:
            page = await fox.open(f"{turn_server.url}/console.html?ice=relay#token="
                                  f"{turn_server.token(Role.TECHNICIAN)}", 1920, 1080)
            await page.wait_for("() => document.querySelectorAll('.tile').length === 66", 30)
            live = len(CONSOLE_SITES)  # the remote sites (the hall has its own tile row)
            await page.wait_for(f"() => document.querySelector(\"#summary[data-live='{live}']\")"
                                " !== null", 30)
            await page.wait_for(THUMBS_PLAYING, 30)
            await page.wait_for("() => document.getElementById('program').videoWidth === 640", 30)
            assert await page.evaluate(RELAY_PAIR) == {"type": "relay", "relayProtocol": "tcp"}
            await page.screenshot(artifacts / "firefox-console-1920x1080.png")
            await page.close()
    finally:
        for p in [hall, *sites]:
            await p.close()
