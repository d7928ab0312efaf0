"""A site loses its network for 10 s: the meeting goes on, the site comes back as it was.

The scenario runs in a network namespace of its own (`unshare --net`, root as on CI), where a
traffic-control blackhole drops every packet from or to the site's address — its Socket.IO
connection and its media alike — while the server, the hall and two other sites keep 127.0.0.1.
See netloss_run.py for what is measured.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from signaling.settings import REPO_ROOT


@pytest.mark.media
@pytest.mark.timeout(240)
def test_a_site_that_loses_its_network_for_10_s_comes_back_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "netloss.json"
    command = ["unshare", "--net", sys.executable, "-m", "tests.reliability.netloss_run", str(out)]
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=200)
    assert run.returncode == 0, f"the scenario failed:\n{run.stderr[-4000:]}"
    f = json.loads(out.read_text(encoding="utf-8"))
    seen = json.dumps({k: v for k, v in f.items() if k != "report"}, ensure_ascii=False)

    # the others see no interruption
    assert f["witness_connected"] and f["witness_presence_changes"] == [], seen
    for name, gap in f["witness_gap_max_s"].items():
        assert gap < 0.5, f"{name}'s program stalled {gap:.2f} s during the loss"

    # the console marks the site within 5 s
    assert f["console_marked_lost_after_s"] is not None and f["console_marked_lost_after_s"] <= 5.0, seen
    assert any(p in ("lost", "offline") for _, p in f["presence_after_loss"]), seen

    # it comes back by itself within 15 s: live on the wall, network good, receiving the program
    assert f["back_after_s"] is not None and f["back_after_s"] <= 15.0, seen
    assert f["joins_after"] > f["joins_before"]

    # with its roll-call answer, mute and floor request as they were
    assert f["kept_after"] == f["kept_before"], seen
    assert f["kept_after"]["rollcall"]["status"] == "present"
    assert f["kept_after"]["mute"]["muted"] is False and f["kept_after"]["queue"], seen

    # the attendance report shows the gap, not a second attendee
    assert f["report_rows"] == 1
    row = f["report"]
    intervals = re.findall(r"(\d\d:\d\d:\d\d)-(\d\d:\d\d:\d\d)", row["intervals"])
    assert len(intervals) >= 2 and int(row["reconnects"]) == len(intervals) - 1, row
    assert row["rollcall"].startswith("present")

    def seconds(clock: str) -> int:
        h, m, s = map(int, clock.split(":"))
        return h * 3600 + m * 60 + s

    gap = seconds(intervals[1][0]) - seconds(intervals[0][1])
    assert 2 <= gap <= f["loss_s"] + 2, f"the report's gap is {gap} s for a {f['loss_s']} s loss"
