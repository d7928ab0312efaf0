"""Does it matter who joins first? Program delivery to 4 lean observers that joined before the
main hall's publisher, against 4 that joined after it (separate processes, as in bench.fanout).
Prints, per order, what the server received from the hall and forwarded inside a 15 s window
(from /metrics) and what each observer counted.

    python -m bench.join_order
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.fanout import free_port, python, stop, wait_healthy
from bridge.roles import Role
from bridge.roster import load_roster
from signaling.settings import load_settings
from signaling.tokens import TokenAuthority

OBSERVERS = 4


def counters(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    return {m: float(re.search(rf"^hallbridge_{m}_total (\S+)", text, re.M).group(1))  # type: ignore[union-attr]
            for m in ("packets_received", "packets_forwarded", "program_switches")}


def run(order: str) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HALLBRIDGE_SECRET=secrets.token_urlsafe(48))
    settings = load_settings(env={})
    tokens = TokenAuthority(env["HALLBRIDGE_SECRET"].encode(), settings.conference.id,
                            load_roster(settings.roster_path()))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.time() + 25
        window = (start, start + 15)
        sfu = python("bench.sfu_hallbridge", "--port", str(port), "--window", str(window[0]),
                     str(window[1]), "--stats", str(work / "sfu.json"), env=env)
        processes = [sfu]
        try:
            wait_healthy(url)
            (work / "tokens").write_text("\n".join(tokens.issue(Role.OBSERVER) for _ in range(OBSERVERS)))
            publisher = ["bench.publisher", "--url", url, "--token", tokens.issue(Role.HALL)]
            receivers = ["bench.receivers", "--url", url, "--tokens", str(work / "tokens"),
                         "--window", str(window[0]), str(window[1]), "--out", str(work / "r.json")]
            for step in ((publisher, receivers) if order == "hall-first" else (receivers, publisher)):
                processes.append(python(*step, env=env))
                time.sleep(8)
            time.sleep(max(0.0, window[0] - time.time()))
            before = counters(url)
            time.sleep(max(0.0, window[1] - time.time()))
            after = counters(url)
            processes[1 if order == "observers-first" else 2].wait(timeout=120)
            observed = json.loads((work / "r.json").read_text())
        finally:
            stop(*processes[1:], sfu)
    return {"order": order, **{k: after[k] - before[k] for k in before},
            "observers": [{k: r[k] for k in ("packets", "video_frames", "lost")} for r in observed]}


def main() -> None:
    for order in ("hall-first", "observers-first"):
        print(json.dumps(run(order)), flush=True)


if __name__ == "__main__":
    main()
