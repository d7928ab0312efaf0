"""Slides in real headless Chromium (issue 18): how long a slide change takes to show at the
remote sites, and how long a site that joins late waits for the current slide.

The hall page presents a slide deck (a 1280x720 canvas captured only when it changes, as a
shared screen is: a static slide sends next to nothing), through its share path (contentHint
detail, 1.5 Mbit/s, 15 fps); `--sites` site pages watch the program and the content. Every
video element's frames are read as they are drawn (requestVideoFrameCallback) for the code in
the slide's strip, stamped with the wall clock (one machine: one clock for every page).

- **Slide latency**: from drawing slide N in the hall page to its first drawn frame at each
  site, over `--changes` changes `--every` seconds apart (the share path's relay repeats a still
  frame every 200 ms: protocol.js keepFresh). The floor, in the same run: the same
  deck track sent straight from one peer connection to another inside the hall page (the same
  browser's encoder, loopback and decoder, no bridge, no second process): the ratio is what the
  bridge adds.
- **Late joiner**: `--joins` times a site page joins while the slide is up; from its "join"
  click to its first drawn frame of the current slide, beside the same page's first program
  frame and its media connection (the bridge asks both sources for a keyframe at a join; the
  program's camera makes frames all the time, a still slide only through the relay).

    python -m bench.slides --out bench/out/slides.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from bench.impair import CHROMIUM, FLAGS, bench_settings, write_y4m
from bench.probe import pct
from bench.sim.synthetic import STRIP_CODE_JS
from bridge.roles import Role
from signaling.app import BRIDGE, create_app

SITES = ("stttt-ha-giang", "stttt-cao-bang", "stttt-dien-bien", "stttt-son-la")
LATE = "stttt-lai-chau"
SEEN_TIMEOUT_S = 10.0

# Reads the code of a video element's every drawn frame; window.seen[id] = [[code, wall ms]…]
# (each change of code once), window.firstFrame[id] = wall ms of its first frame.
WATCH = """(id) => {
  const v = document.getElementById(id);
  window.seen = window.seen || {};
  window.firstFrame = window.firstFrame || {};
  window.seen[id] = [];
  const c = document.createElement('canvas');
  const g = c.getContext('2d', { willReadFrequently: true });
  let last = null;
  const read = () => (STRIP)(g, c.width, c.height);
  const step = () => {
    const now = Date.now();
    if (v.videoWidth) {
      if (!(id in window.firstFrame)) window.firstFrame[id] = now;
      if (c.width !== v.videoWidth) { c.width = v.videoWidth; c.height = v.videoHeight; }
      g.drawImage(v, 0, 0);
      const code = read();
      if (code !== null && code !== last) { last = code; window.seen[id].push([code, now]); }
    }
    v.requestVideoFrameCallback(step);
  };
  v.requestVideoFrameCallback(step);
  return true;
}""".replace("STRIP", STRIP_CODE_JS)

# The deck: a canvas painted only when the slide changes; window.slide(n) paints slide n and
# returns the wall clock it did. window.deck is its captured track.
DECK = """() => {
  const c = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
  const g = c.getContext('2d');
  window.slide = (n) => {
    g.fillStyle = `hsl(${(n * 47) % 360} 35% 22%)`; g.fillRect(0, 0, c.width, c.height);
    const cw = Math.floor(c.width / 16), ch = Math.floor(c.height / 12);
    for (let i = 0; i < 16; i++) {
      const on = i === 0 || (i >= 2 && i < 14 && (n >> (i - 2)) & 1);
      g.fillStyle = on ? '#ffffff' : '#000000'; g.fillRect(i * cw, 0, cw, ch);
    }
    g.fillStyle = '#ffffff'; g.font = '56px sans-serif';
    g.fillText('Báo cáo tổng kết năm 2026 — trang ' + n, 60, 300);
    g.font = '32px sans-serif';
    for (let l = 0; l < 6; l++) {
      g.fillText(`• Nội dung ${n}.${l + 1}: chuyển đổi số, hạ tầng, an toàn thông tin`, 80, 380 + l * 48);
    }
    return Date.now();
  };
  window.deck = c.captureStream(15).getVideoTracks()[0];
  window.deck.contentHint = 'detail';
  window.slide(1);  // after the capture started: a canvas is captured when it is painted
  return true;
}"""

# The floor: the deck sent from one peer connection to another inside the hall page, at the
# share path's encoding, into <video id=floor>.
FLOOR = """async () => {
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const v = Object.assign(document.createElement('video'), { id: 'floor', muted: true, autoplay: true });
  document.body.append(v);
  b.ontrack = (e) => { v.srcObject = new MediaStream([e.track]); v.play(); };
  const sender = a.addTrack(window.deck.clone());
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  const p = sender.getParameters();
  p.encodings[0].maxBitrate = 1500000; p.encodings[0].maxFramerate = 15;
  p.degradationPreference = 'maintain-resolution';
  await sender.setParameters(p);
  window.floorPcs = [a, b];
  return true;
}"""


async def open_site(browser: Browser, url: str, token: str) -> Page:
    page = await browser.new_page(viewport={"width": 960, "height": 540})
    await page.goto(f"{url}/site.html#token={token}")
    await page.evaluate(WATCH, "content")
    await page.evaluate(WATCH, "program")
    await page.evaluate("() => { window.hallbridge.client.addEventListener('media', (e) => {"
                        " if (e.detail.state === 'connected' && !window.connectedAt)"
                        " window.connectedAt = Date.now(); }); }")
    await page.evaluate("() => { window.joinAt = Date.now(); }")
    await page.click("#join")
    await page.wait_for_function("() => window.connectedAt", timeout=30_000)
    return page


async def first_seen(page: Page, element: str, code: int, since_ms: float) -> float | None:
    """Wall ms of the first drawn frame of `code` at `element` after `since_ms` (bounded wait)."""
    end = time.monotonic() + SEEN_TIMEOUT_S
    while time.monotonic() < end:
        seen = await page.evaluate(f"() => window.seen['{element}']")
        hit = next((at for c, at in seen if c == code and at >= since_ms), None)
        if hit is not None:
            return float(hit)
        await asyncio.sleep(0.05)
    return None


async def diagnose(hall: Page, site: Page) -> dict[str, Any]:
    stats = "async () => { const s = await window.hallbridge.client.contentStats(); return s &&" \
            " {frames: s.framesDecoded, w: s.frameWidth, packets: s.packetsReceived}; }"
    sent = """async () => { const r = await window.hallbridge.client.pc.getStats(); const out = [];
      for (const s of r.values()) if (s.type === 'outbound-rtp' && s.kind === 'video')
        out.push({mid: s.mid, frames: s.framesEncoded, keys: s.keyFramesEncoded, pli: s.pliCount,
                  bytes: s.bytesSent, w: s.frameWidth});
      return out; }"""
    return {"site_content": await site.evaluate(stats), "site_seen": await site.evaluate("() => window.seen"),
            "hall_sent": await hall.evaluate(sent)}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hallbridge-slides-"))
    settings = bench_settings(workdir, None)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, settings.server.host, settings.server.port).start()
    url = settings.server.base_url()
    tokens = app[BRIDGE].tokens
    ladder = settings.media.ladder()
    camera = write_y4m(workdir / "hall.y4m", ladder["high"]["width"], ladder["high"]["height"])
    bridge_ms: list[float] = []
    floor_ms: list[float] = []
    missed = 0
    joins: list[dict[str, float | None]] = []
    try:
        async with async_playwright() as pw:
            hall_browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
            sites_browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                hall = await hall_browser.new_page(viewport={"width": 1280, "height": 720})
                await hall.goto(f"{url}/hall.html#token={tokens.issue(Role.HALL)}")
                await hall.wait_for_selector("#share:not([hidden])", timeout=30_000)
                sites = [await open_site(sites_browser, url, tokens.issue(Role.SITE, s))
                         for s in SITES[:args.sites]]
                await hall.evaluate(DECK)
                await hall.evaluate(FLOOR)
                await hall.evaluate(WATCH, "floor")
                await hall.evaluate("window.hallbridge.share(window.deck, 'screen')")
                await hall.wait_for_selector("#share[data-presenting='screen']", timeout=10_000)
                for page in sites:
                    if await first_seen(page, "content", 1, 0) is None:
                        raise RuntimeError(f"no first slide at a site: {await diagnose(hall, page)}")
                await asyncio.sleep(2.0)
                for n in range(2, 2 + args.changes):
                    drawn = float(await hall.evaluate(f"window.slide({n})"))
                    floor_at = await first_seen(hall, "floor", n, drawn)
                    if floor_at is not None:
                        floor_ms.append(floor_at - drawn)
                    for page in sites:
                        at = await first_seen(page, "content", n, drawn)
                        if at is None:
                            missed += 1
                        else:
                            bridge_ms.append(at - drawn)
                    await asyncio.sleep(args.every)
                current = 1 + args.changes
                for _ in range(args.joins):
                    late = await open_site(sites_browser, url, tokens.issue(Role.SITE, LATE))
                    connected = float(await late.evaluate("window.connectedAt"))
                    clicked = float(await late.evaluate("window.joinAt"))
                    content_at = await first_seen(late, "content", current, 0)
                    if content_at is None:
                        print("late joiner without the slide:", await diagnose(hall, late), file=sys.stderr)
                    program_at = await late.evaluate("() => window.firstFrame['program'] || null")
                    joins.append({
                        "content_ms": None if content_at is None else content_at - clicked,
                        "program_ms": None if program_at is None else float(program_at) - clicked,
                        "connected_ms": connected - clicked})
                    await late.close()
                    await asyncio.sleep(1.0)
                screenshot = args.out.with_name(args.out.stem + "-site.png")
                await sites[0].screenshot(path=str(screenshot))
            finally:
                await sites_browser.close()
                await hall_browser.close()
    finally:
        await runner.cleanup()
    content_join = [j["content_ms"] for j in joins if j["content_ms"] is not None]
    program_join = [j["program_ms"] for j in joins if j["program_ms"] is not None]
    b50, f50 = pct(bridge_ms, 0.5), pct(floor_ms, 0.5)
    return {
        "sites": args.sites, "changes": args.changes, "every_s": args.every,
        "slide_latency_ms": {"p50": b50, "p95": pct(bridge_ms, 0.95), "max": max(bridge_ms, default=None),
                             "measured": len(bridge_ms), "missed": missed},
        "floor_latency_ms": {"p50": f50, "p95": pct(floor_ms, 0.95), "measured": len(floor_ms)},
        "bridge_over_floor_p50": round(b50 / f50, 2) if b50 and f50 else None,
        "late_joiner": {"joins": joins, "content_first_ms_p50": pct(content_join, 0.5),
                        "content_first_ms_max": max(content_join, default=None),
                        "program_first_ms_p50": pct(program_join, 0.5)},
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "_bridge": bridge_ms, "_floor": floor_ms,
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for values, label, colour in ((result["_floor"], "floor: peer to peer in one page", "#888888"),
                                  (result["_bridge"], "through the bridge, at each site", "#c0803a")):
        xs = sorted(values)
        axes[0].plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=label, color=colour)
    axes[0].set(title="slide change → drawn at the site", xlabel="ms", ylabel="fraction of changes")
    axes[0].legend(loc="lower right")
    joins = result["late_joiner"]["joins"]
    idx = range(len(joins))
    for offset, key, label, colour in ((-0.27, "connected_ms", "media connected", "#999999"),
                                       (0.0, "program_ms", "program", "#4a7fb5"),
                                       (0.27, "content_ms", "current slide", "#c0803a")):
        axes[1].bar([i + offset for i in idx], [j[key] or 0 for j in joins], 0.27, label=label, color=colour)
    axes[1].axhline(2000, color="red", linewidth=1, linestyle="--")
    axes[1].set(title="late joiner: join click → first frame", xlabel="join", ylabel="ms")
    axes[1].legend()
    lat = result["slide_latency_ms"]
    fig.suptitle(f"Slides: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms at {result['sites']} sites "
                 f"(x{result['bridge_over_floor_p50']} the floor)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=3, choices=range(1, len(SITES) + 1))
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--every", type=float, default=1.5, help="seconds between slide changes")
    parser.add_argument("--joins", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(main_async(args))
    plot(result, args.out.with_suffix(".png"))
    report = {k: v for k, v in result.items() if not k.startswith("_")}
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k != "late_joiner"}, indent=2))
    print(json.dumps(report["late_joiner"], indent=2))


if __name__ == "__main__":
    main()
