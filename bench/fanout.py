"""Fan-out benchmark: one program (VP8 1280x720 30 fps ~1.5 Mbps + Opus) to N receivers.

Runs, in one run and one after the other (never two at once on this 2-core machine), for each N
the two designs back to back, `--repeat` times (the machine's speed drifts over minutes: the
ratio is taken per back-to-back pair and the median pair is reported):
  (a) `stock`: aiortc's stock RTCRtpSender per receiver, fed the pre-encoded packets (baseline);
  (b) `hallbridge`: the hallbridge server forwarding at the RTP level, the clip coming from a
      publisher process joined as the main hall;
  (c) `floor`: the physical floor (bench/sfu_floor.py): a bare thread, no asyncio, that patches
      the header, SRTP-protects with pylibsrtp and writes GSO runs to the same receivers; the
      report gives hallbridge/floor per back-to-back run as well as stock/hallbridge.
Receivers are lean aiortc peers in separate processes that count packets and frames without
decoding. Writes JSON (per design and N: cpu_cores of the SFU process, us_per_packet = SFU CPU
per packet delivered per site, loop_lag_p99_ms, fps_min, lost_packets, ...) and a PNG plot.

    python -m bench.fanout --sites 1,8,32,66 --seconds 20 --out bench/out/fanout.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bridge.roles import Role
from bridge.roster import load_roster
from signaling.settings import load_settings
from signaling.tokens import TokenAuthority

RECEIVER_PROCESSES = 4
JOIN_SLACK_S = 6.0  # time allowed for joins before the measurement window opens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(url: str, seconds: float = 60) -> None:
    end = time.time() + seconds
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def python(*args: str, env: dict[str, str] | None = None, nice: int = 0) -> subprocess.Popen[bytes]:
    """`python -m args...`; `nice` > 0 for load generators that must yield the CPU to the subject."""
    return subprocess.Popen([sys.executable, "-m", *args], env=env,
                            preexec_fn=(lambda: os.nice(nice)) if nice else None)


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """Terminate the benchmark's processes still running, and reap them."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def run_case(design: str, sites: int, seconds: float, workdir: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HALLBRIDGE_SECRET=secrets.token_urlsafe(48))
    settings = load_settings(env={})
    tokens = TokenAuthority(env["HALLBRIDGE_SECRET"].encode(), settings.conference.id,
                            load_roster(settings.roster_path()))
    start = time.time() + JOIN_SLACK_S + 0.1 * sites
    window = (start, start + seconds)
    stats_file = workdir / f"{design}-{sites}-sfu.json"
    sfu = python(f"bench.sfu_{design}", "--port", str(port), "--window", str(window[0]),
                 str(window[1]), "--stats", str(stats_file), env=env)
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        wait_healthy(url)
        if design == "hallbridge":
            helpers.append(python("bench.publisher", "--url", url, "--token",
                                  tokens.issue(Role.HALL), env=env))
        outs = []
        groups = min(sites, RECEIVER_PROCESSES)
        for g in range(groups):
            count = sites // groups + (1 if g < sites % groups else 0)
            token_file = workdir / f"{design}-{sites}-{g}.tokens"
            token_file.write_text("\n".join(tokens.issue(Role.OBSERVER) for _ in range(count)))
            out = workdir / f"{design}-{sites}-{g}.json"
            outs.append(out)
            helpers.append(python("bench.receivers", "--url", url, "--tokens", str(token_file),
                                  "--window", str(window[0]), str(window[1]), "--out", str(out)))
        proc = psutil.Process(sfu.pid)
        time.sleep(max(0.0, window[0] - time.time()))
        cpu_start = proc.cpu_times()
        time.sleep(max(0.0, window[1] - time.time()))
        cpu_end = proc.cpu_times()
        for h in helpers[1 if design == "hallbridge" else 0 :]:
            h.wait(timeout=120)
        receivers = [r for out in outs for r in json.loads(out.read_text())]
    finally:
        stop(*helpers, sfu)
    cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    delivered = sum(r["packets"] for r in receivers)
    sfu_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return {
        "design": design, "sites": sites, "seconds": seconds,
        "cpu_cores": round(cpu / seconds, 3),
        "us_per_packet": round(cpu * 1e6 / delivered, 2) if delivered else None,
        "loop_lag_p99_ms": round(sfu_stats.get("loop_lag_p99_ms", 0.0), 1),
        "fps_min": round(min(r["video_frames"] for r in receivers) / seconds, 1),
        "fps_mean": round(sum(r["video_frames"] for r in receivers) / seconds / len(receivers), 1),
        "lost_packets": sum(r["lost"] for r in receivers),
        "packets_per_site_per_s": round(delivered / seconds / len(receivers), 1),
        "join_s_max": round(max(r["joined_s"] or 0 for r in receivers), 2),
        "receivers": len(receivers),
        "router": sfu_stats.get("router"),
        "floor": sfu_stats.get("floor"),
        "srtp_errors": sum(r["srtp_errors"] for r in receivers),
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = {"stock": "aiortc stock sender (baseline)", "hallbridge": "hallbridge RTP forwarder",
             "floor": "floor: bare protect + GSO loop"}
    for design, style in (("stock", "o--"), ("hallbridge", "s-"), ("floor", "^:")):
        xs = sorted({r["sites"] for r in results if r["design"] == design})
        if not xs:
            continue

        def mean(key: str, n: int, design: str = design) -> float:
            return statistics.fmean(r[key] for r in results
                                    if (r["design"], r["sites"]) == (design, n) and r[key] is not None)

        label = names[design]
        left.plot(xs, [mean("cpu_cores", n) for n in xs], style, label=label)
        right.plot(xs, [mean("us_per_packet", n) for n in xs], style, label=label)
    left.set(xlabel="sites receiving the program", ylabel="SFU CPU (cores)",
             title="CPU of the SFU process")
    right.set(xlabel="sites receiving the program", ylabel="µs per packet per site",
              title="CPU per forwarded packet per site (mean of runs)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Program fan-out: VP8 1280x720 30 fps ~1.5 Mbps + Opus, loopback, 2 cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def per_pair(results: list[dict[str, Any]], repeats: int, top: str, bottom: str
             ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """top/bottom µs per packet per site, per repeat (runs back to back) and their median, per N."""
    ratios, pairs = {}, {}
    for n in sorted({r["sites"] for r in results}):
        per_repeat = []
        for repeat in range(repeats):
            a = [r for r in results if (r["design"], r["sites"], r["repeat"]) == (top, n, repeat)]
            b = [r for r in results if (r["design"], r["sites"], r["repeat"]) == (bottom, n, repeat)]
            if a and b and a[0]["us_per_packet"] and b[0]["us_per_packet"]:
                per_repeat.append(round(a[0]["us_per_packet"] / b[0]["us_per_packet"], 2))
        if per_repeat:
            pairs[str(n)] = per_repeat
            ratios[str(n)] = round(statistics.median(per_repeat), 2)
    return ratios, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", default="1,8,32,66")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--designs", default="stock,hallbridge,floor")
    parser.add_argument("--repeat", type=int, default=2, help="back-to-back pairs per N")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    designs = args.designs.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sites.split(",")):
            for repeat in range(args.repeat):
                for design in designs if repeat % 2 == 0 else designs[::-1]:
                    row = run_case(design, n, args.seconds, Path(tmp))
                    row["repeat"] = repeat
                    print(json.dumps({k: v for k, v in row.items() if k != "router"}), flush=True)
                    results.append(row)
    ratios, pairs = per_pair(results, args.repeat, "stock", "hallbridge")
    floor_ratios, floor_pairs = per_pair(results, args.repeat, "hallbridge", "floor")
    report = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
              "results": results, "baseline_over_hallbridge_us_per_packet": ratios,
              "ratio_per_back_to_back_pair": pairs,
              "hallbridge_over_floor_us_per_packet": floor_ratios,
              "hallbridge_over_floor_per_run": floor_pairs}
    args.out.write_text(json.dumps(report, indent=2))
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
