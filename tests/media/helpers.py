from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from tests.conftest import RunningServer


async def wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


@contextlib.asynccontextmanager
async def small_meeting(server: RunningServer, a: str, b: str, **hall_video: int
                        ) -> AsyncIterator[tuple[SimulatedParticipant, ...]]:
    """The hall and two small-picture sites with their media up, and a moderator: (hall, a, b,
    moderator), all closed at the end."""
    hall = server.participant(Role.HALL, **hall_video)
    site_a = server.participant(Role.SITE, a, width=320, height=180, fps=15)
    site_b = server.participant(Role.SITE, b, width=320, height=180, fps=15)
    moderator = server.participant(Role.MODERATOR, publish=False)
    try:
        for p in (hall, site_a, site_b):
            await p.connect()
            await p.join_media()
        await moderator.connect()
        yield hall, site_a, site_b, moderator
    finally:
        for p in (hall, site_a, site_b, moderator):
            await p.close()
