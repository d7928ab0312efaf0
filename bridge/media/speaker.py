"""Dominant speaker identification from RFC 6464 audio levels, after Volfin & Cohen (2013).

"Dominant speaker identification for multipoint videoconferencing" (Computer Speech and
Language 27): speech activity is scored over three time scales and the dominant speaker changes
only when a challenger beats it on all three, decided on a fixed tick. Our adaptation to the one
level per 20 ms packet that browsers send (no spectrum, no decoding):

- a frame is *active* when its level stands `margin_db` above the site's own noise floor (tracked:
  falls at once, rises slowly), so a noisy room is not a talking room;
- immediate: active frames among the last `immediate_frames`;
- medium: active sub-blocks (`medium_block_frames` frames, at least `medium_block_active` active)
  among the last `medium_blocks` — a cough or a slammed door fills a few, speech fills most;
- long: active medium-length blocks among the last `long_blocks` — who has been talking lately;
- each count k of n becomes a score log C(n,k) + k·log p + (n−k)·log(1−p) + λ·k (the paper's
  binomial speech likelihood with an exponential prior), and a challenger takes over when its
  three scores exceed the dominant's by `c1`, `c2` and `c3`.
Pure: levels and `now` in, decisions out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SpeakerParams:
    tick_s: float = 0.3  # how often the decision is taken
    margin_db: float = 8.0  # above the noise floor, a frame counts as speech
    floor_rise_db_s: float = 4.0  # how fast the noise floor follows a louder room
    immediate_frames: int = 10  # 200 ms
    medium_block_frames: int = 5  # 100 ms sub-blocks...
    medium_block_active: int = 2  # ...active when 2 of their 5 frames are
    medium_blocks: int = 6  # ...over 600 ms
    long_block_frames: int = 25  # 500 ms blocks...
    long_block_active: int = 12  # ...active when half their frames are
    long_blocks: int = 6  # ...over 3 s
    p: float = 0.5
    lambdas: tuple[float, float, float] = (0.78, 24.0, 47.0)  # weight of activity per scale
    c1: float = 3.0
    c2: float = 2.0
    c3: float = -150.0  # a silent dominant speaker's recent past keeps it ~1 s, not longer
    idle_s: float = 3600.0  # forget a source not heard for this long


def score(k: int, n: int, p: float, lam: float) -> float:
    """Speech activity score of k active units out of n (Volfin & Cohen, eq. 8 in spirit)."""
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log(1 - p) + lam * k)


@dataclass(slots=True)
class _Source:
    params: SpeakerParams
    floor_db: float | None = None  # the room's noise floor, from the first level on
    frames: deque[bool] = field(default_factory=deque)
    last_at: float = 0.0
    last_level_db: float = -127.0
    peak_db: float = -127.0  # loudest since the meter last read it

    def add(self, level: int, dt: float) -> None:
        loud = -float(level)  # RFC 6464: 0 is the loudest, 127 silence (-dBov)
        self.last_level_db = loud
        self.peak_db = max(self.peak_db, loud)
        floor = loud if self.floor_db is None or loud < self.floor_db else (
            self.floor_db + self.params.floor_rise_db_s * dt)
        self.floor_db = floor
        active = loud - floor >= self.params.margin_db
        self.frames.append(active)
        keep = self.params.long_blocks * self.params.long_block_frames
        while len(self.frames) > keep:
            self.frames.popleft()

    def scores(self) -> tuple[float, float, float]:
        prm, frames = self.params, list(self.frames)
        lam1, lam2, lam3 = prm.lambdas
        recent = frames[-prm.immediate_frames :]
        k1 = sum(recent)
        k2 = _blocks(frames, prm.medium_block_frames, prm.medium_block_active, prm.medium_blocks)
        k3 = _blocks(frames, prm.long_block_frames, prm.long_block_active, prm.long_blocks)
        return (score(k1, prm.immediate_frames, prm.p, lam1),
                score(k2, prm.medium_blocks, prm.p, lam2),
                score(k3, prm.long_blocks, prm.p, lam3))


def _blocks(frames: list[bool], size: int, needed: int, count: int) -> int:
    """Active blocks of `size` frames (newest first) among the last `count` blocks."""
    active = 0
    end = len(frames)
    for _ in range(count):
        start = end - size
        if start < 0:
            break
        if sum(frames[start:end]) >= needed:
            active += 1
        end = start
    return active


class DominantSpeaker:
    """Feed `level()` with every audio level; `decide()` on the tick gives the dominant source."""

    def __init__(self, params: SpeakerParams | None = None) -> None:
        self.params = params or SpeakerParams()
        self.dominant: str | None = None
        self._sources: dict[str, _Source] = {}
        self._last_decision = -math.inf

    def level(self, source: str, level: int, now: float) -> None:
        src = self._sources.get(source)
        if src is None:
            src = self._sources[source] = _Source(self.params, last_at=now)
        dt = max(0.0, min(1.0, now - src.last_at))
        src.last_at = now
        src.add(max(0, min(127, level)), dt)

    def silence(self, source: str, now: float) -> None:
        """A source that stopped sending (muted, left) is a silent source."""
        if source in self._sources:
            self._sources[source].frames.clear()

    def forget(self, source: str) -> None:
        self._sources.pop(source, None)
        if self.dominant == source:
            self.dominant = None

    def loudness(self, source: str) -> float:
        """The source's loudest level since the last call, in dBov (-127: silent or unknown):
        a peak meter, so a short sound between two reads still shows."""
        src = self._sources.get(source)
        if src is None:
            return -127.0
        peak, src.peak_db = src.peak_db, -127.0
        return peak

    def due(self, now: float) -> bool:
        return now - self._last_decision >= self.params.tick_s

    def decide(self, now: float, candidates: set[str] | None = None) -> str | None:
        """The dominant speaker now (among `candidates`, e.g. the unmuted sources)."""
        self._last_decision = now
        prm = self.params
        for name in [n for n, s in self._sources.items() if now - s.last_at > prm.idle_s]:
            self.forget(name)
        pool = {n: s for n, s in self._sources.items() if candidates is None or n in candidates}
        if not pool:
            return self.dominant
        if self.dominant not in pool:
            # nobody holds it (or they left the pool): the most active long-term speaker, if any
            best = max(pool, key=lambda n: pool[n].scores())
            if sum(pool[best].frames) > 0:
                self.dominant = best
            return self.dominant
        current = pool[self.dominant].scores()
        best_name, best_margin = None, -math.inf
        for name, src in pool.items():
            if name == self.dominant:
                continue
            s1, s2, s3 = src.scores()
            d1, d2, d3 = s1 - current[0], s2 - current[1], s3 - current[2]
            if d1 > prm.c1 and d2 > prm.c2 and d3 > prm.c3 and d2 > best_margin:
                best_name, best_margin = name, d2
        if best_name is not None:
            self.dominant = best_name
        return self.dominant
