"""Emulated poor lines for tests and benchmarks: per-site delay, jitter, loss and a rate cap on
the loopback device, in a network namespace the caller made (`unshare --net`, root as on CI).

Every site has its own loopback address (127.0.0.x). On `lo` a packet to the site (the bridge's
media and Socket.IO towards it) has that address as destination, and one from the site as
source. Each direction gets its own HTB class (the rate cap) with a netem queue under it (delay,
jitter, loss), matched by u32 filters. Both directions are impaired, the way a provincial line is.
Traffic between other addresses takes the default class at full speed.

Delay, jitter and loss need the kernel's `sch_netem`. Where it is missing (this project's CI
kernel has HTB, TBF and blackhole but neither netem nor tc's gact/fq), `set` raises
`NetemUnavailable` naming it; rate caps still work.

    with Impairments() as lines:                  # inside the namespace
        lines.set("127.0.0.5", Impairment(delay_ms=40, loss_pct=2))
        lines.set("127.0.0.6", Impairment(rate_kbit=800))
        lines.set("127.0.0.5", Impairment())        # the line is good again
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from types import TracebackType

FULL_RATE = "100gbit"


class NetemUnavailable(RuntimeError):
    """This kernel has no sch_netem: delay, jitter and loss cannot be emulated here."""


@dataclass(frozen=True, slots=True)
class Impairment:
    delay_ms: float = 0.0  # each way
    jitter_ms: float = 0.0
    loss_pct: float = 0.0  # each way, independent per packet
    rate_kbit: int | None = None  # each way; None: no cap

    def needs_netem(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)

    def netem(self) -> list[str]:
        args = ["netem", "limit", "10000"]
        if self.delay_ms or self.jitter_ms:
            args += ["delay", f"{self.delay_ms}ms"]
            if self.jitter_ms:
                args += [f"{self.jitter_ms}ms", "distribution", "normal"]
        if self.loss_pct:
            args += ["loss", f"{self.loss_pct}%"]
        return args

    def rate(self) -> str:
        return f"{self.rate_kbit}kbit" if self.rate_kbit else FULL_RATE


def commands_install() -> list[list[str]]:
    return [["ip", "link", "set", "lo", "up"],
            ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1"],
            ["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate",
             FULL_RATE]]


def commands_set(address: str, index: int, line: Impairment, first: bool) -> list[list[str]]:
    """tc commands for site number `index` (from 1) at `address`: both directions' classes,
    their netem queues, and (the first time) the filters."""
    if not ipaddress.IPv4Address(address).is_loopback:
        raise ValueError(f"{address} is not a loopback address")
    out: list[list[str]] = []
    verb = "add" if first else "change"
    for direction, minor in (("dst", 10 + 2 * index), ("src", 11 + 2 * index)):
        classid, handle = f"1:{minor:x}", f"{minor:x}:"
        # a cap smaller than a packet's worth per tick still lets packets through one by one
        burst = ["burst", "16k", "cburst", "16k"]
        out.append(["tc", "class", verb, "dev", "lo", "parent", "1:", "classid", classid, "htb",
                    "rate", line.rate(), "ceil", line.rate(), *burst])
        leaf = line.netem() if line.needs_netem() else ["pfifo", "limit", "10000"]
        out.append(["tc", "qdisc", "replace", "dev", "lo", "parent", classid, "handle", handle,
                    *leaf])
        if first:
            out.append(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip",
                        "prio", str(minor), "u32", "match", "ip", direction, f"{address}/32",
                        "flowid", classid])
    return out


class Impairments:
    """The namespace's loopback, shaped per site address."""

    def __init__(self) -> None:
        self._sites: dict[str, int] = {}

    def __enter__(self) -> Impairments:
        for command in commands_install():
            _run(command)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)

    def set(self, address: str, line: Impairment) -> None:
        first = address not in self._sites
        index = self._sites.setdefault(address, len(self._sites) + 1)
        for command in commands_set(address, index, line, first):
            _run(command)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 and "netem" in command and "unknown" in done.stderr:
        raise NetemUnavailable("this kernel has no sch_netem: delay, jitter and loss cannot be "
                               "emulated here (rate caps can)")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
