from __future__ import annotations

from bridge.media.sdp import candidate_addresses, filter_candidates, parse_networks

OFFER = "\r\n".join([
    "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "a=candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host",
    "a=candidate:2 1 udp 2122194687 127.0.0.1 50001 typ host",
    "a=candidate:3 1 udp 2122194687 1f0b6c58-aaaa.local 50002 typ host",
    "a=candidate:4 1 udp 2122194687 ::1 50003 typ host",
    "a=mid:0", ""])


def test_only_candidates_in_allowed_networks_remain() -> None:
    out = filter_candidates(OFFER, parse_networks(["127.0.0.0/8", "::1/128"]))
    assert candidate_addresses(out) == ["127.0.0.1", "::1"]
    assert "a=mid:0" in out


def test_no_networks_means_no_filtering() -> None:
    assert filter_candidates(OFFER, []) == OFFER
