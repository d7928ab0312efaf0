"""Inside a network namespace of its own (test_netem_harness.py runs it with `unshare --net`):
shape three site addresses with bench.netem and measure each with UDP from the site to an echo
on 127.0.0.1 — round trip and loss of a paced stream, and the rate a flood gets through.

    unshare --net python -m tests.reliability.netem_probe OUT.json
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time

from bench.netem import Impairment, Impairments, NetemUnavailable, Site

ECHO = ("127.0.0.1", 47999)
PORT_LINE = 47998
DELAYED_BRIDGE, DELAYED_PAGE = 47997, 47996  # a page's flow through a delay line
PINGS = 300
PING_EVERY_S = 0.01


def echo(stop: threading.Event, where: tuple[str, int] = ECHO) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(where)
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(2048)
            except TimeoutError:
                continue
            if data[:1] == b"p":  # pings come back; floods are counted by the flood's sink
                s.sendto(data, addr)


def ping(address: str, port: int = 0, to: tuple[str, int] = ECHO) -> dict[str, float]:
    rtts: list[float] = []
    strangers = 0  # replies from anywhere but `to`
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, port))
        s.setblocking(False)
        sent: dict[int, float] = {}
        end = time.monotonic() + PINGS * PING_EVERY_S + 1.0
        n = 0
        while time.monotonic() < end:
            if n < PINGS:
                sent[n] = time.monotonic()
                s.sendto(b"p" + n.to_bytes(4, "big"), to)
                n += 1
            deadline = time.monotonic() + PING_EVERY_S
            while time.monotonic() < deadline:
                try:
                    data, source = s.recvfrom(64)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                strangers += source != to
                rtts.append(time.monotonic() - sent[int.from_bytes(data[1:5], "big")])
    ordered = sorted(rtts)
    return {"rtt_ms_p50": round(1000 * statistics.median(rtts), 1) if rtts else -1.0,
            "rtt_ms_p5": round(1000 * ordered[len(ordered) // 20], 1) if rtts else -1.0,
            "rtt_ms_p95": round(1000 * ordered[len(ordered) * 19 // 20], 1) if rtts else -1.0,
            "loss": round(1 - len(rtts) / PINGS, 3), "strangers": strangers}


def flood(address: str, kbit: int, seconds: float = 3.0, sink_port: int = 0) -> float:
    """Send at `kbit` from the site to a sink on 127.0.0.1 (on `sink_port`: a bridge's port);
    the kbit/s that arrived."""
    got = [0]
    times: list[float] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        sink.bind(("127.0.0.1", sink_port))
        sink.settimeout(0.5)
        out.bind((address, 0))
        payload = b"f" * 1200
        every = len(payload) * 8 / (kbit * 1000)
        stop = threading.Event()

        def count() -> None:
            while not stop.is_set():
                try:
                    got[0] += len(sink.recv(2048))
                    times.append(time.monotonic())
                except TimeoutError:
                    continue

        counter = threading.Thread(target=count)
        counter.start()
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            out.sendto(payload, sink.getsockname())
            n += 1
            time.sleep(max(0.0, start + n * every - time.monotonic()))
        time.sleep(0.5)  # what was queued drains
        stop.set()
        counter.join()
    if len(times) < 2:
        return 0.0
    return round((got[0] - 1200) * 8 / 1000 / (times[-1] - times[0]), 1)  # first to last arrival


def main() -> None:
    out: dict[str, object] = {}
    stop = threading.Event()
    server = threading.Thread(target=echo, args=(stop,))
    delayed_bridge = threading.Thread(target=echo, args=(stop, ("127.0.0.1", DELAYED_BRIDGE)))
    with Impairments() as lines:
        server.start()
        delayed_bridge.start()
        time.sleep(0.1)
        try:
            lines.set("127.0.0.5", Impairment(delay_ms=40, jitter_ms=5, loss_pct=10))
            out["netem"] = True
            out["impaired"] = ping("127.0.0.5")
        except NetemUnavailable as exc:
            out["netem"] = str(exc)
        lines.set("127.0.0.8", Impairment(loss_pct=10))  # loss alone: nftables on any kernel
        out["lossy"] = ping("127.0.0.8")
        lines.set("127.0.0.7", Impairment(rate_kbit=800))
        out["clean"] = ping("127.0.0.6")
        out["capped_ping"] = ping("127.0.0.7")
        out["capped_kbit"] = flood("127.0.0.7", 2000)
        out["clean_kbit"] = flood("127.0.0.6", 2000)
        lines.set("127.0.0.7", Impairment())  # the line is good again
        out["restored_kbit"] = flood("127.0.0.7", 2000)
        # a browser page's line: every page is 127.0.0.1, the bridge's port tells it apart
        lines.set(Site(port=PORT_LINE), Impairment(rate_kbit=800))
        out["port_capped_kbit"] = flood("127.0.0.1", 2000, sink_port=PORT_LINE)
        out["port_clean_kbit"] = flood("127.0.0.1", 2000)
        # delay on a page's line on any kernel: the flow through a delay line, both ends unaware
        page = Site(port=DELAYED_BRIDGE, peer=DELAYED_PAGE)
        lines.set(page, Impairment(delay_ms=40, jitter_ms=5, loss_pct=10))
        out["delayed"] = ping("127.0.0.1", DELAYED_PAGE, ("127.0.0.1", DELAYED_BRIDGE))
        out["delayed_clean"] = ping("127.0.0.1")  # another flow of the same address: untouched
        lines.set(page, Impairment())
        out["delay_line"] = lines.delay_counts.get(page)
        out["undelayed"] = ping("127.0.0.1", DELAYED_PAGE, ("127.0.0.1", DELAYED_BRIDGE))
        stop.set()
        server.join()
        delayed_bridge.join()
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
