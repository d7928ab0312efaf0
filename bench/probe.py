"""Event-loop lag: how late a 10 ms sleep wakes up, sampled for the life of a process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

INTERVAL_S = 0.01


class LagProbe:
    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=100_000)
        self._task: asyncio.Task[None] | None = None
        self.window: tuple[float, float] | None = None  # wall-clock; only samples inside count

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(INTERVAL_S)
            lag = time.monotonic() - before - INTERVAL_S
            if self.window is None or self.window[0] <= time.time() < self.window[1]:
                self.samples.append(lag)

    def p99_ms(self) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
