"""Synthetic camera and microphone for simulated participants.

Each picture carries the participant's name, a moving bar, and a 12-bit identity code in a strip
along the top edge, so a receiver can tell which source it is decoding (`read_code`).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import wave
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack
from PIL import Image, ImageDraw, ImageFont

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms
CODE_BITS = 12
_COLUMNS = 16  # guard white, guard black, 12 code bits, 2 spare
_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _font(size: int) -> Any:
    try:
        return ImageFont.truetype(_FONT, size)
    except OSError:
        return ImageFont.load_default(size)


def render_card(name: str, code: int, width: int, height: int) -> np.ndarray:
    """The still picture (yuv420p planes stacked, shape (h*3/2, w)) for one participant."""
    hue = (code * 47) % 360
    img = Image.new("RGB", (width, height), f"hsl({hue}, 45%, 30%)")
    draw = ImageDraw.Draw(img)
    font = _font(max(12, height // 12))
    draw.multiline_text((width // 20, height // 3), _wrap(name, 28), fill="white", font=font,
                        spacing=6)
    rgb = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")
    yuv: np.ndarray = rgb.reformat(format="yuv420p").to_ndarray()
    _draw_code(yuv[:height], code)
    return yuv


def _wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def _code_cells(width: int, height: int) -> list[tuple[slice, slice]]:
    cell_w, cell_h = width // _COLUMNS, max(8, height // 12)
    return [(slice(0, cell_h), slice(i * cell_w, (i + 1) * cell_w)) for i in range(_COLUMNS)]


def _draw_code(luma: np.ndarray, code: int) -> None:
    cells = _code_cells(luma.shape[1], luma.shape[0])
    values = [235, 16] + [235 if code >> b & 1 else 16 for b in range(CODE_BITS)] + [128, 128]
    for (rows, cols), value in zip(cells, values, strict=True):
        luma[rows, cols] = value


def read_code(luma: np.ndarray) -> int | None:
    """The identity code in a decoded picture's luma plane, or None when the guards are wrong."""
    def bright(rows: slice, cols: slice) -> bool:
        h, w = rows.stop - rows.start, cols.stop - cols.start
        inner = luma[rows.start + h // 4 : rows.stop - h // 4, cols.start + w // 4 : cols.stop - w // 4]
        return float(inner.mean()) > 128

    cells = _code_cells(luma.shape[1], luma.shape[0])
    if not bright(*cells[0]) or bright(*cells[1]):
        return None
    return sum(1 << b for b in range(CODE_BITS) if bright(*cells[2 + b]))


# read_code for a page: the code in the picture drawn on a 2D canvas context `g` (width x height),
# or null. Its cells are the strip's on a 16-column grid, as the pages' canvases and cards draw it.
STRIP_CODE_JS = """(g, width, height) => {
  const cw = Math.floor(width / 16), ch = Math.max(8, Math.floor(height / 12));
  const bright = (i) => {
    const d = g.getImageData(i * cw + cw / 4, ch / 4, cw / 2, ch / 2).data;
    let sum = 0;
    for (let k = 0; k < d.length; k += 4) sum += 0.299 * d[k] + 0.587 * d[k + 1] + 0.114 * d[k + 2];
    return sum / (d.length / 4) > 128;
  };
  if (!bright(0) || bright(1)) return null;
  let code = 0;
  for (let b = 0; b < 12; b++) if (bright(2 + b)) code |= 1 << b;
  return code;
}"""


class SyntheticVideo(MediaStreamTrack):
    kind = "video"

    def __init__(self, name: str, code: int, width: int = 640, height: int = 360,
                 fps: int = 30) -> None:
        super().__init__()
        self._name, self._code = name, code
        self._start: float | None = None
        self._due = 0.0
        self._index = 0
        self._active = asyncio.Event()
        self._active.set()
        self.set_format(width, height, fps)

    def set_active(self, active: bool) -> None:
        """Stop or resume sending pictures (a browser's encoding set inactive, or active again)."""
        if active:
            self._active.set()
        else:
            self._active.clear()

    def set_format(self, width: int, height: int, fps: int) -> None:
        """Send another size or frame rate from the next frame on (as a camera reconfigured)."""
        width, height = max(32, width - width % 2), max(32, height - height % 2)
        self._card = render_card(self._name, self._code, width, height)
        self.width, self.height, self.fps = width, height, max(1, fps)

    async def recv(self) -> av.VideoFrame:
        if not self._active.is_set():
            await self._active.wait()
            self._due = time.monotonic()  # the clock went on while it sent nothing
        now = time.monotonic()
        if self._start is None:
            self._start = self._due = now
        await asyncio.sleep(max(0.0, self._due - now))
        yuv = self._card.copy()
        bar = (self._index * 4) % self.width  # the moving part: a bar across the lower third
        yuv[self.height * 2 // 3 : self.height * 2 // 3 + 12, bar : bar + 24] = 235
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = int((self._due - self._start) * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._index += 1
        self._due += 1 / self.fps
        return frame


class SyntheticAudio(MediaStreamTrack):
    """A tone (its pitch from the code) shaped by `pattern`:
    "tone" (steady: to a speaker detector, like a hum), "speech" (syllables: 180 ms of sound,
    80 ms of quiet), "silence"; `click()` adds one 200 ms burst (a transient, not speech)."""

    kind = "audio"

    def __init__(self, code: int, level: float = 0.2) -> None:
        super().__init__()
        self.speaking = True
        self.pattern = "tone"
        self._click_frames = 0
        self._freq = 220.0 + 20.0 * (code % 32)
        self._level = level
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * AUDIO_SAMPLES / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = (np.arange(AUDIO_SAMPLES) + self._index * AUDIO_SAMPLES) / AUDIO_RATE
        amp = self._level * 32767 if self.speaking and self._sounding() else 0.0
        if self._click_frames > 0:
            self._click_frames -= 1
            amp = 0.8 * 32767
        samples = (amp * np.sin(2 * math.pi * self._freq * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._index * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._index += 1
        return frame

    def click(self) -> None:
        self._click_frames = 10  # 200 ms

    def _sounding(self) -> bool:
        if self.pattern == "silence":
            return False
        if self.pattern == "speech":
            return self._index % 13 < 9  # 180 ms on, 80 ms off
        return True


# (F1, F2, F3) of a few vowels, Hz: what makes Opus's classifier hear speech
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def _resonate(x: np.ndarray, freq: float, bandwidth: float = 80.0) -> np.ndarray:
    """A two-pole resonator at `freq` (one formant)."""
    r = math.exp(-math.pi * bandwidth / AUDIO_RATE)
    a1, a2, gain = -2 * r * math.cos(2 * math.pi * freq / AUDIO_RATE), r * r, 1 - r
    y = np.empty_like(x)
    y1 = y2 = 0.0
    for i, v in enumerate(x.tolist()):
        out = gain * v - a1 * y1 - a2 * y2
        y[i], y2, y1 = out, y1, out
    return y


def speech_like_wav(path: str, seconds: float = 20.0, seed: int = 1) -> str:
    """A 48 kHz mono WAV of voiced syllables (a glottal pulse train at 100-160 Hz through three
    formants, 0.12-0.3 s each, with pauses), for a browser's fake microphone
    (--use-file-for-fake-audio-capture). Chromium's own fake microphone beeps: its Opus encodes
    that as music (CELT), which has no in-band FEC, so a sound test on a lossy line needs this."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(AUDIO_RATE * seconds))
    pos = 0
    while pos < len(out):
        n = min(len(out) - pos, int(AUDIO_RATE * rng.uniform(0.12, 0.3)))
        if rng.random() < 0.15:  # a pause between words
            pos += int(AUDIO_RATE * rng.uniform(0.2, 0.5))
            continue
        f0 = rng.uniform(100, 160) * (1 + 0.1 * np.sin(np.linspace(0, 3, n)))
        pulses = (np.diff(np.floor(np.cumsum(f0 / AUDIO_RATE)), prepend=0) > 0).astype(float)
        voice = pulses + 0.02 * rng.standard_normal(n)
        for formant in _VOWELS[int(rng.integers(len(_VOWELS)))]:
            voice = _resonate(voice, formant)
        out[pos:pos + n] += voice * np.sin(np.linspace(0, math.pi, n)) ** 0.5
        pos += n
    pcm = (out / max(1e-9, float(np.max(np.abs(out)))) * 0.5 * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes(pcm.tobytes())
    return path
