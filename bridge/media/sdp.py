"""Pure SDP edits made at the edge of the media core: which remote ICE candidates are tried."""

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
