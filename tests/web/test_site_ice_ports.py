"""A server whose media sockets bind every interface within a fixed UDP range and announce one
address (ice.host_addresses ["0.0.0.0"], ice.announce_addresses, ice.port_range: the set-up of a
cloud server behind 1:1 NAT with a firewall that opens one range). Real Chromium joins and decodes
the program through the announced address and a port of the range (issue 16)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from playwright.async_api import Browser

from bridge.roles import Role
from signaling.settings import Settings
from tests.conftest import RunningServer, running
from tests.web.test_site_page import decodes_the_program

pytestmark = pytest.mark.browser
FIRST, LAST = 47100, 47163
SERVER_SIDE = """async () => {
  const report = await window.hallbridge.client.pc.getStats();
  const transport = [...report.values()].find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport && report.get(transport.selectedCandidatePairId);
  const remote = pair && report.get(pair.remoteCandidateId);
  return remote ? {address: remote.address || remote.ip, port: remote.port} : null;
}"""


@pytest.fixture
async def announcing(settings: Settings) -> AsyncIterator[RunningServer]:
    ice = replace(settings.ice, host_addresses=["0.0.0.0"], announce_addresses=["127.0.0.1"],
                  port_range=f"{FIRST}-{LAST}")
    async with running(replace(settings, ice=ice)) as server:
        yield server


async def test_a_site_reaches_the_announced_address_on_a_port_of_the_range(
        announcing: RunningServer, browser: Browser) -> None:
    hall = announcing.participant(Role.HALL, width=640, height=360, fps=30)
    await hall.connect()
    await hall.join_media()
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        token = announcing.token(Role.SITE, "stttt-ca-mau")
        await page.goto(f"{announcing.url}/site.html#token={token}")
        await page.wait_for_selector("#join:visible")
        await page.click("#join")
        await decodes_the_program(page)
        server_side = await page.evaluate(SERVER_SIDE)
        assert server_side["address"] == "127.0.0.1", server_side  # not the bound 0.0.0.0
        assert FIRST <= server_side["port"] <= LAST, server_side
    finally:
        await page.close()
        await hall.close()
