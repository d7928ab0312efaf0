"""The hallbridge server as a benchmark subject: the real app, uvloop, a lag probe, stats on exit.

    HALLBRIDGE_SECRET=... python -m bench.sfu_hallbridge --port P --window START END --stats FILE
"""

from __future__ import annotations

from dataclasses import asdict, replace

from aiohttp import web

from bench.probe import measure_until_sigterm, sfu_main
from signaling.app import BRIDGE, create_app
from signaling.settings import load_settings


async def serve(port: int, window: tuple[float, float], stats_path: str) -> None:
    base = load_settings(env={})
    settings = replace(base, server=replace(base.server, port=port))
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    router = app[BRIDGE].hub.router
    await measure_until_sigterm(window, stats_path, lambda: {"router": asdict(router.stats)})
    await runner.cleanup()


if __name__ == "__main__":
    sfu_main(serve)
