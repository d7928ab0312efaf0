"""One remote site on an address of its own, for the network-loss test (run as a process).

`python -m tests.reliability.netloss_site URL TOKEN NAME CODE ADDRESS`: joins like a browser page
(resilient: reconnects and rejoins the media by itself), prints a status line every 0.25 s and runs
the commands it reads on stdin (`<event> <json payload>`), printing each reply. Every line is JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bench.sim.simulate import SimulatedParticipant

STATUS_EVERY_S = 0.25


def say(**line: Any) -> None:
    print(json.dumps(line), flush=True)


async def commands(site: SimulatedParticipant) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode():
        event, _, payload = line.strip().partition(" ")
        try:
            reply = await site.call(event, json.loads(payload or "{}"))
        except Exception as exc:  # the test reads the failure, it does not guess
            reply = {"ok": False, "error": {"code": "client", "message": repr(exc)}}
        say(kind="reply", event=event, reply=reply)


async def main(url: str, token: str, name: str, code: int, address: str) -> None:
    site = SimulatedParticipant(url, token, name, code, width=320, height=180, fps=15,
                                local_address=address, resilient=True)
    await site.connect()
    await site.join_media()
    reading = asyncio.create_task(commands(site), name="commands")
    try:
        while not reading.done():
            program = site.stats
            say(kind="status", t=time.time(), connected=site.sio.connected, frames=program.video_frames,
                audio_frames=program.audio_frames, rejoins=site.rejoins,
                media=site.pc.connectionState if site.pc else None)
            await asyncio.sleep(STATUS_EVERY_S)
    finally:
        reading.cancel()
        await site.close()


if __name__ == "__main__":
    url_, token_, name_, code_, address_ = sys.argv[1:6]
    asyncio.run(main(url_, token_, name_, int(code_), address_))
