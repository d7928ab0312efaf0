"""Recording: the program's picture (as forwarded) and the sound sites hear, in one file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest

from bench.sim.synthetic import read_code
from bridge.roles import Role
from tests.conftest import RunningServer
from tests.media.helpers import wait_until

pytestmark = pytest.mark.media


async def test_a_recording_holds_the_programs_video_and_audio(server: RunningServer) -> None:
    hall = server.participant(Role.HALL)
    site = server.participant(Role.SITE, "stttt-kon-tum", width=320, height=180, fps=15)
    tech = server.participant(Role.TECHNICIAN, publish=False)
    try:
        for p in (hall, site):
            await p.connect()
            await p.join_media()
        await tech.connect()
        assert await wait_until(lambda: site.stats.video_frames > 5, 10)
        started = await tech.call("record:start", {})
        assert started["ok"], started
        assert (await tech.call("record:start", {}))["error"]["code"] == "conflict"
        assert server.bridge.conference.recording is not None
        await asyncio.sleep(1.5)
        assert (await tech.call("program:set", {"site": "stttt-kon-tum"}))["ok"]
        await asyncio.sleep(1.5)
        stopped = await tech.call("record:stop", {})
        assert stopped["ok"] and stopped["file"] == started["file"], stopped
        assert server.bridge.conference.recording is None
        refused = await site.call("record:start", {})
        assert refused["error"]["code"] == "forbidden"
    finally:
        for p in (hall, site, tech):
            await p.close()

    path = Path(server.settings.recording_dir()) / started["file"]
    with av.open(str(path)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video", "video"], "program, sound, and the (empty) content track"
        video = container.streams.video[0]
        assert video.metadata.get("title") == "program"
        assert video.codec_context.name == "vp8"
        codes = [read_code(f.to_ndarray(format="gray")) for f in container.decode(video=0)]
    assert len(codes) > 40, "about 3 s of pictures"
    assert codes[0] == hall.code and codes[-1] == site.code, "the hall, then the site on the program"
    assert None not in codes, "every recorded picture decodes cleanly"
    with av.open(str(path)) as container:
        assert not list(container.decode(container.streams.video[1])), "nobody presented"
    with av.open(str(path)) as container:
        audio = list(container.decode(audio=0))
    seconds = sum(f.samples for f in audio) / 48000
    assert seconds > 2.0, f"{seconds:.1f} s of sound"
    loud = max(float(abs(f.to_ndarray()).max()) for f in audio)
    assert loud > 0.05, "the sound sites hear (the tones), not silence"
