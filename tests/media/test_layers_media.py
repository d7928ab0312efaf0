"""Two program layers with real aiortc peers: the hall sends both, a site marked "đường truyền
yếu" decodes the low one — the picture changes size without a gap — and another site keeps the
high one (issue 17)."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest

from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until

pytestmark = pytest.mark.media
POOR, GOOD = "stttt-dien-bien", "stttt-ha-noi"
MAX_GAP_S = 0.5


async def test_a_poor_line_gets_the_low_layer_without_a_gap(server: RunningServer) -> None:
    hall = server.participant(Role.HALL, width=640, height=360, fps=30)
    poor = server.participant(Role.SITE, POOR, width=320, height=180, fps=15)
    good = server.participant(Role.SITE, GOOD, width=320, height=180, fps=15)
    console = server.participant(Role.TECHNICIAN, publish=False)
    try:
        for p in (hall, poor, good):
            await p.connect()
            await p.join_media()
        await console.connect()
        assert await wait_until(lambda: poor.stats.resolution == (640, 360)
                                and good.stats.resolution == (640, 360), 20), "the high layer first"
        assert await wait_until(lambda: hall.low_video is not None and bool(hall.quality)
                                and hall.quality[-1].get("low") is not None, 10), \
            "the hall, on the program, is asked for its low layer"
        marked_at = time.monotonic()
        reply = await console.call("line:set", {"site": POOR, "poor": True})
        assert reply["ok"], reply
        assert await wait_until(lambda: poor.stats.resolution == (320, 180), 5), \
            f"the poor line still decodes {poor.stats.resolution}"
        switched_in = time.monotonic() - marked_at
        t0 = time.monotonic()
        assert await wait_until(lambda: time.monotonic() - t0 > 2.0, 3)
        frames = [t for t in poor.stats.frame_times if t >= marked_at - 1.0]
        gaps = [b - a for a, b in pairwise(frames)]
        assert gaps and max(gaps) < MAX_GAP_S, f"a gap of {max(gaps):.2f} s at the layer change"
        assert set(poor.stats.codes) == {hall.code}, "the low layer is the same source"
        assert poor.stats.unreadable == 0, "no damaged picture at the change"
        assert good.stats.resolution == (640, 360), "the other site stays on the high layer"
        assert poor.stats.audio_frames > 0
        router = server.bridge.hub.router
        assert router.layer_of(POOR)["receiving"] == "low" and router.layer_of(GOOD)["receiving"] == "high"
        print(f"low layer decoded {switched_in * 1000:.0f} ms after the mark;"
              f" max gap {max(gaps) * 1000:.0f} ms")
        # the mark taken off: the site earns the high layer back like any site (REMB and hold)
        reply = await console.call("line:set", {"site": POOR, "poor": False})
        assert reply["ok"] and router.layer_of(POOR)["pinned"] is False
    finally:
        for p in (hall, poor, good, console):
            await p.close()
