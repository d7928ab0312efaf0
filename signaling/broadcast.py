"""Ordered, bounded emission of state patches and notices: one queue, one task, owned by the app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)
QUEUE_LIMIT = 1024  # patches; when full the patch is dropped and clients catch up by version


class Broadcaster:
    def __init__(self, emit: Callable[[str, dict[str, Any], str | None], Awaitable[None]]) -> None:
        self._emit = emit
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], str | None]] = asyncio.Queue(QUEUE_LIMIT)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def publish(self, event: str, payload: dict[str, Any], to: str | None = None) -> None:
        """Emit to everyone, or to one connection (`to`), after everything published before."""
        try:
            self._queue.put_nowait((event, payload, to))
        except asyncio.QueueFull:
            # a client that sees a gap in versions asks for a snapshot (state:get)
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="broadcaster")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            event, payload, to = await self._queue.get()
            try:
                await self._emit(event, payload, to)
            except Exception:
                log.exception("broadcast failed")
            finally:
                self._queue.task_done()
