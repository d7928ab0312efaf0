"""Emulated poor lines for tests and benchmarks: per-site delay, jitter, loss and a rate cap on
the loopback device, in a network namespace the caller made (`unshare --net`, root as on CI).

A site's packets are told apart on `lo` by its own loopback address (127.0.0.x: a simulated
site binds one) or, for a browser page (every page's candidates are 127.0.0.1), by the bridge's
UDP port of that page's media connection (`Site.port`): a packet towards the site has the
address as destination (or the port as source), one from the site the address as source (or the
port as destination). Both directions are impaired, the way a provincial line is:
- the rate cap: an HTB class per direction, its queue holding about `QUEUE_S` at that rate
  (a provincial router's buffer, not an unbounded one that turns a cap into seconds of delay);
- delay and jitter: a netem queue under the class; they need the kernel's `sch_netem`, and
  where it is missing (this project's CI kernel has HTB, TBF and blackhole but no netem) `set`
  raises `NetemUnavailable` naming it;
- loss: an nftables rule per direction that drops that share of the site's packets at random
  (`numgen random`), on every kernel with nf_tables; netem's loss only where nft is missing.
Traffic between other addresses and ports takes the default class at full speed.

    with Impairments() as lines:                       # inside the namespace
        lines.set("127.0.0.5", Impairment(delay_ms=40, loss_pct=2))
        lines.set(Site(port=41003), Impairment(rate_kbit=800))   # a browser page's line
        lines.set("127.0.0.5", Impairment())            # the line is good again
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from types import TracebackType

FULL_RATE = "100gbit"
QUEUE_S = 0.3  # a capped line's queue: this long at its rate
MTU_BYTES = 1250
NFT_TABLE = "hallbridge_netem"


class NetemUnavailable(RuntimeError):
    """This kernel has no sch_netem: delay and jitter cannot be emulated here."""


@dataclass(frozen=True, slots=True)
class Impairment:
    delay_ms: float = 0.0  # each way
    jitter_ms: float = 0.0
    loss_pct: float = 0.0  # each way, independent per packet
    rate_kbit: int | None = None  # each way; None: no cap

    def needs_netem(self, nft: bool = True) -> bool:
        return bool(self.delay_ms or self.jitter_ms or (self.loss_pct and not nft))

    def queue_packets(self) -> int:
        if not self.rate_kbit:
            return 1000
        return max(10, int(self.rate_kbit * 1000 * QUEUE_S / 8 / MTU_BYTES))

    def netem(self, nft: bool = True) -> list[str]:
        args = ["netem", "limit", str(self.queue_packets())]
        if self.delay_ms or self.jitter_ms:
            args += ["delay", f"{self.delay_ms}ms"]
            if self.jitter_ms:
                args += [f"{self.jitter_ms}ms", "distribution", "normal"]
        if self.loss_pct and not nft:
            args += ["loss", f"{self.loss_pct}%"]
        return args

    def rate(self) -> str:
        return f"{self.rate_kbit}kbit" if self.rate_kbit else FULL_RATE


@dataclass(frozen=True, slots=True)
class Site:
    """Where a site's packets are recognised: its loopback address, or the bridge's UDP port of
    its media connection."""

    address: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if (self.address is None) == (self.port is None):
            raise ValueError("a site line is an address or a port")
        if self.address is not None and not ipaddress.IPv4Address(self.address).is_loopback:
            raise ValueError(f"{self.address} is not a loopback address")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"{self.port} is not a UDP port")

    def u32(self, towards: bool) -> list[str]:
        """tc u32 match arguments for packets towards the site (or from it)."""
        if self.address is not None:
            return ["ip", "dst" if towards else "src", f"{self.address}/32"]
        return ["ip", "sport" if towards else "dport", str(self.port), "0xffff"]

    def nft(self, towards: bool) -> list[str]:
        if self.address is not None:
            return ["ip", "daddr" if towards else "saddr", self.address]
        return ["udp", "sport" if towards else "dport", str(self.port)]


def as_site(target: str | Site) -> Site:
    return target if isinstance(target, Site) else Site(address=target)


def commands_install(nft: bool = False) -> list[list[str]]:
    out = [["ip", "link", "set", "lo", "up"],
           ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1"],
           ["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate",
            FULL_RATE]]
    if nft:  # every packet on lo comes in again: one prerouting hook sees both directions, and
        # drops there are silent to the sender (a drop on output fails its sendto with EPERM)
        out += [["nft", "add", "table", "inet", NFT_TABLE],
                ["nft", "add", "chain", "inet", NFT_TABLE, "loss",
                 "{ type filter hook prerouting priority 0; policy accept; }"]]
    return out


def commands_set(target: str | Site, index: int, line: Impairment, first: bool,
                 nft: bool = False) -> list[list[str]]:
    """tc commands for site number `index` (from 1): both directions' classes, their queues,
    and (the first time) the filters."""
    site = as_site(target)
    out: list[list[str]] = []
    verb = "add" if first else "change"
    for towards, minor in ((True, 10 + 2 * index), (False, 11 + 2 * index)):
        classid, handle = f"1:{minor:x}", f"{minor:x}:"
        # a cap smaller than a packet's worth per tick still lets packets through one by one
        burst = ["burst", "16k", "cburst", "16k"]
        out.append(["tc", "class", verb, "dev", "lo", "parent", "1:", "classid", classid, "htb",
                    "rate", line.rate(), "ceil", line.rate(), *burst])
        leaf = line.netem(nft) if line.needs_netem(nft) else ["pfifo", "limit",
                                                              str(line.queue_packets())]
        out.append(["tc", "qdisc", "replace", "dev", "lo", "parent", classid, "handle", handle,
                    *leaf])
        if first:
            out.append(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip",
                        "prio", str(minor), "u32", "match", *site.u32(towards), "flowid", classid])
    return out


def commands_loss(lines: dict[Site, Impairment]) -> list[list[str]]:
    """The nftables loss rules for every line (the chain rewritten whole)."""
    out = [["nft", "flush", "chain", "inet", NFT_TABLE, "loss"]]
    for site, line in lines.items():
        if not line.loss_pct:
            continue
        per_10k = round(line.loss_pct * 100)
        for towards in (True, False):
            out.append(["nft", "add", "rule", "inet", NFT_TABLE, "loss", *site.nft(towards),
                        "numgen", "random", "mod", "10000", "<", str(per_10k), "drop"])
    return out


class Impairments:
    """The namespace's loopback, shaped per site."""

    def __init__(self) -> None:
        self._sites: dict[Site, int] = {}
        self._lines: dict[Site, Impairment] = {}
        self.nft = shutil.which("nft") is not None

    def __enter__(self) -> Impairments:
        for command in commands_install(self.nft):
            _run(command)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
        if self.nft:
            subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True)

    def set(self, target: str | Site, line: Impairment) -> None:
        site = as_site(target)
        if line.needs_netem(self.nft) and not netem_available():
            raise NetemUnavailable("this kernel has no sch_netem: delay and jitter cannot be "
                                   "emulated here (rate caps and loss can)")
        first = site not in self._sites
        index = self._sites.setdefault(site, len(self._sites) + 1)
        for command in commands_set(site, index, line, first, self.nft):
            _run(command)
        self._lines[site] = line
        if self.nft:
            for command in commands_loss(self._lines):
                _run(command)


_NETEM: bool | None = None


def netem_available() -> bool:
    """Whether this kernel has sch_netem (tried once on a throwaway dummy qdisc)."""
    global _NETEM
    if _NETEM is None:
        probe = ["tc", "qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "ff0:", "netem"]
        done = subprocess.run(probe, capture_output=True, text=True)
        _NETEM = done.returncode == 0
        if _NETEM:
            subprocess.run(["tc", "qdisc", "del", "dev", "lo", "parent", "1:1", "handle", "ff0:"],
                           capture_output=True)
    return _NETEM


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
