"""Feed pre-encoded clip packets to aiortc senders: one pacing task, a bounded queue per track."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import time

import av
from aiortc.mediastreams import MediaStreamTrack

from bench.clip import FPS, Clip

QUEUE = 8  # packets per track; a slow sender loses the oldest, it never grows


class ClipTrack(MediaStreamTrack):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.Packet] = asyncio.Queue(QUEUE)
        self.paused = False  # a muted site's microphone: nothing is sent (as the site page does)

    def offer(self, packet: av.Packet) -> None:
        if self.paused:
            return
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(packet)

    async def recv(self) -> av.Packet:
        return await self.queue.get()


class ClipSource:
    """Loops the clip in real time to every subscribed track (the same packet objects)."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.tracks: set[ClipTrack] = set()
        self._task: asyncio.Task[None] | None = None
        self._keyframe_wanted = False
        self._keyframes = [i for i, (_, key) in enumerate(clip.video) if key]

    def request_keyframe(self) -> None:
        """A receiver lost the picture (PLI): the next frame is the clip's next keyframe."""
        self._keyframe_wanted = True

    def answer_pli(self, sender: object) -> None:
        """Route an aiortc sender's keyframe requests here (pre-encoded packets: aiortc's own
        answer only affects encoders)."""
        sender._send_keyframe = self.request_keyframe  # type: ignore[attr-defined]

    def track(self, kind: str) -> ClipTrack:
        t = ClipTrack(kind)
        self.tracks.add(t)
        return t

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        start = time.monotonic()
        audio = itertools.cycle(self.clip.audio)
        next_video = next_audio = 0.0
        vi = ai = 0
        frame = 0
        while True:
            now = time.monotonic() - start
            while next_video <= now:
                if self._keyframe_wanted:
                    self._keyframe_wanted = False
                    frame = next((k for k in self._keyframes if k >= frame), self._keyframes[0])
                data, key = self.clip.video[frame % len(self.clip.video)]
                frame = (frame + 1) % len(self.clip.video)
                self._send("video", data, vi, fractions.Fraction(1, FPS), key)
                vi += 1
                next_video = vi / FPS
            while next_audio <= now:
                self._send("audio", next(audio), ai * 960, fractions.Fraction(1, 48000), False)
                ai += 1
                next_audio = ai * 0.02
            await asyncio.sleep(max(0.0, min(next_video, next_audio) - (time.monotonic() - start)))

    def _send(self, kind: str, data: bytes, pts: int, time_base: fractions.Fraction, key: bool) -> None:
        for t in self.tracks:
            if t.kind == kind and t.readyState == "live":
                packet = av.Packet(data)
                packet.pts, packet.time_base = pts, time_base
                packet.is_keyframe = key
                t.offer(packet)
