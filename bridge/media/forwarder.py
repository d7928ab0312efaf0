"""Pure forwarding decisions: which source's packets go out, and with which numbers.

`ProgramGate` decides, per media kind, whether a packet of a source is forwarded; video switches
only on a keyframe of the new source. `OutStream` keeps one site's outbound numbering continuous
across any number of switches. Time (`now`, seconds) is passed in; nothing here awaits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    source: str | None = None
    _seq_offset: int = 0
    _ts_offset: int = 0
    _last_seq: int = 0
    _last_ts: int = 0
    _last_time: float = 0.0
    packets: int = 0
    octets: int = 0

    def rewrite(self, source: str, sequence: int, timestamp: int, now: float) -> tuple[int, int]:
        """The site's sequence number and timestamp for a packet of `source`."""
        if source != self.source:
            self._rebase(source, sequence, timestamp, now)
        out_seq = (sequence + self._seq_offset) % SEQ_MOD
        out_ts = (timestamp + self._ts_offset) % TS_MOD
        if self.packets == 0 or seq_newer(out_seq, self._last_seq):
            self._last_seq, self._last_ts, self._last_time = out_seq, out_ts, now
        self.packets += 1
        return out_seq, out_ts

    def _rebase(self, source: str, sequence: int, timestamp: int, now: float) -> None:
        if self.packets == 0:
            next_seq, next_ts = self.first_sequence, self.first_timestamp
        else:
            # the new source continues where the old stopped, its clock advanced by the gap
            elapsed_ticks = max(1, round((now - self._last_time) * self.clock_rate))
            next_seq = (self._last_seq + 1) % SEQ_MOD
            next_ts = (self._last_ts + elapsed_ticks) % TS_MOD
        self._seq_offset = (next_seq - sequence) % SEQ_MOD
        self._ts_offset = (next_ts - timestamp) % TS_MOD
        self.source = source

    def to_site_timestamp(self, timestamp: int) -> int:
        """A timestamp of the current source in this site's timestamp space (sender reports)."""
        return (timestamp + self._ts_offset) % TS_MOD


@dataclass(slots=True)
class ProgramGate:
    """Which source is forwarded for one media kind; video waits for the new source's keyframe."""

    needs_keyframe: bool
    keyframe_interval_s: float
    current: str | None = None
    pending: str | None = None
    _last_request: float = field(default=float("-inf"))

    def set_program(self, source: str | None, now: float) -> str | None:
        """Choose the program source; returns the source to ask for a keyframe now, if any."""
        if source == self.current or not self.needs_keyframe or self.current is None:
            self.current, self.pending = source, None
            if source is not None and self.needs_keyframe:
                return self._request(now)
            return None
        self.pending = source
        self._last_request = float("-inf")
        return self._request(now)

    def admit(self, source: str, keyframe_start: bool) -> bool:
        """Forward this packet? Completes a pending switch on the new source's keyframe."""
        if source == self.pending and keyframe_start:
            self.current, self.pending = source, None
            return True
        return source == self.current

    def keyframe_due(self, now: float) -> str | None:
        """While a switch waits, the source to ask again for a keyframe (throttled)."""
        if self.pending is None or now - self._last_request < self.keyframe_interval_s:
            return None
        return self._request(now)

    def source_gone(self, source: str) -> None:
        """A source left: a pending switch completes at once, the program stops if it was on air."""
        if source == self.pending:
            self.pending = None
        elif source == self.current:
            self.current, self.pending = self.pending, None

    def _request(self, now: float) -> str | None:
        self._last_request = now
        return self.pending or self.current


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
