"""Pure SDP edits made at the edge of the media core: which remote ICE candidates are tried, and
which SSRCs each offered m-line sends."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(networks: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(n) for n in networks]


def candidate_allowed(line: str, networks: Sequence[Network]) -> bool:
    """Whether an `a=candidate:` line's address lies in one of the networks (any when none)."""
    if not networks:
        return True
    parts = line.split()
    if len(parts) < 6:
        return False
    return address_allowed(parts[4], networks)


def address_allowed(text: str, networks: Sequence[Network]) -> bool:
    """Whether an address lies in one of the networks (any address when there are none)."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:  # an mDNS hostname or garbage: not an address we may use
        return False
    return any(address in n for n in networks)


def filter_candidates(sdp: str, networks: Sequence[Network]) -> str:
    """The SDP without the remote candidates that lie outside the allowed networks."""
    if not networks:
        return sdp
    lines = sdp.splitlines()
    kept = [ln for ln in lines if not ln.startswith("a=candidate:") or candidate_allowed(ln, networks)]
    return "\r\n".join(kept) + "\r\n"


def candidate_addresses(sdp: str) -> list[str]:
    """Every candidate address an SDP offers (tests and diagnostics)."""
    return [ln.split()[4] for ln in sdp.splitlines()
            if ln.startswith("a=candidate:") and len(ln.split()) > 4]


def media_ssrcs(sdp: str) -> list[list[int]]:
    """Per m-line, in order, the SSRCs the offerer sends media on (`a=ssrc:`), its RTX SSRCs
    (the second of each `a=ssrc-group:FID`) left out. Unreadable lines are skipped."""
    sections: list[tuple[list[int], set[int]]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append(([], set()))
        elif not sections:
            continue
        elif line.startswith("a=ssrc-group:FID "):
            ids = line.split()[1:]
            sections[-1][1].update(int(x) for x in ids[1:] if x.isdigit())
        elif line.startswith("a=ssrc:"):
            first = line[7:].split(" ", 1)[0]
            if first.isdigit() and int(first) not in sections[-1][0]:
                sections[-1][0].append(int(first))
    return [[s for s in ssrcs if s not in rtx] for ssrcs, rtx in sections]
