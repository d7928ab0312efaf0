"""Emulated poor lines for tests and benchmarks: per-site delay, jitter, loss and a rate cap on
the loopback device, in a network namespace the caller made (`unshare --net`, root as on CI).

A site's packets are told apart on `lo` by its own loopback address (127.0.0.x: a simulated
site binds one) or, for a browser page (every page's candidates are 127.0.0.1), by the bridge's
UDP port of that page's media connection (`Site.port`): a packet towards the site has the
address as destination (or the port as source), one from the site the address as source (or the
port as destination). Both directions are impaired, the way a provincial line is:
- the rate cap: an HTB class per direction, its queue holding about `QUEUE_S` at that rate
  (a provincial router's buffer, not an unbounded one that turns a cap into seconds of delay);
- delay and jitter: a netem queue under the class, with the kernel's `sch_netem`; where it is
  missing (this project's CI kernel has HTB, TBF and blackhole but no netem), a browser page's
  line that names the page's own port too (`Site(port=…, peer=…)`) goes through a user-space
  delay line (bench.delayline, a process of its own) steered by stateless nftables port
  rewrites, so that neither end sees another address; for any other line `set` raises
  `NetemUnavailable` naming the module;
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
import json
import shutil
import socket
import subprocess
import sys
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
        return bool(self.delayed() or (self.loss_pct and not nft))

    def delayed(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms)

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
    its media connection (and, for a delay line, the page's own port of it: `peer`)."""

    address: str | None = None
    port: int | None = None
    peer: int | None = None

    def __post_init__(self) -> None:
        if (self.address is None) == (self.port is None):
            raise ValueError("a site line is an address or a port")
        if self.address is not None and not ipaddress.IPv4Address(self.address).is_loopback:
            raise ValueError(f"{self.address} is not a loopback address")
        for port in (self.port, self.peer):
            if port is not None and not 0 < port < 65536:
                raise ValueError(f"{port} is not a UDP port")
        if self.peer is not None and self.port is None:
            raise ValueError("a peer port belongs to a bridge port's line")

    def u32(self, towards: bool) -> list[str]:
        """tc u32 match arguments for packets towards the site (or from it)."""
        if self.address is not None:
            return ["ip", "dst" if towards else "src", f"{self.address}/32"]
        return ["ip", "sport" if towards else "dport", str(self.port), "0xffff"]

    def nft(self, towards: bool, relay: int | None = None) -> list[str]:
        if self.address is not None:
            return ["ip", "daddr" if towards else "saddr", self.address]
        # the bridge's packets on their way into a delay line are not the line's last leg
        skip = ["udp", "dport", "!=", str(relay)] if towards and relay else []
        return ["udp", "sport" if towards else "dport", str(self.port), *skip]


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
                 "{ type filter hook prerouting priority 0; policy accept; }"],
                # before conntrack and the routing of locally sent packets: delay lines' rewrites
                ["nft", "add", "chain", "inet", NFT_TABLE, "steer",
                 "{ type filter hook output priority -300; policy accept; }"]]
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


def commands_loss(lines: dict[Site, Impairment], relays: dict[Site, int] | None = None) -> list[list[str]]:
    """The nftables loss rules for every line (the chain rewritten whole)."""
    out = [["nft", "flush", "chain", "inet", NFT_TABLE, "loss"]]
    for site, line in lines.items():
        if not line.loss_pct:
            continue
        per_10k = round(line.loss_pct * 100)
        for towards in (True, False):
            out.append(["nft", "add", "rule", "inet", NFT_TABLE, "loss",
                        *site.nft(towards, (relays or {}).get(site)),
                        "numgen", "random", "mod", "10000", "<", str(per_10k), "drop"])
    return out


def commands_steer(relays: dict[Site, int]) -> list[list[str]]:
    """Stateless port rewrites that pass each delayed flow through its delay line on port R,
    neither end seeing another address (the chain rewritten whole). What the line sends on is
    written as from the flow's other end and accepted at once; what either end sends the other
    goes to the line."""
    out = [["nft", "flush", "chain", "inet", NFT_TABLE, "steer"]]
    rule = ["nft", "add", "rule", "inet", NFT_TABLE, "steer"]
    for site, relay in relays.items():
        bridge, peer, r = str(site.port), str(site.peer), str(relay)
        out += [[*rule, "udp", "sport", r, "udp", "dport", bridge, "udp", "sport", "set", peer, "accept"],
                [*rule, "udp", "sport", r, "udp", "dport", peer, "udp", "sport", "set", bridge, "accept"],
                [*rule, "udp", "sport", peer, "udp", "dport", bridge, "udp", "dport", "set", r, "accept"],
                [*rule, "udp", "sport", bridge, "udp", "dport", peer, "udp", "dport", "set", r, "accept"]]
    return out


class DelayLineProcess:
    """One flow's delay line (bench.delayline), a process of its own on a free port."""

    def __init__(self, site: Site, line: Impairment) -> None:
        assert site.port is not None and site.peer is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.delayline", "--port", str(self.port), "--bridge", str(site.port),
             "--peer", str(site.peer), "--delay-ms", str(line.delay_ms), "--jitter-ms", str(line.jitter_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.process.kill()
            raise RuntimeError("the delay line did not start")

    def stop(self) -> dict[str, object]:
        """Stop it; what it passed and dropped each way."""
        try:
            out, _ = self.process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return {}
        try:
            return dict(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {}


class Impairments:
    """The namespace's loopback, shaped per site."""

    def __init__(self) -> None:
        self._sites: dict[Site, int] = {}
        self._lines: dict[Site, Impairment] = {}
        self._delays: dict[Site, DelayLineProcess] = {}
        self.delay_counts: dict[Site, dict[str, object]] = {}  # the last delay line's, per site
        self.nft = shutil.which("nft") is not None

    def __enter__(self) -> Impairments:
        for command in commands_install(self.nft):
            _run(command)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)
        for site in list(self._delays):
            self.delay_counts[site] = self._delays.pop(site).stop()
        if self.nft:
            subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True)

    def can_delay(self, target: str | Site) -> bool:
        """Whether delay and jitter can be emulated on this line here."""
        site = as_site(target)
        return netem_available() or (self.nft and site.peer is not None)

    def set(self, target: str | Site, line: Impairment) -> None:
        site = as_site(target)
        by_line = line.delayed() and not netem_available() and self.can_delay(site)
        if line.needs_netem(self.nft) and not netem_available() and not by_line:
            raise NetemUnavailable("this kernel has no sch_netem: delay and jitter cannot be "
                                   "emulated here (rate caps and loss can; a browser page's line "
                                   "named with its peer port goes through a delay line)")
        if site in self._delays:  # off the old delay line first (rules, then the process)
            self._steer_without(site)
        first = site not in self._sites
        index = self._sites.setdefault(site, len(self._sites) + 1)
        kernel_line = Impairment(loss_pct=line.loss_pct, rate_kbit=line.rate_kbit) if by_line else line
        for command in commands_set(site, index, kernel_line, first, self.nft):
            _run(command)
        if by_line:
            delay = self._delays[site] = DelayLineProcess(site, line)
            # the leg into the delay line is not the line: it takes the default class
            _run(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                  "match", "ip", "dport", str(delay.port), "0xffff", "flowid", "1:1"])
            for command in commands_steer(self._relays()):
                _run(command)
        self._lines[site] = line
        if self.nft:
            for command in commands_loss(self._lines, self._relays()):
                _run(command)

    def _relays(self) -> dict[Site, int]:
        return {site: delay.port for site, delay in self._delays.items()}

    def _steer_without(self, site: Site) -> None:
        delay = self._delays.pop(site)
        for command in commands_steer(self._relays()):
            _run(command)
        self.delay_counts[site] = delay.stop()


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
