"""Poor provincial lines, in real headless Chromium (issue 17): the hall page publishes its two
layers, witness site pages on clean lines and one impaired site page watch the program, one
scenario after another. The receivers' jitter buffer, NACK, FEC and bandwidth estimate are the
browser's own; the bridge is this process's.

It runs in a network namespace of its own (it re-runs itself under `unshare --net`, root as on
CI): every page's candidates are 127.0.0.1 there, so the impaired page's line is told apart by
the two UDP ports of its media connection (bench.netem `Site(port=bridge, peer=page)`), both ways.
Between scenarios the impaired page reloads (a fresh connection, a fresh estimate).

Per scenario, from the pages' getStats and the router: the impaired site's layer over time
(when it went low, when it was back on high), its decoded frame rate, freezes per minute and
audio concealment, and the witnesses' fps, freezes and layer. Delay and jitter take the kernel's
sch_netem where it has one; where not (this project's CI kernel), the impaired page's flow goes
through a user-space delay line (bench.delayline) and the result records what it passed.

    python -m bench.impair --out bench/out/impair.json            # every scenario, 3 witnesses
    python -m bench.impair --scenarios cap800 --witnesses 1 --seconds 20 --out /tmp/cap.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from bench.fanout import free_port
from bench.netem import Impairment, Impairments, NetemUnavailable, Site, netem_available
from bench.sim.synthetic import render_card, speech_like_wav
from bridge.roles import Role
from signaling.app import BRIDGE, create_app
from signaling.settings import Settings, load_settings

CHROMIUM = os.environ.get("HALLBRIDGE_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
IMPAIRED = "stttt-lai-chau"
WITNESSES = ("stttt-ha-giang", "stttt-cao-bang", "stttt-dien-bien")
SAMPLE_S = 0.5
SETTLE_S = 8.0  # after a scenario's impairment, before its steady-state window is counted
READ = """async () => {
  const c = window.hallbridge && window.hallbridge.client;
  if (!c || !c.pc) return null;
  const v = await c.slotStats('program-video'), a = await c.slotStats('program-audio');
  return {t: performance.now() / 1000,
          frames: v ? v.framesDecoded || 0 : 0, freezes: v ? v.freezeCount || 0 : 0,
          freeze_s: v ? v.totalFreezesDuration || 0 : 0, height: v ? v.frameHeight || 0 : 0,
          concealed: a ? a.concealedSamples || 0 : 0, samples: a ? a.totalSamplesReceived || 0 : 0,
          held: c.playout ? c.playout.held : null, nacks: v ? v.nackCount || 0 : 0,
          bytes: v ? v.bytesReceived || 0 : 0};
}"""
RAMP_TIMEOUT_S = 90.0  # the hall's browser climbs from ~300 kbit/s at about 8 %/s
VIDEO_STATS = """async () => {
  const v = await window.hallbridge.client.slotStats('program-video');
  if (!v) return null;
  const keep = ['packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount', 'framesDecoded',
    'framesDropped', 'keyFramesDecoded', 'freezeCount', 'totalFreezesDuration', 'jitterBufferDelay',
    'jitterBufferTargetDelay', 'jitterBufferMinimumDelay', 'jitterBufferEmittedCount',
    'retransmittedPacketsReceived', 'fecPacketsReceived', 'framesReceived', 'jitter'];
  return Object.fromEntries(keep.filter((k) => k in v).map((k) => [k, v[k]]));
}"""
HALL_OUT = """async () => {
  const report = await window.hallbridge.client.pc.getStats();
  return [...report.values()].filter((s) => s.type === 'outbound-rtp' && s.kind === 'video').map((s) => ({
    mid: s.mid, height: s.frameHeight, fps: s.framesPerSecond,
    kbps: Math.round((s.targetBitrate || 0) / 1000),
    limited: s.qualityLimitationReason}));
}"""
BRIDGE_PORT = """async () => {
  const report = await window.hallbridge.client.pc.getStats();
  const transport = [...report.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const pair = transport && report.get(transport.selectedCandidatePairId);
  const remote = pair && report.get(pair.remoteCandidateId);
  const local = pair && report.get(pair.localCandidateId);
  return remote && local ? {bridge: remote.port, page: local.port} : null;
}"""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    line: Impairment
    lift_after_s: float | None = None  # the impairment is lifted this long in (None: never)
    targets: tuple[tuple[str, str, float], ...] = ()  # (metric, "min"|"max", bound)


SCENARIOS = {s.name: s for s in (
    Scenario("loss2", "2 % loss, 40 ms each way", Impairment(delay_ms=40, loss_pct=2),
             targets=(("fps", "min", 25), ("freezes_per_min", "max", 1), ("concealed_pct", "max", 2))),
    Scenario("loss5", "5 % loss, 75 ± 15 ms each way",
             Impairment(delay_ms=75, jitter_ms=15, loss_pct=5),
             targets=(("fps", "min", 20), ("freezes_per_min", "max", 2), ("concealed_pct", "max", 5))),
    Scenario("cap800", "800 kbps cap", Impairment(rate_kbit=800),
             targets=(("low_within_s", "max", 5), ("fps", "min", 25),
                      ("freezes_after_switch", "max", 0), ("concealed_pct", "max", 1))),
    Scenario("cap400loss2", "400 kbps cap + 2 % loss", Impairment(rate_kbit=400, loss_pct=2),
             targets=(("low_within_s", "max", 5), ("fps", "min", 15), ("concealed_pct", "max", 3))),
    Scenario("cap300lift", "10 s at 300 kbps, then the cap lifted", Impairment(rate_kbit=300),
             lift_after_s=10.0, targets=(("low_within_s", "max", 5), ("high_after_lift_s", "max", 20))),
)}
WITNESS_TARGETS = (("fps", "min", 29), ("freezes", "max", 0), ("high_throughout", "min", 1))


def write_y4m(path: Path, width: int, height: int, frames: int = 60) -> Path:
    """The hall's camera: a card with a moving, noisy patch (an encoder has work on every frame,
    as with people moving in a hall), 30 fps."""
    rng = np.random.default_rng(17)
    card = render_card("Hội trường", 4000, width, height)
    pw, ph = width // 4, height // 4
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for n in range(frames):
            frame = card.copy()
            x = (n * width // frames) % (width - pw)
            y = height // 3
            patch = frame[y:y + ph, x:x + pw].astype(np.int16) + rng.integers(-12, 13, (ph, pw))
            frame[y:y + ph, x:x + pw] = np.clip(patch, 16, 235).astype(np.uint8)
            f.write(b"FRAME\n" + frame.tobytes())
    return path


def bench_settings(workdir: Path, by_estimate: bool | None) -> Settings:
    base = load_settings(env={})
    media = base.media if by_estimate is None else replace(base.media, layers_by_estimate=by_estimate)
    return replace(base, server=replace(base.server, host="127.0.0.1", port=free_port()), media=media,
                   tokens=replace(base.tokens, secret_file=str(workdir / "secret"),
                                  revoked_file=str(workdir / "revoked")),
                   recording=replace(base.recording, directory=str(workdir / "recordings")))


class Run:
    def __init__(self, app: web.Application, url: str) -> None:
        self.app, self.url = app, url

    @property
    def router(self) -> Any:
        return self.app[BRIDGE].hub.router

    def token(self, role: Role, site: str | None = None) -> str:
        return str(self.app[BRIDGE].tokens.issue(role, site))

    async def open_site(self, browser: Browser, site: str) -> Page:
        page = await browser.new_page(viewport={"width": 960, "height": 540})
        await page.goto(f"{self.url}/site.html#token={self.token(Role.SITE, site)}")
        await page.click("#join")
        await page.wait_for_function(
            "async () => { const s = await window.hallbridge.client.programStats();"
            " return s && s.framesDecoded > 5; }", timeout=30_000)
        return page

    def program_kbps(self) -> float:
        """What the hall's high layer carries into the bridge now (kbit/s, over the last tick)."""
        return float(self.router.publisher_rate(self.router.scene.hall)) / 1000

    async def program_ramped(self, kbps: float, timeout_s: float) -> float:
        """Wait (bounded) until the hall's browser has raised its high layer to `kbps`: it starts
        low and climbs with the bridge's estimate of its line; a cap is only a cap on a program
        that needs more. The seconds waited."""
        start = time.monotonic()
        while self.program_kbps() < kbps and time.monotonic() - start < timeout_s:
            await asyncio.sleep(0.5)
        return round(time.monotonic() - start, 1)

    def receiving(self, site: str) -> str | None:
        value = self.router.layer_of(site)["receiving"]
        return None if value is None else str(value)


def rates(first: dict[str, float], last: dict[str, float]) -> dict[str, float]:
    dt = max(1e-6, last["t"] - first["t"])
    samples = last["samples"] - first["samples"]
    return {"fps": round((last["frames"] - first["frames"]) / dt, 1),
            "freezes": int(last["freezes"] - first["freezes"]),
            "freezes_per_min": round((last["freezes"] - first["freezes"]) * 60 / dt, 2),
            "freeze_s": round(last["freeze_s"] - first["freeze_s"], 2),
            "concealed_pct": round(100 * (last["concealed"] - first["concealed"]) / samples, 2)
            if samples > 0 else None}


async def run_scenario(run: Run, lines: Impairments, scenario: Scenario, impaired: Page,
                       witnesses: dict[str, Page], seconds: float) -> dict[str, Any]:
    ports = await impaired.evaluate(BRIDGE_PORT)
    flow = Site(port=ports["bridge"], peer=ports["page"])
    line, skipped = scenario.line, None
    if line.delayed() and not lines.can_delay(flow):
        skipped = "delay and jitter not emulated: no sch_netem and no nftables here"
        line = replace(line, delay_ms=0.0, jitter_ms=0.0)
    pages = {IMPAIRED: impaired, **witnesses}
    samples: dict[str, list[dict[str, float]]] = {site: [] for site in pages}
    layers: list[tuple[float, str | None]] = []
    estimates: list[int | None] = []  # the impaired site's REMB, kbit/s, beside each layer sample
    witness_layers: dict[str, set[str | None]] = {site: set() for site in witnesses}
    start = time.monotonic()
    lines.set(flow, line)
    lifted_at: float | None = None
    duration = seconds + (scenario.lift_after_s or 0.0)
    try:
        while (now := time.monotonic() - start) < duration:
            if scenario.lift_after_s is not None and lifted_at is None and now >= scenario.lift_after_s:
                lines.set(flow, Impairment())
                lifted_at = now
            layers.append((round(now, 2), run.receiving(IMPAIRED)))
            estimate = run.router.layer_of(IMPAIRED)["estimate_bps"]
            estimates.append(None if estimate is None else round(estimate / 1000))
            for site in witnesses:
                witness_layers[site].add(run.receiving(site))
            for site, page in pages.items():
                got = await page.evaluate(READ)
                if got is not None:
                    samples[site].append({**got, "at": now})
            await asyncio.sleep(SAMPLE_S)
        video_end = await impaired.evaluate(VIDEO_STATS)
    finally:
        lines.set(flow, Impairment())
    low_at = next((t for t, layer in layers if layer == "low"), None)
    changes = list(run.router.layers.sites[IMPAIRED].changes) if IMPAIRED in run.router.layers.sites else []
    # when the allocator chose low (the switch itself waits for the low layer's keyframe)
    decided = next((round(at - start, 2) for at, layer, _ in changes
                    if layer == "low" and at >= start), None)
    high_after = None
    if lifted_at is not None:
        high_after = next((t - lifted_at for t, layer in layers if t >= lifted_at and layer == "high"
                           and low_at is not None and t > low_at), None)
    mine = samples[IMPAIRED]
    steady = [s for s in mine if s["at"] >= min(SETTLE_S, duration / 2)]
    result: dict[str, Any] = {
        "title": scenario.title, "line": {"delay_ms": line.delay_ms, "jitter_ms": line.jitter_ms,
                                          "loss_pct": line.loss_pct, "rate_kbit": line.rate_kbit},
        "ports": ports, "not_emulated": skipped,
        "delay_line": None if netem_available() or not line.delayed() else lines.delay_counts.get(flow),
        "low_within_s": low_at, "high_after_lift_s": None if high_after is None else round(high_after, 2),
        "end_layer": layers[-1][1] if layers else None,
        "low_decided_s": decided, "changes": changes,
        "layers": layers, "estimate_kbps": estimates,
        "timeline": [{"at": round(x["at"], 1), "frames": x["frames"], "freezes": x["freezes"],
                      "height": x["height"], "held_ms": x.get("held"), "bytes": x.get("bytes")}
                     for x in mine],
        "playout_held_ms": max((x["held"] for x in mine if x.get("held")), default=None),
        "heights": sorted({int(s["height"]) for s in mine}),
        "video_inbound_at_end": video_end,
    }
    if len(steady) >= 2:
        result.update(rates(steady[0], steady[-1]))
    if low_at is not None:
        after = [s for s in mine if s["at"] >= low_at + 1.0]
        if len(after) >= 2:
            result["freezes_after_switch"] = rates(after[0], after[-1])["freezes"]
    result["witnesses"] = {}
    for site in witnesses:
        got = samples[site]
        entry: dict[str, Any] = rates(got[0], got[-1]) if len(got) >= 2 else {}
        entry["layers"] = sorted(str(x) for x in witness_layers[site])
        entry["high_throughout"] = int(witness_layers[site] == {"high"})
        entry["changes"] = run.router.layers.sites[site].changes if site in run.router.layers.sites else []
        result["witnesses"][site] = entry
    result["verdict"] = verdict(result, scenario.targets)
    for site in witnesses:
        result["witnesses"][site]["verdict"] = verdict(result["witnesses"][site], WITNESS_TARGETS)
    return result


def verdict(result: dict[str, Any], targets: tuple[tuple[str, str, float], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, kind, bound in targets:
        value = result.get(metric)
        ok = value is not None and (value >= bound if kind == "min" else value <= bound)
        out[metric] = {"value": value, kind: bound, "met": ok}
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hallbridge-impair-"))
    settings = bench_settings(workdir, args.by_estimate)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port).start()
    run = Run(app, settings.server.base_url())
    ladder = settings.media.ladder()
    hall_camera = write_y4m(workdir / "hall.y4m", ladder["high"]["width"], ladder["high"]["height"])
    hall_voice = speech_like_wav(str(workdir / "hall.wav"))  # speech, so its Opus can carry FEC
    results: dict[str, Any] = {"scenarios": {}, "witnesses": args.witnesses, "seconds": args.seconds,
                               "layers_by_estimate": settings.media.layers_by_estimate,
                               "netem": netem_available_here(), "ladder": ladder}
    try:
        async with async_playwright() as pw:
            hall_browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=[*FLAGS, f"--use-file-for-fake-video-capture={hall_camera}",
                      f"--use-file-for-fake-audio-capture={hall_voice}"])
            sites_browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                hall = await hall_browser.new_page(viewport={"width": 1280, "height": 720})
                await hall.goto(f"{run.url}/hall.html#token={run.token(Role.HALL)}")
                witnesses = {site: await run.open_site(sites_browser, site)
                             for site in WITNESSES[:args.witnesses]}
                ramp = 0.8 * ladder["high"]["maxBitrate"] / 1000
                results["program_ramp_s"] = await run.program_ramped(ramp, RAMP_TIMEOUT_S)
                with Impairments() as lines:
                    for name in args.scenarios:
                        impaired = await run.open_site(sites_browser, IMPAIRED)
                        await asyncio.sleep(args.warmup)  # its estimate settles on a clean line
                        print(f"impair: {name} …", file=sys.stderr)
                        program_kbps = round(run.program_kbps())
                        results["scenarios"][name] = await run_scenario(
                            run, lines, SCENARIOS[name], impaired, witnesses, args.seconds)
                        results["scenarios"][name]["hall_sends"] = await hall.evaluate(HALL_OUT)
                        results["scenarios"][name]["program_kbps_at_start"] = program_kbps
                        print(json.dumps({k: v for k, v in results["scenarios"][name].items()
                                          if k != "layers"}, ensure_ascii=False), file=sys.stderr)
                        await impaired.close()
            finally:
                await sites_browser.close()
                await hall_browser.close()
    finally:
        await runner.cleanup()
    return results


def netem_available_here() -> bool:
    try:
        with Impairments():
            return netem_available()
    except (RuntimeError, NetemUnavailable):
        return False


def plot(results: dict[str, Any], path: Path) -> None:
    """Per scenario, the impaired site over time: the fps it decodes and the bitrate it receives,
    its low-layer stretches shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["scenarios"])
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.4 * len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        r = results["scenarios"][name]
        line = r["timeline"]
        pairs = [(a, b) for a, b in pairwise(line) if b["at"] > a["at"]]
        mid = [(a["at"] + b["at"]) / 2 for a, b in pairs]
        ax.plot(mid, [(b["frames"] - a["frames"]) / (b["at"] - a["at"]) for a, b in pairs],
                color="tab:green", lw=1.2, label="fps decoded")
        ax.set_ylim(0, 35)
        ax.set_ylabel("fps", fontsize=8, color="tab:green")
        rate = ax.twinx()
        rate.plot(mid, [8 * ((b.get("bytes") or 0) - (a.get("bytes") or 0)) / (b["at"] - a["at"]) / 1000
                        for a, b in pairs], color="tab:orange", lw=1.0, label="kbit/s received")
        rate.set_ylim(bottom=0)
        rate.set_ylabel("kbit/s", fontsize=8, color="tab:orange")
        layers, end = r["layers"], (line[-1]["at"] if line else 0)
        for (t, layer), nxt in zip(layers, [*layers[1:], (end, None)], strict=True):
            if layer == "low":
                ax.axvspan(t, nxt[0], color="0.85", lw=0)
        w = [f"{e.get('fps', '?')} fps/{e.get('freezes', '?')} fr" for e in r["witnesses"].values()]
        note = f" ({r['not_emulated']})" if r["not_emulated"] else ""
        ax.set_title(f"{r['title']}{note}: {r.get('fps', '?')} fps, {r.get('freezes_per_min', '?')} "
                     f"freezes/min, audio concealed {r.get('concealed_pct', '?')} %; "
                     f"witnesses {', '.join(w)}", fontsize=8)
        ax.set_xlabel("s into the scenario (shaded: on the low layer)", fontsize=8)
    fig.suptitle("The impaired site: fps decoded (green), program kbit/s received (orange), low layer "
                 "shaded (real Chromium pages through hallbridge)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--witnesses", type=int, default=3, choices=range(0, len(WITNESSES) + 1))
    parser.add_argument("--seconds", type=float, default=30.0, help="each scenario's length")
    parser.add_argument("--warmup", type=float, default=8.0, help="the impaired page's clean start")
    parser.add_argument("--by-estimate", dest="by_estimate", action=argparse.BooleanOptionalAction,
                        default=None, help="REMB chooses layers (default: configs/hallbridge.toml)")
    args = parser.parse_args()
    if os.environ.get("HALLBRIDGE_IMPAIR_NETNS") != "1":  # into a namespace of its own
        env = {**os.environ, "HALLBRIDGE_IMPAIR_NETNS": "1"}
        sys.exit(subprocess.run(["unshare", "--net", sys.executable, "-m", "bench.impair", *sys.argv[1:]],
                                env=env).returncode)
    results = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
