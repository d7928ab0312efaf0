"""The playout guard's rule (web/js/protocol.js playoutTarget), in the browser that runs it: a
lossy line raises the picture's playout target to three round trips of repair (bounded), a
lossier window never lowers it, and only a long clean stretch hands it back to the browser."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.conftest import RunningServer

RULE = """async () => {
  const { playoutTarget, PLAYOUT } = await import("/js/protocol.js");
  const steps = [];
  let state = { held: null, cleanWindows: 0 };
  const step = (lossShare, rttMs) => {
    state = playoutTarget(state, { lossShare, rttMs });
    steps.push(state.held);
  };
  step(0, 150);          // clean: the browser's own
  step(0.05, 150);       // 5 % on a 150 ms round trip: 3 x 150 + 60
  step(0.05, 100);       // the round trip looks shorter: still held as high
  step(0.08, 300);       // longer: raised, up to the bound
  for (let i = 0; i < PLAYOUT.cleanWindows - 1; i++) step(0, 300);
  const beforeLast = state.held;
  step(0, 300);          // the last clean window: handed back
  step(0.002, 300);      // a trace of loss stays clean
  step(0.02, 0);         // loss without a measured round trip: nothing to size it by
  return { steps: steps.slice(0, 4), beforeLast, end: steps.slice(-3), max: PLAYOUT.maxMs,
           cleanWindows: PLAYOUT.cleanWindows };
}"""


async def test_the_picture_is_held_for_repair_on_a_lossy_line_and_handed_back(
        server: RunningServer, browser: Browser) -> None:
    page = await browser.new_page()
    try:
        await page.goto(f"{server.url}/site.html")
        got = await page.evaluate(RULE)
    finally:
        await page.close()
    assert got["steps"] == [None, 510, 510, got["max"]], got
    assert got["max"] == 800 and got["cleanWindows"] >= 10, got
    assert got["beforeLast"] == 800, "held through the clean stretch until its last window"
    assert got["end"] == [None, None, None], got
