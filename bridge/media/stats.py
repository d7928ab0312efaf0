"""Pure reception statistics of one incoming RTP stream (RFC 3550 appendix A.1, A.3, A.8).

Feeds the receiver reports the bridge sends to each publisher, and the network health the
console shows (loss, jitter). Time (`now`, seconds) is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.media.rtcp import ReportBlock

_SEQ_MOD = 1 << 16


@dataclass(slots=True)
class StreamStats:
    ssrc: int
    clock_rate: int
    base_seq: int = -1
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    octets: int = 0
    jitter: float = 0.0  # in timestamp units
    _transit: float | None = None
    _expected_prior: int = 0
    _received_prior: int = 0
    _lsr: int = 0  # middle 32 bits of the last SR's NTP time
    _lsr_at: float | None = None
    last_arrival: float = 0.0
    recent_loss: float = 0.0  # fraction lost in the last report interval (~1 s): the network now

    def add(self, sequence: int, timestamp: int, size: int, now: float) -> None:
        if self.base_seq < 0:
            self.base_seq, self.max_seq = sequence, sequence
        else:
            delta = (sequence - self.max_seq) % _SEQ_MOD
            if 0 < delta < 3000:  # in order, maybe with a gap
                if sequence < self.max_seq:
                    self.cycles += _SEQ_MOD
                self.max_seq = sequence
            elif delta > _SEQ_MOD - 100:  # late or duplicate: counted, not advancing
                pass
            else:  # a jump: the sender restarted its numbering
                self.base_seq, self.max_seq, self.cycles = sequence, sequence, 0
                self._expected_prior = self._received_prior = self.received = 0
        self.received += 1
        self.octets += size
        self.last_arrival = now
        transit = now * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < self.clock_rate * 10:  # ignore timestamp wraps and restarts
                self.jitter += (d - self.jitter) / 16
        self._transit = transit

    def sender_report(self, ntp: int, now: float) -> None:
        self._lsr = (ntp >> 16) & 0xFFFFFFFF
        self._lsr_at = now

    @property
    def expected(self) -> int:
        return 0 if self.base_seq < 0 else self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def report(self, now: float) -> ReportBlock:
        """A report block for this stream; also closes the interval of `fraction_lost`."""
        expected, received = self.expected, self.received
        expected_interval = expected - self._expected_prior
        lost_interval = expected_interval - (received - self._received_prior)
        self._expected_prior, self._received_prior = expected, received
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.recent_loss = fraction / 256
        dlsr = 0
        if self._lsr_at is not None:
            dlsr = int((now - self._lsr_at) * 65536) & 0xFFFFFFFF
        return ReportBlock(self.ssrc, fraction, min(self.lost, 0x7FFFFF),
                           (self.cycles + self.max_seq) & 0xFFFFFFFF, int(self.jitter),
                           self._lsr, dlsr)

    def loss_ratio(self) -> float:
        """Lost over the whole stream (a 10 s outage weighs on it for long: not for dashboards)."""
        return self.lost / self.expected if self.expected else 0.0

    def jitter_ms(self) -> float:
        return 1000.0 * self.jitter / self.clock_rate
