"""Pure forwarding decisions: which source's packets go out, and with which numbers.

Per site and slot, `Route` decides forward or drop (video switches only on a keyframe of the new
source, or of the new layer of the same source), `OutStream` gives the rewritten sequence number
and timestamp (continuous across any number of switches, pauses and resumptions), `PictureIds`
keeps the VP8 picture ids a site sees increasing across them, `History` keeps what a NACK may ask
for again, `Throttle` spaces keyframe requests. Time (`now`, seconds) is passed in; nothing here
awaits.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S", bound=Hashable)  # what a route points at: the router's (participant, stream) feeds

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

    @property
    def last_sequence(self) -> int:
        """The newest sequence number sent to the site."""
        return self._last_seq

    def to_site_timestamp(self, timestamp: int) -> int:
        """A timestamp of the current source in this site's timestamp space (sender reports)."""
        return (timestamp + self._ts_offset) % TS_MOD


@dataclass(slots=True)
class Route(Generic[S]):
    """Which source one slot forwards; video switches only on a keyframe of the new source.

    Until that keyframe arrives the old source keeps flowing (no frozen or broken picture).
    """

    needs_keyframe: bool
    current: S | None = None
    pending: S | None = None

    def want(self, source: S | None) -> bool:
        """Choose the slot's source; True when a keyframe must be asked of it now."""
        if source == self.current:
            self.pending = None
            return False
        if source is None or not self.needs_keyframe:
            self.current, self.pending = source, None
            return False
        self.pending = source
        return True

    def admit(self, source: S, keyframe_start: bool) -> bool:
        """Forward this packet of `source`? Completes a pending switch on its keyframe."""
        if source == self.pending and keyframe_start:
            self.current, self.pending = source, None
            return True
        return source == self.current

    def source_gone(self, source: S) -> None:
        if source == self.pending:
            self.pending = None
        if source == self.current:
            self.current = None


_PID_MOD = {True: 1 << 15, False: 1 << 7}  # long (15-bit) and short (7-bit) picture ids


@dataclass(slots=True)
class PictureIds:
    """One site's VP8 picture ids and TL0PICIDX: each new source (or layer, or encoder) continues
    from the last one the site was sent, so its decoder never sees pictures go back in time.

    The router keeps each incoming stream's last ids once per packet; a slot only holds offsets
    (zero until its first switch: the common case forwards the source's own numbers)."""

    key: Hashable = None  # the incoming stream the offsets are for
    pid_offset: int = 0
    tl0_offset: int = 0
    long_id: bool = True
    _left: tuple[int | None, int | None] | None = None  # the last ids sent of a stream now gone

    def _last_out(self, last_in: tuple[int | None, int | None] | None
                  ) -> tuple[int | None, int | None] | None:
        if last_in is None or self.key is None:
            return self._left
        return (None if last_in[0] is None else (last_in[0] + self.pid_offset) % _PID_MOD[self.long_id],
                None if last_in[1] is None else (last_in[1] + self.tl0_offset) % 256)

    def stream_gone(self, last_in: tuple[int | None, int | None] | None) -> None:
        """The current stream's publisher left: remember where its numbers got to."""
        self._left, self.key = self._last_out(last_in), None

    def rebase(self, key: Hashable, picture_id: int | None, long_id: bool, tl0_index: int | None,
               last_in: tuple[int | None, int | None] | None) -> None:
        """The first packet of stream `key`; `last_in`: the last ids of the stream before it."""
        mod = _PID_MOD[long_id]
        last = self._last_out(last_in)
        last_pid, last_tl0 = last if last is not None else (None, None)
        self.key, self.long_id, self._left = key, long_id, None
        self.pid_offset = 0 if picture_id is None or last_pid is None else \
            (last_pid + 1 - picture_id) % mod
        self.tl0_offset = 0 if tl0_index is None or last_tl0 is None else \
            (last_tl0 + 1 - tl0_index) % 256

    def out(self, picture_id: int | None, long_id: bool,
            tl0_index: int | None) -> tuple[int | None, int | None]:
        """The site's (picture id, TL0PICIDX) for a packet of the current stream."""
        return (None if picture_id is None else (picture_id + self.pid_offset) % _PID_MOD[long_id],
                None if tl0_index is None else (tl0_index + self.tl0_offset) % 256)


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
