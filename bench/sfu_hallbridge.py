"""The hallbridge server as a benchmark subject: the real app, uvloop, a lag probe, stats on exit.

    HALLBRIDGE_SECRET=... python -m bench.sfu_hallbridge --port P --window START END --stats FILE
"""

from __future__ import annotations

import gc
import time
from collections import deque
from dataclasses import asdict, replace

from aiohttp import web

from bench.probe import measure_until_sigterm, pct, sfu_main
from signaling.app import BRIDGE, create_app
from signaling.settings import load_settings

MODERATOR_EVENTS = ("program:set", "mute:set")  # only the benchmark's moderator sends these


async def serve(port: int, window: tuple[float, float], stats_path: str) -> None:
    base = load_settings(env={})
    settings = replace(base, server=replace(base.server, port=port))
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bridge = app[BRIDGE]
    router = bridge.hub.router
    handled: dict[str, deque[float]] = {}  # seconds inside the server, per client event
    metric = bridge.namespace.latency
    commands: list[tuple[float, float]] = []  # the moderator's commands: (wall-clock start, seconds)

    def observe(event: str, seconds: float) -> None:
        handled.setdefault(event, deque(maxlen=10_000)).append(seconds)
        if event in MODERATOR_EVENTS and len(commands) < 10_000:
            commands.append((time.time() - seconds, seconds))
        metric(event, seconds)

    bridge.namespace.latency = observe
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}  # collector pauses in the window
    started: list[float] = [0.0]

    def gc_watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            if window[0] <= time.time() <= window[1]:
                pauses[info["generation"]].append(time.perf_counter() - started[0])

    gc.callbacks.append(gc_watch)

    def summary(samples: deque[float]) -> dict[str, float | int | None]:
        ms = [round(1000 * x, 2) for x in samples]
        return {"p50": pct(ms, 0.5), "p99": pct(ms, 0.99), "count": len(ms)}

    def stats() -> dict[str, object]:
        return {"router": {**asdict(router.stats), "send_dropped": bridge.hub.outbox.dropped},
                "commands": commands,
                "handled_ms": {event: summary(samples) for event, samples in handled.items()},
                "gc_pause_ms": {str(g): {"count": len(v), "max": round(1000 * max(v, default=0), 1),
                                         "total": round(1000 * sum(v), 1)} for g, v in pauses.items()}}

    await measure_until_sigterm(window, stats_path, stats)
    await runner.cleanup()


if __name__ == "__main__":
    sfu_main(serve)
