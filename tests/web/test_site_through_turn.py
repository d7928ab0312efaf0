"""A site page in real Chromium reaches the bridge only through a real coturn, over TCP (as a
department behind a firewall that passes TCP alone would), with the credentials its welcome gave
it, and decodes the program (issue 16)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.web.test_site_page import decodes_the_program

pytestmark = pytest.mark.browser
RELAY_PAIR = """async () => {
  const report = await window.hallbridge.client.pc.getStats();
  const stats = [...report.values()];
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport && report.get(transport.selectedCandidatePairId);
  const local = pair && report.get(pair.localCandidateId);
  return local ? {type: local.candidateType, relayProtocol: local.relayProtocol || null} : null;
}"""


async def test_a_site_joins_through_turn_over_tcp_and_decodes_the_program(
        turn_server: RunningServer, browser: Browser) -> None:
    hall = turn_server.participant(Role.HALL, width=640, height=360, fps=30)
    await hall.connect()
    await hall.join_media()
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        token = turn_server.token(Role.SITE, "stttt-lao-cai")
        await page.goto(f"{turn_server.url}/site.html?ice=relay#token={token}")
        await page.wait_for_selector("#join:visible")
        await page.click("#join")
        await decodes_the_program(page, 30_000)
        pair = await page.evaluate(RELAY_PAIR)
        assert pair == {"type": "relay", "relayProtocol": "tcp"}, pair
    finally:
        await page.close()
        await hall.close()
