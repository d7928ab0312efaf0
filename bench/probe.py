"""Event-loop lag: how late a 10 ms sleep wakes up, sampled for the life of a process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import socketio
from aiohttp import web

INTERVAL_S = 0.01



def pct(values: Iterable[float], q: float) -> float | None:
    """The q-quantile of the values (nearest rank), or None when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else None

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
        p99 = pct(self.samples, 0.99)
        return 0.0 if p99 is None else 1000 * p99


async def measure_until_sigterm(window: tuple[float, float], stats_path: str,
                                extra: Callable[[], dict[str, Any]] = dict) -> None:
    """Probe the loop inside the window; on SIGTERM write the lag p99 (and `extra()`) as JSON."""
    probe = LagProbe()
    probe.window = window
    probe.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    with open(stats_path, "w") as f:
        json.dump({"loop_lag_p99_ms": probe.p99_ms(), **extra()}, f)
    await probe.stop()


RECEIVER_LINES = [{"kind": "audio", "send": False, "slot": "program-audio"},
                  {"kind": "video", "send": False, "slot": "program-video"}]


async def start_offer_server(port: int, answer: Callable[[str], Awaitable[str]]) -> web.AppRunner:
    """The part of docs/protocol.md the benchmark receivers use, for the SFUs that are not
    hallbridge: a welcome naming the program's two m-lines, `media:offer` answered with
    `answer(offer_sdp)`, and GET /healthz; on 127.0.0.1:`port`. Clean it up when done."""
    sio = socketio.AsyncServer(async_mode="aiohttp", max_http_buffer_size=1 << 20)
    app = web.Application()
    sio.attach(app)
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))

    @sio.event
    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        await sio.emit("welcome", {"media": {"lines": RECEIVER_LINES}}, to=sid)

    @sio.on("media:offer")
    async def offer(sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "answer": {"type": "answer", "sdp": await answer(payload["sdp"])}}

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def sfu_main(serve: Callable[[int, tuple[float, float], str], Awaitable[None]]) -> None:
    """The command line every benchmark SFU shares: --port, --window START END, --stats FILE."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", nargs=2, type=float, required=True)
    parser.add_argument("--stats", required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.install()
    asyncio.run(serve(args.port, (args.window[0], args.window[1]), args.stats))
