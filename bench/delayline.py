"""Delay and jitter in user space, for kernels without sch_netem (issue 17): a process of its own
that holds one UDP flow's packets for the line's delay, each way, and lets them go in order.

bench.netem starts it for a browser page's line (`Site(port=bridge, peer=page)`) and steers the
flow through it with stateless nftables port rewrites on `lo`: the page's packets to the bridge
port come here instead, and leave here as if sent by the page; the bridge's packets to the page
come here and leave as if sent by the bridge. Neither end sees another address, so ICE, DTLS
and the receiver's estimate run as on a real line. Rate caps and loss stay in the kernel (HTB,
nftables), on the legs after this process.

Jitter is normal (sigma = jitter_ms, clipped at 2 sigma) and keeps the order (a packet never
leaves before the one ahead of it), as on a provincial line's single path; netem's default
reorders instead. The queue is bounded (`QUEUE_PACKETS` each way); what would overflow it is
dropped and counted. It stops when its standard input closes, printing its counts as JSON.

    python -m bench.delayline --port R --bridge P --peer B --delay-ms 40 --jitter-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from dataclasses import dataclass, field
from typing import cast

QUEUE_PACKETS = 4000  # each way: ~4 s of a 1.5 Mbit/s program at 75 ms is ~20 packets deep
HOST = "127.0.0.1"


@dataclass(slots=True)
class Way:
    delay_s: float
    jitter_s: float
    rng: random.Random
    last_out: float = 0.0
    queued: int = 0
    passed: int = 0
    dropped: int = 0
    held_s: list[float] = field(default_factory=list)  # a sample, for the counts

    def departure(self, now: float) -> float:
        jitter = 0.0
        if self.jitter_s:
            jitter = max(-2 * self.jitter_s, min(2 * self.jitter_s, self.rng.gauss(0.0, self.jitter_s)))
        at = max(self.last_out, now + max(0.0, self.delay_s + jitter))
        self.last_out = at
        return at


class DelayLine(asyncio.DatagramProtocol):
    def __init__(self, bridge: int, peer: int, delay_s: float, jitter_s: float, seed: int) -> None:
        self.bridge, self.peer = (HOST, bridge), (HOST, peer)
        rng = random.Random(seed)
        self.up = Way(delay_s, jitter_s, rng)
        self.down = Way(delay_s, jitter_s, rng)
        self.transport: asyncio.DatagramTransport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # from the bridge's port: towards the page; anything else came from the page
        way, to = (self.down, self.peer) if addr[1] == self.bridge[1] else (self.up, self.bridge)
        if way.queued >= QUEUE_PACKETS:
            way.dropped += 1
            return
        now = self.loop.time()
        at = way.departure(now)
        way.queued += 1
        if len(way.held_s) < 20_000:
            way.held_s.append(at - now)
        self.loop.call_at(at, self._send, way, data, to)

    def _send(self, way: Way, data: bytes, to: tuple[str, int]) -> None:
        way.queued -= 1
        way.passed += 1
        if self.transport is not None:
            self.transport.sendto(data, to)

    def counts(self) -> dict[str, object]:
        def of(way: Way) -> dict[str, object]:
            held = sorted(way.held_s)
            return {"passed": way.passed, "dropped": way.dropped,
                    "held_ms_p50": round(1000 * held[len(held) // 2], 1) if held else None}
        return {"up": of(self.up), "down": of(self.down)}


async def serve(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    transport, line = await loop.create_datagram_endpoint(
        lambda: DelayLine(args.bridge, args.peer, args.delay_ms / 1000, args.jitter_ms / 1000, args.seed),
        local_addr=(HOST, args.port))
    print("ready", flush=True)
    try:
        await loop.run_in_executor(None, sys.stdin.read)  # until the harness closes our stdin
    finally:
        transport.close()
    return line.counts()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="this relay's UDP port")
    parser.add_argument("--bridge", type=int, required=True, help="the bridge's UDP port of the flow")
    parser.add_argument("--peer", type=int, required=True, help="the page's UDP port of the flow")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    if args.delay_ms < 0 or args.jitter_ms < 0:
        parser.error("delay and jitter are not negative")
    print(json.dumps(asyncio.run(serve(args))), flush=True)


if __name__ == "__main__":
    main()
