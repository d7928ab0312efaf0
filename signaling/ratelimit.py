"""Per-connection rate limits: a token bucket per client, so one flooding page cannot starve the
others. Pure: time is passed in."""

from __future__ import annotations

from dataclasses import dataclass

RATE_PER_S = 20.0  # events a client may send per second, sustained
BURST = 40.0  # ... and at once


@dataclass(slots=True)
class TokenBucket:
    rate: float = RATE_PER_S
    burst: float = BURST
    tokens: float = BURST
    at: float | None = None
    refused: int = 0

    def allow(self, now: float) -> bool:
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False
