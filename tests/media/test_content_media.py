"""The content slot with real aiortc peers (issue 18): the hall presents slides beside its camera,
every site decodes the slide on `content` while `program-video` keeps the speaker, a late joiner
gets the current slide at once, a revoke ends it, and a granted site takes over on the same slot;
a recording holds the slides as a second video track."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import av
import pytest

from bench.sim.simulate import SimulatedParticipant
from bench.sim.synthetic import read_code
from bridge.roles import Role
from signaling.settings import Settings
from tests.conftest import RunningServer, running
from tests.media.helpers import wait_until

pytestmark = pytest.mark.media
SITE, LATE, GRANTED = "stttt-ha-noi", "stttt-can-tho", "stttt-da-nang"
SLIDE_HALL, SLIDE_SITE = 3001, 3002
LATE_JOINER_S = 2.0  # the bound for a late joiner's first slide


@pytest.fixture
async def content_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running(replace(settings, media=replace(settings.media, content=True))) as server:
        yield server


def slides(p: SimulatedParticipant) -> set[int]:
    return set(p.slots["content"].codes)


async def test_slides_reach_every_site_beside_the_speaker_and_stop_on_revoke(
        content_server: RunningServer) -> None:
    server = content_server
    hall = server.participant(Role.HALL, width=320, height=180, fps=15)
    site = server.participant(Role.SITE, SITE, width=320, height=180, fps=15)
    granted = server.participant(Role.SITE, GRANTED, width=320, height=180, fps=15)
    moderator = server.participant(Role.MODERATOR, publish=False)
    late: SimulatedParticipant | None = None
    try:
        for p in (hall, site, granted):
            await p.connect()
            await p.join_media()
        await moderator.connect()
        assert "content" in [line["slot"] for line in site.welcome["media"]["lines"]]  # type: ignore[index]
        assert await wait_until(lambda: site.stats.last_code == hall.code, 20), "the hall on the program"

        hall.present(SLIDE_HALL, 640, 360, 5)
        reply = await hall.call("present:start", {"source": "screen"})
        assert reply["ok"], reply
        assert await wait_until(lambda: site.slots["content"].last_code == SLIDE_HALL, 10), \
            f"the site decodes {slides(site)} on the content slot"
        assert site.stats.last_code == hall.code, "the program still shows the speaker"
        assert site.slots["content"].resolution == (640, 360)
        assert not hall.slots["content"].video_frames, "the presenter is not sent its own slides"

        late = server.participant(Role.SITE, LATE, width=320, height=180, fps=15, publish=False)
        await late.connect()
        joined = time.monotonic()
        await late.join_media()
        assert await wait_until(lambda: late.slots["content"].last_code == SLIDE_HALL, 10), \
            "the late joiner decodes the current slide"
        first = late.slots["content"].code_frames[0][0] - joined
        assert first < LATE_JOINER_S * 3, f"the late joiner's first slide after {first:.2f} s"

        # a site that was not granted is refused; granted, it takes over once the hall stops
        granted.present(SLIDE_SITE, 640, 360, 5)
        refused = await granted.call("present:start", {"source": "screen"})
        assert refused["error"]["code"] == "forbidden", refused
        assert (await moderator.call("present:grant", {"site": GRANTED}))["ok"]
        busy = await granted.call("present:start", {"source": "screen"})
        assert busy["error"]["code"] == "conflict", busy
        assert (await moderator.call("present:revoke", {"site": server.bridge.roster.hall.id}))["ok"]
        revoked = time.monotonic()
        count = site.slots["content"].video_frames
        assert await wait_until(lambda: time.monotonic() - revoked > 1.0, 2)
        stopped = site.slots["content"].video_frames
        assert await wait_until(lambda: time.monotonic() - revoked > 2.0, 2)
        assert site.slots["content"].video_frames - stopped <= 1, \
            f"slides still arrive after the revoke ({count}, {stopped}, {site.slots['content'].video_frames})"
        hall.stop_presenting()

        assert (await granted.call("present:start", {"source": "screen"}))["ok"]
        before = len(site.slots["content"].code_frames)
        assert await wait_until(lambda: site.slots["content"].last_code == SLIDE_SITE
                                and hall.slots["content"].last_code == SLIDE_SITE, 10), \
            f"site {slides(site)}, hall {slides(hall)}: the granted site's slides"
        assert site.slots["content"].unreadable == 0, "no damaged slide at the change of presenter"
        assert len(site.slots["content"].code_frames) > before
        assert server.bridge.conference.control.content.presenter == GRANTED
    finally:
        for p in (hall, site, granted, moderator, *([late] if late else [])):
            await p.close()


async def test_a_recording_holds_the_slides_as_a_second_video_track(content_server: RunningServer) -> None:
    server = content_server
    hall = server.participant(Role.HALL, width=320, height=180, fps=15)
    tech = server.participant(Role.TECHNICIAN, publish=False)
    try:
        await hall.connect()
        await hall.join_media()
        await tech.connect()
        started = await tech.call("record:start", {})
        assert started["ok"], started
        assert await wait_until(lambda: server.bridge.hub.recording is not None
                                and server.bridge.hub.recording.dropped == 0, 5)
        await asyncio.sleep(1.0)
        hall.present(SLIDE_HALL, 640, 360, 5)
        assert (await hall.call("present:start", {"source": "camera"}))["ok"]
        await asyncio.sleep(2.5)
        stopped = await tech.call("record:stop", {})
        assert stopped["ok"] and stopped["content_frames"] >= 5, stopped
    finally:
        for p in (hall, tech):
            await p.close()
    path = Path(server.settings.recording_dir()) / started["file"]
    with av.open(str(path)) as container:
        videos = container.streams.video
        assert [v.metadata.get("title") for v in videos] == ["program", "content"]
        assert all(v.codec_context.name == "vp8" for v in videos)
        program = [read_code(f.to_ndarray(format="gray")) for f in container.decode(videos[0])]
    with av.open(str(path)) as container:
        frames = list(container.decode(container.streams.video[1]))
    codes = [read_code(f.to_ndarray(format="gray")) for f in frames]
    assert set(program) == {hall.code}, "the program track is the hall's camera"
    assert len(codes) >= 5 and set(codes) == {SLIDE_HALL}, f"the content track's slides: {codes}"
    assert (frames[0].width, frames[0].height) == (640, 360), "the slides at their own size"
