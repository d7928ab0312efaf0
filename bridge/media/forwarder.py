"""Pure forwarding decisions: which source's packets go out, and with which numbers.

Per site and slot, `Route` decides forward or drop (video switches only on a keyframe of the new
source), `OutStream` gives the rewritten sequence number and timestamp (continuous across any
number of switches, pauses and resumptions), `History` keeps what a NACK may ask for again,
`Throttle` spaces keyframe requests. Time (`now`, seconds) is passed in; nothing here awaits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
_SEQ_HALF = SEQ_MOD // 2


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number a comes after b (RFC 1982 serial arithmetic, 16 bits)."""
    return a != b and (a - b) % SEQ_MOD < _SEQ_HALF


@dataclass(slots=True)
class OutStream:
    """One site's outbound stream of one kind: its SSRC and continuous numbering."""

    ssrc: int
    payload_type: int
    clock_rate: int
    first_sequence: int = 0
    first_timestamp: int = 0
    source: str | None = None  # None: paused (nothing forwarded since the last pause)
    _source_ssrc: int = 0
    _seq_offset: int = 0
    _ts_offset: int = 0
    _last_seq: int = 0
    _last_ts: int = 0
    _last_time: float = 0.0
    packets: int = 0
    octets: int = 0

    def rewrite(self, source: str, ssrc: int, sequence: int, timestamp: int,
                now: float) -> tuple[int, int]:
        """The site's sequence number and timestamp for a packet of `source` (its stream `ssrc`)."""
        if source != self.source or ssrc != self._source_ssrc:
            self._rebase(source, ssrc, sequence, timestamp, now)
        out_seq = (sequence + self._seq_offset) % SEQ_MOD
        out_ts = (timestamp + self._ts_offset) % TS_MOD
        if 0 < (out_seq - self._last_seq) % SEQ_MOD < _SEQ_HALF or self.packets == 0:  # newer
            self._last_seq, self._last_ts, self._last_time = out_seq, out_ts, now
        self.packets += 1
        return out_seq, out_ts

    def pause(self) -> None:
        """The slot stops forwarding: the next packet, of whatever source (the same one resuming
        too), continues from the last number sent, so the site sees no gap it could not repair."""
        self.source = None

    def _rebase(self, source: str, ssrc: int, sequence: int, timestamp: int, now: float) -> None:
        if self.packets == 0:
            next_seq, next_ts = self.first_sequence, self.first_timestamp
        else:
            # the new source continues where the old stopped, its clock advanced by the gap
            elapsed_ticks = max(1, round((now - self._last_time) * self.clock_rate))
            next_seq = (self._last_seq + 1) % SEQ_MOD
            next_ts = (self._last_ts + elapsed_ticks) % TS_MOD
        self._seq_offset = (next_seq - sequence) % SEQ_MOD
        self._ts_offset = (next_ts - timestamp) % TS_MOD
        self.source, self._source_ssrc = source, ssrc

    def to_site_timestamp(self, timestamp: int) -> int:
        """A timestamp of the current source in this site's timestamp space (sender reports)."""
        return (timestamp + self._ts_offset) % TS_MOD


@dataclass(slots=True)
class Route:
    """Which source one slot forwards; video switches only on a keyframe of the new source.

    Until that keyframe arrives the old source keeps flowing (no frozen or broken picture).
    """

    needs_keyframe: bool
    current: str | None = None
    pending: str | None = None

    def want(self, source: str | None) -> bool:
        """Choose the slot's source; True when a keyframe must be asked of it now."""
        if source == self.current:
            self.pending = None
            return False
        if source is None or not self.needs_keyframe:
            self.current, self.pending = source, None
            return False
        self.pending = source
        return True

    def admit(self, source: str, keyframe_start: bool) -> bool:
        """Forward this packet of `source`? Completes a pending switch on its keyframe."""
        if source == self.pending and keyframe_start:
            self.current, self.pending = source, None
            return True
        return source == self.current

    def source_gone(self, source: str) -> None:
        if source == self.pending:
            self.pending = None
        if source == self.current:
            self.current = None


class History(Generic[T]):
    """The last `size` packets of one outbound stream by sequence number (NACK service)."""

    __slots__ = ("_items", "_sequences", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._sequences: list[int] = [-1] * size
        self._items: list[T | None] = [None] * size

    def put(self, sequence: int, item: T) -> None:
        i = sequence % self._size
        self._sequences[i] = sequence
        self._items[i] = item

    def get(self, sequence: int) -> T | None:
        i = sequence % self._size
        return self._items[i] if self._sequences[i] == sequence else None


@dataclass(slots=True)
class Throttle:
    """At most one event per interval (e.g. PLI upstream for many downstream requests)."""

    interval_s: float
    _last: float = float("-inf")

    def allow(self, now: float) -> bool:
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True
