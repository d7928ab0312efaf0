"""The network-impairment harness (bench/netem.py) in a network namespace of its own: a site
address gets the rate cap it was given, another is untouched, and a line set back to good is
good; loss (nftables); a browser page's line by the bridge's port; delay too where the kernel has
sch_netem (this CI kernel has not: the harness says so by name instead of shaping nothing),
and on any kernel for a page's flow through the user-space delay line (issue 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.netem import Impairment, Site, commands_loss, commands_set
from signaling.settings import REPO_ROOT


def test_only_loopback_addresses_can_be_shaped() -> None:
    with pytest.raises(ValueError):
        commands_set("192.0.2.1", 1, Impairment(loss_pct=1), first=True)
    filters = [c for c in commands_set("127.0.0.5", 1, Impairment(loss_pct=1), first=True)
               if c[:3] == ["tc", "filter", "add"]]
    assert {c[c.index("match") + 2] for c in filters} == {"src", "dst"}  # both directions
    port = [c for c in commands_set(Site(port=41003), 2, Impairment(rate_kbit=800), first=True)
            if c[:3] == ["tc", "filter", "add"]]
    assert {c[c.index("match") + 2] for c in port} == {"sport", "dport"}
    rules = commands_loss({Site(port=41003): Impairment(loss_pct=2.5)})
    assert [r[-7:] for r in rules[1:]] == [["numgen", "random", "mod", "10000", "<", "250", "drop"]] * 2


@pytest.mark.timeout(120)
def test_delay_loss_and_rate_cap_per_site_address(tmp_path: Path) -> None:
    out = tmp_path / "netem.json"
    run = subprocess.run(["unshare", "--net", sys.executable, "-m", "tests.reliability.netem_probe",
                          str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stderr[-3000:]
    f = json.loads(out.read_text())
    if f["netem"] is True:
        # 40 ms each way (± 5 ms jitter): ~80 ms round trip; 10 % each way: ~19 % of pings lost
        assert 70 <= f["impaired"]["rtt_ms_p50"] <= 110, f
        assert 0.10 <= f["impaired"]["loss"] <= 0.30, f
    else:
        assert "sch_netem" in f["netem"], f
    assert 0.10 <= f["lossy"]["loss"] <= 0.30, f  # 10 % each way, by nftables where no netem
    assert f["clean"]["rtt_ms_p50"] < 10 and f["clean"]["loss"] <= 0.01, f
    assert f["capped_ping"]["loss"] <= 0.01, f  # a cap is not a loss: small packets pass
    # 2 Mbit/s offered: the capped site gets ~800 kbit/s through, the clean one all of it
    assert 600 <= f["capped_kbit"] <= 950, f
    assert f["clean_kbit"] >= 1800 and f["restored_kbit"] >= 1800, f
    assert 600 <= f["port_capped_kbit"] <= 950 and f["port_clean_kbit"] >= 1800, f
    # a page's flow through the delay line: 40 ms +- 5 each way, 10 % loss each way, and the
    # replies still come from the bridge's port; other flows and the line set back are direct
    delayed = f["delayed"]
    assert 75 <= delayed["rtt_ms_p50"] <= 100 and delayed["rtt_ms_p5"] >= 70, f
    assert delayed["rtt_ms_p95"] - delayed["rtt_ms_p5"] >= 5, f  # the jitter is there
    assert 0.10 <= delayed["loss"] <= 0.30 and delayed["strangers"] == 0, f
    assert f["delayed_clean"]["rtt_ms_p50"] < 10 and f["undelayed"]["rtt_ms_p50"] < 10, f
    assert f["undelayed"]["loss"] <= 0.01 and f["undelayed"]["strangers"] == 0, f
    assert f["delay_line"]["up"]["passed"] >= 200 and f["delay_line"]["down"]["passed"] >= 200, f
