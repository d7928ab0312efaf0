"""A regression guard on the fan-out that is not a timed test: the real server forwards a real
program (the hall's publisher process) to 32 lean receivers in other processes, for a few seconds;
nothing may be dropped or lost (counts, whatever the machine's speed). bench/fanout.py measures
the costs."""

from __future__ import annotations

from pathlib import Path

from bench.fanout import run_case

SITES = 32
SECONDS = 5.0


def test_32_sites_lose_no_packet_and_nothing_is_dropped(tmp_path: Path) -> None:
    result = run_case("hallbridge", SITES, SECONDS, tmp_path)
    router = result["router"]
    assert result["receivers"] == SITES
    assert router is not None, "the server wrote its counts"
    print(f"\n32-site fan-out: {result['us_per_packet']} us/packet/site, fps_min {result['fps_min']}, "
          f"lost {result['lost_packets']}, router {router}")
    assert router["backlog_dropped"] == 0 and router["backlog_thumbnails_dropped"] == 0
    assert router["dropped"] == 0 and router["send_dropped"] == 0, "every site took every packet"
    assert result["lost_packets"] == 0, "no receiver saw a sequence gap"
    assert result["srtp_errors"] == 0
    assert result["fps_min"] > 0 and result["packets_per_site_per_s"] > 0, "the program flowed"
