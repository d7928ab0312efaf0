"""The Socket.IO server with a gate: a connection must present a valid token soon after it opens.

Engine.IO accepts a transport before Socket.IO's CONNECT carries the token; without a gate a
client could keep such connections open forever, answering pings. The gate counts connections
that have not yet joined the namespace per address (more are refused at the handshake) and its
one sweeper closes those older than the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import socketio

from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)
SWEEP_S = 0.5


class GatedServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, connect_deadline_s: float = 5.0, pending_per_address: int = 128,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = connect_deadline_s
        self._per_address = pending_per_address
        # eio sid -> (address, opened at, its HTTP request: the transport to cut)
        self._pending: dict[str, tuple[str, float, Any]] = {}
        self._by_address: Counter[str] = Counter()
        self._sweeper: asyncio.Task[None] | None = None
        self.closed_at_deadline = 0  # connections closed for never presenting a valid token
        self.refused_pending = 0  # handshakes refused: too many unjoined from one address

    def start_gate(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="connect-deadline")

    async def stop_gate(self) -> None:
        await cancel_and_wait([self._sweeper])
        self._sweeper = None

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        request = environ.get("aiohttp.request")
        address = str(getattr(request, "remote", None) or environ.get("REMOTE_ADDR", ""))
        if self._by_address[address] >= self._per_address:
            self.refused_pending += 1
            log.warning("refused a connection from %s: %d already waiting to present a token",
                        address, self._by_address[address])
            return False  # Engine.IO answers 401: the handshake is refused
        self._pending[eio_sid] = (address, time.monotonic(), request)
        self._by_address[address] += 1
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        if self.manager.sid_from_eio_sid(eio_sid, namespace or "/") is not None:
            self._forget(eio_sid)  # joined with a valid token: no longer pending

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self._forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    def _forget(self, eio_sid: str) -> None:
        entry = self._pending.pop(eio_sid, None)
        if entry is not None:
            self._by_address[entry[0]] -= 1
            if self._by_address[entry[0]] <= 0:
                del self._by_address[entry[0]]

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.monotonic()
            for eio_sid, (_, opened, request) in list(self._pending.items()):
                if now - opened > self._deadline:  # (joined ones left at _handle_connect)
                    self._forget(eio_sid)
                    self.closed_at_deadline += 1
                    try:
                        await self.eio.disconnect(eio_sid)
                    except Exception:  # already gone
                        log.debug("closing %s at the connect deadline failed", eio_sid, exc_info=True)
                    # a client that ignores Engine.IO's close packet keeps its WebSocket: cut it
                    transport = getattr(request, "transport", None)
                    if transport is not None and not transport.is_closing():
                        transport.close()
