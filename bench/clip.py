"""A synthetic program clip, encoded once: VP8 at the program's size and bitrate, plus Opus.

Looping pre-encoded packets keeps the source's own cost out of what a benchmark measures.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av
import numpy as np

FPS = 30


@dataclass(frozen=True, slots=True)
class Clip:
    video: list[tuple[bytes, bool]]  # (VP8 frame, keyframe)
    audio: list[bytes]  # 20 ms Opus frames
    width: int
    height: int


def encode_clip(width: int = 1280, height: int = 720, seconds: float = 2.0,
                bitrate: int = 1_500_000) -> Clip:
    frames = int(seconds * FPS)
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.bit_rate = bitrate
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0 : height * 3 // 2, 0:width]
    texture = rng.integers(-6, 7, size=(height * 3 // 2, width))
    base = np.clip(64 + (xx * 128 // width) + (yy * 32 // height) + texture, 16, 235).astype(np.uint8)
    video: list[tuple[bytes, bool]] = []
    for i in range(frames):
        picture = np.roll(base, i * 8, axis=1)  # motion everywhere: a real bitrate
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = i
        if i == frames // 2:
            frame.pict_type = av.video.frame.PictureType.I
        video += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(frame)]
    video += [(bytes(p), bool(p.is_keyframe)) for p in enc.encode(None)]
    return Clip(video, _opus(seconds), width, height)


def _opus(seconds: float) -> list[bytes]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "mono", "s16"
    enc.bit_rate = 32000
    out: list[bytes] = []
    t = np.arange(int(seconds * 48000)) / 48000
    pcm = (0.2 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    for n in range(0, len(pcm) - 959, 960):
        frame = av.AudioFrame.from_ndarray(pcm[n : n + 960].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, n
        out += [bytes(p) for p in enc.encode(frame)]
    return out
