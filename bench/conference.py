"""Conference benchmark: the whole bridge at full scale on this machine.

The hallbridge server, a publisher joined as the main hall (VP8 1280x720 ~1.5 Mbps + Opus, a clip
encoded once), N lean sites in separate processes (each publishing a thumbnail, counting the
program without decoding it) and a moderator here that switches the program between sites and
sends a command every half second. Writes JSON and a PNG: join time per site (all N joined at once), server
CPU (cores) and RSS per site, event-loop lag p99, program frames per site per second, switch
latency from the decision to the first packet of the new source at each site, command round
trip, errors.

With `--stampede`, the N sites all join at once in the middle of the measured window (as they do when
a restarted server comes back), while `WITNESSES` observers that were in before keep watching the
program: their fps over the whole window shows whether the stampede disturbs the sites already in,
and the sites' join times whether all N are live within 10 s.

    python -m bench.conference --sites 66 --out bench/out/conference.json
    python -m bench.conference --sites 66 --stampede --out bench/out/stampede.json

With `--compare-layers`, two runs one after the other: the hall sending one layer (its low line
offered inactive), then two, with `--poor` sites (a third by default) marked "đường truyền yếu"
by a technician so that they receive the low layer; the report gives both and what the second
layer costs the server (the ratio of its cores).

    python -m bench.conference --sites 66 --compare-layers --out bench/out/layers.json

With `--compare-content`, two runs one after the other: nobody presenting (every site's content
line idle), then the hall presenting a content clip (bench.publisher --content: 1920x1080, 30
fps, ~1.2 Mbit/s, a video in the slides — the most packets content brings) that every site
receives beside the program; the report gives both and what the content costs the server.

    python -m bench.conference --sites 66 --compare-content --out bench/out/content.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import socketio

from bench.fanout import free_port, python, stop, wait_healthy
from bench.probe import pct
from bridge.roles import Role
from bridge.roster import load_roster
from signaling.settings import load_settings
from signaling.tokens import TokenAuthority

PROCESSES = 4
# The simulated sites and the hall publisher stand in for 67 machines of their own: here they share
# two cores with the server, so they run at a lower priority and yield the CPU to it (and to the
# moderator), as they would not compete with it in a real meeting.
GENERATOR_NICE = 10
SWITCH_EVERY_S = 4.0
COMMAND_EVERY_S = 0.5  # a moderator command (mute) between switches: its round trip is measured
WITNESSES = 4  # --stampede: program receivers in before the sites rush in
STAMPEDE_AFTER_S = 5.0  # into the window


async def mark_poor(url: str, token: str, sites: list[str]) -> None:
    """A technician marks these sites' lines poor: they receive the low layer."""
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, auth={"token": token}, transports=["websocket"])
    try:
        for site in sites:
            reply = await sio.call("line:set", {"site": site, "poor": True}, timeout=10)
            if not reply.get("ok"):
                raise RuntimeError(f"line:set {site}: {reply}")
    finally:
        await sio.disconnect()


async def moderate(url: str, token: str, sites: list[str], hall: str, window: tuple[float, float],
                   switches: list[tuple[float, str]], rtts: list[tuple[float, float]]) -> None:
    """Switch the program every few seconds, mute a site between; `rtts` gets (sent, acked) wall
    times of every command, in the order sent."""
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, auth={"token": token}, transports=["websocket"])
    rng = random.Random(66)
    await asyncio.sleep(max(0.0, window[0] + 2 - time.time()))
    target = hall
    while time.time() < window[1] - SWITCH_EVERY_S:
        target = rng.choice(sites) if target == hall else hall
        at = time.time()
        reply = await sio.call("program:set", {"site": target}, timeout=10)
        rtts.append((at, time.time()))
        if reply.get("ok"):
            switches.append((at, target))
        for _ in range(int(SWITCH_EVERY_S / COMMAND_EVERY_S)):  # the moderator's other work
            await asyncio.sleep(COMMAND_EVERY_S)
            sent = time.time()
            await sio.call("mute:set", {"site": rng.choice(sites), "muted": True}, timeout=10)
            rtts.append((sent, time.time()))
    await sio.disconnect()


def split(rtts: list[tuple[float, float]], handled: list[list[float]]) -> dict[str, Any]:
    """Where a command's round trip goes: to the server's handler, inside it, back to the client
    (wall clocks of one machine; the server logs the same commands in the same order)."""
    if len(rtts) != len(handled):
        return {"error": f"{len(rtts)} commands sent, {len(handled)} handled"}
    parts = [(start - sent, seconds, acked - start - seconds)
             for (sent, acked), (start, seconds) in zip(rtts, handled, strict=True)]
    ms = {name: [1000 * p[i] for p in parts] for i, name in enumerate(("to_server", "in_server", "back"))}
    slowest = sorted(range(len(parts)), key=lambda i: sum(parts[i]), reverse=True)[:5]
    return {**{name: {"p50": round(pct(v, 0.5) or 0, 2), "p99": round(pct(v, 0.99) or 0, 2)}
               for name, v in ms.items()},
            "slowest": [{"sent_s": round(rtts[i][0] - rtts[0][0], 2),
                         **{name: round(v[i], 1) for name, v in ms.items()}} for i in slowest]}


def run(n_sites: int, seconds: float, workdir: Path, stampede: bool = False, layers: int = 2,
        poor: int = 0, content: bool = False) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HALLBRIDGE_SECRET=secrets.token_urlsafe(48))
    settings = load_settings(env={})
    roster = load_roster(settings.roster_path())
    tokens = TokenAuthority(env["HALLBRIDGE_SECRET"].encode(), settings.conference.id, roster)
    site_ids = [s.id for s in roster.remote_sites()][:n_sites]
    start_at = time.time() + 12  # every process has its clip encoded by then
    window = (start_at + 8, start_at + 8 + seconds)
    stats_file = workdir / "sfu.json"
    server = python("bench.sfu_hallbridge", "--port", str(port), "--window", str(window[0]),
                    str(window[1]), "--stats", str(stats_file), env=env)
    helpers, outs = [], []
    try:
        wait_healthy(url)
        hall_token = tokens.issue(Role.HALL)
        helpers.append(python("bench.publisher", "--url", url, "--token", hall_token,
                              "--layers", str(layers), *(["--content"] if content else []),
                              env=env, nice=GENERATOR_NICE))
        groups = [site_ids[g::PROCESSES] for g in range(PROCESSES)]
        sites_at = window[0] + STAMPEDE_AFTER_S if stampede else start_at
        witness_out = workdir / "witnesses.json"
        if stampede:
            token_file = workdir / "witnesses.tokens"
            token_file.write_text("\n".join(tokens.issue(Role.OBSERVER) for _ in range(WITNESSES)))
            helpers.append(python("bench.receivers", "--url", url, "--tokens", str(token_file),
                                  "--window", str(window[0]), str(window[1]), "--out",
                                  str(witness_out), nice=GENERATOR_NICE))
        for g, group in enumerate(groups):
            token_file = workdir / f"sites-{g}.tokens"
            token_file.write_text("\n".join(tokens.issue(Role.SITE, s) for s in group))
            outs.append(workdir / f"sites-{g}.json")
            helpers.append(python("bench.lean_sites", "--url", url, "--tokens", str(token_file),
                                  "--window", str(window[0]), str(window[1]), "--start-at",
                                  str(sites_at), "--out", str(outs[-1]), nice=GENERATOR_NICE))
        proc = psutil.Process(server.pid)
        switches: list[tuple[float, str]] = []
        rtts: list[tuple[float, float]] = []
        time.sleep(max(0.0, window[0] - time.time()))
        cpu0, rss = proc.cpu_times(), []
        loop = asyncio.new_event_loop()
        if poor:
            loop.run_until_complete(mark_poor(url, tokens.issue(Role.TECHNICIAN), site_ids[:poor]))
        task = loop.create_task(moderate(url, tokens.issue(Role.MODERATOR), site_ids, roster.hall.id,
                                         window, switches, rtts))
        while not task.done():
            loop.run_until_complete(asyncio.sleep(1.0))
            rss.append(proc.memory_info().rss)
        loop.run_until_complete(task)
        loop.close()
        time.sleep(max(0.0, window[1] - time.time()))
        cpu1 = proc.cpu_times()
        for h in helpers[1:]:
            h.wait(timeout=180)
        sites = [row for out in outs for row in json.loads(out.read_text())]
        witnesses = json.loads(witness_out.read_text()) if stampede else []
    finally:
        stop(*helpers, server)
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    sfu = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    latencies = []
    for at, target in switches:
        for site_id, row in zip([s for g in groups for s in g], sites, strict=True):
            if site_id == target:
                continue
            after = [t for t in row["switches"] if at <= t < at + SWITCH_EVERY_S]
            if after:
                latencies.append(after[0] - at)
    joins = [r["join_s"] for r in sites if r["join_s"] is not None]
    # a site counts frames from when it joined (in a stampede that is inside the window)
    fps = [r["frames"] / max(1.0, window[1] - max(window[0], r["joined_at"] or window[1]))
           for r in sites]
    commands = [acked - sent for sent, acked in rtts]  # the moderator's commands under full load
    content_fps = [r["content_frames"] / max(1.0, window[1] - max(window[0], r["joined_at"] or window[1]))
                   for r in sites]
    return {
        "sites": n_sites, "seconds": seconds, "layers": layers, "poor_lines": poor,
        "content": content,
        "content_fps": {"min": round(min(content_fps), 1) if content_fps else None,
                        "mean": round(sum(content_fps) / len(content_fps), 1) if content_fps else None},
        "joined": len(joins), "join_s": {"p50": pct(joins, 0.5), "p95": pct(joins, 0.95),
                                         "max": max(joins) if joins else None},
        "server_cpu_cores": round(cpu / seconds, 3),
        "server_rss_mib_per_site": round(max(rss) / (1 << 20) / n_sites, 2) if rss else None,
        "loop_lag_p99_ms": round(sfu.get("loop_lag_p99_ms", 0.0), 1),
        "program_fps": {"min": round(min(fps), 1) if fps else None,
                        "mean": round(sum(fps) / len(fps), 1) if fps else None},
        "switches": len(switches),
        "switch_latency_s": {"p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99),
                             "measured": len(latencies)},
        "command_rtt_s": {"p50": pct(commands, 0.5), "p99": pct(commands, 0.99), "count": len(commands)},
        "errors": [e for r in sites for e in r["errors"]],
        "command_rtt_split_ms": split(rtts, sfu.get("commands", [])),
        "command_handled_in_server_ms": sfu.get("handled_ms"),
        "gc_pause_ms": sfu.get("gc_pause_ms"),
        "router": sfu.get("router"),
        **({"stampede": {"sites_join_at_s": STAMPEDE_AFTER_S, "witnesses": len(witnesses),
                         "witness_fps_min": round(min(w["video_frames"] for w in witnesses) / seconds, 1)
                         if witnesses else None,
                         "witness_lost": sum(w["lost"] for w in witnesses),
                         "witness_counts": witnesses,
                         "all_live_within_s": round(max(joins), 2) if len(joins) == n_sites else None}}
           if stampede else {}),
        "_joins": joins, "_fps": fps, "_latencies": latencies,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].hist(result["_joins"], bins=20, color="#4a7fb5")
    axes[0].set(title="join time per site", xlabel="seconds", ylabel="sites")
    axes[1].bar(range(len(result["_fps"])), result["_fps"], color="#3a9b5c")
    axes[1].axhline(29, color="red", linewidth=1, linestyle="--")
    axes[1].set(title="program frames per second, each site", xlabel="site", ylabel="fps")
    axes[2].hist([x * 1000 for x in result["_latencies"]], bins=30, color="#c0803a")
    axes[2].set(title="switch latency (decision → new source)", xlabel="ms", ylabel="site-switches")
    cores = result["server_cpu_cores"]
    fig.suptitle(f"Conference benchmark: {result['sites']} sites, server {cores} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def compare_layers(args: argparse.Namespace) -> None:
    poor = args.sites // 3 if args.poor is None else args.poor
    runs = []
    for layers, marked in ((1, 0), (2, poor)):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run(args.sites, args.seconds, Path(tmp), layers=layers, poor=marked))
    one, two = ({k: v for k, v in r.items() if not k.startswith("_")} for r in runs)
    report = {"one_layer": one, "two_layers": two,
              "second_layer_cost": {
                  "server_cores": round(two["server_cpu_cores"] - one["server_cpu_cores"], 3),
                  "ratio": round(two["server_cpu_cores"] / one["server_cpu_cores"], 3),
                  "poor_lines": poor},
              "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}}
    args.out.write_text(json.dumps(report, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = ["one layer", f"two layers\n({poor} sites low)"]
    axes[0].bar(labels, [one["server_cpu_cores"], two["server_cpu_cores"]], color=["#4a7fb5", "#c0803a"])
    axes[0].set(title="server CPU", ylabel="cores")
    axes[1].bar(range(len(runs[1]["_fps"])), runs[1]["_fps"], color="#3a9b5c")
    axes[1].axhline(29, color="red", linewidth=1, linestyle="--")
    axes[1].set(title="program fps per site, two layers", xlabel="site", ylabel="fps")
    fig.suptitle(f"The second program layer: {args.sites} lean sites, "
                 f"x{report['second_layer_cost']['ratio']} server cores")
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=110)
    print(json.dumps(report["second_layer_cost"]))


def compare_content(args: argparse.Namespace) -> None:
    runs = []
    for content in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run(args.sites, args.seconds, Path(tmp), content=content))
    off, on = ({k: v for k, v in r.items() if not k.startswith("_")} for r in runs)
    report = {"content_off": off, "content_on": on,
              "content_cost": {
                  "server_cores": round(on["server_cpu_cores"] - off["server_cpu_cores"], 3),
                  "ratio": round(on["server_cpu_cores"] / off["server_cpu_cores"], 3),
                  "content_fps_mean": on["content_fps"]["mean"],
                  "program_fps_min_on": on["program_fps"]["min"]},
              "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}}
    args.out.write_text(json.dumps(report, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].bar(["nobody presents", "the hall presents"], [off["server_cpu_cores"], on["server_cpu_cores"]],
                color=["#4a7fb5", "#c0803a"])
    axes[0].set(title="server CPU", ylabel="cores")
    axes[1].bar(range(len(runs[1]["_fps"])), runs[1]["_fps"], color="#3a9b5c", label="program")
    axes[1].axhline(29, color="red", linewidth=1, linestyle="--")
    axes[1].set(title="program fps per site while the hall presents", xlabel="site", ylabel="fps")
    fig.suptitle(f"Content beside the program: {args.sites} lean sites, "
                 f"x{report['content_cost']['ratio']} server cores")
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=110)
    print(json.dumps(report["content_cost"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=66)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--stampede", action="store_true",
                        help="the sites join all at once inside the window, witnesses watch")
    parser.add_argument("--compare-layers", action="store_true",
                        help="one run with one program layer, then one with two")
    parser.add_argument("--poor", type=int, default=None,
                        help="sites marked poor in the two-layer run (default: a third)")
    parser.add_argument("--compare-content", action="store_true",
                        help="one run with nobody presenting, then one with the hall presenting")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.compare_layers:
        compare_layers(args)
        return
    if args.compare_content:
        compare_content(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.sites, args.seconds, Path(tmp), args.stampede)
    plot(result, args.out.with_suffix(".png"))
    report = {k: v for k, v in result.items() if not k.startswith("_")}
    report["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
