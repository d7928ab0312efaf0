"""The hallbridge server as a benchmark subject: the real app, uvloop, a lag probe, stats on exit.

    HALLBRIDGE_SECRET=... python -m bench.sfu_hallbridge --port P --window START END --stats FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from dataclasses import asdict, replace

from aiohttp import web

from bench.probe import LagProbe
from signaling.app import BRIDGE, create_app
from signaling.settings import load_settings


async def serve(port: int, window: tuple[float, float], stats_path: str) -> None:
    base = load_settings(env={})
    settings = replace(base, server=replace(base.server, port=port))
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    probe = LagProbe()
    probe.window = window
    probe.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    router = app[BRIDGE].hub.router
    with open(stats_path, "w") as f:
        json.dump({"loop_lag_p99_ms": probe.p99_ms(), "router": asdict(router.stats)}, f)
    await probe.stop()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", nargs=2, type=float, required=True)
    parser.add_argument("--stats", required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.install()
    asyncio.run(serve(args.port, tuple(args.window), args.stats))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
