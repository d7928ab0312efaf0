"""Join time by path, in one run: plain HTTP vs HTTPS/WSS, direct UDP vs TURN over TCP (coturn).

One process serves two hallbridge servers at once (plain and TLS, each with a simulated hall on
the program and a real coturn as its TURN server); real headless Chromium joins as a site, the
paths taken in turn (so a drift of the machine's speed is spread over all of them), `--trials`
times each:
  plain-direct (the baseline), tls-direct, plain-turn-tcp (`?ice=relay`), tls-turn-tcp.
Two times per join: `signaling` = opening the page until its welcome (page load, Socket.IO
connect: where TLS costs) and `media` = pressing Join until the first program frame is decoded
(offer/answer, ICE, DTLS, first keyframe: where TURN costs). Reports medians, p90 and each path's
ratio to the baseline; writes JSON and a PNG.

    python -m bench.join_paths --trials 8 --out bench/out/join_paths.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from signaling.app import BRIDGE, create_app
from signaling.settings import Settings, load_settings
from signaling.tls import fingerprints, server_context, write_certificate

CHROMIUM = os.environ.get("HALLBRIDGE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
         "--allow-loopback-in-peer-connection", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
TURN_SECRET = "join-paths-bench-" + os.urandom(8).hex()
SITE = "stttt-ha-noi"
WELCOMED = "() => !!(window.hallbridge && window.hallbridge.client && window.hallbridge.client.mediaPlan)"
DECODED = ("async () => { const s = await window.hallbridge.client.programStats();"
           " return !!s && s.framesDecoded > 0; }")
LOCAL_TYPE = """async () => {
  const pc = window.hallbridge.client.pc;
  if (!pc) return "no-pc: " + document.getElementById("conn").textContent;
  const report = await pc.getStats();
  const transport = [...report.values()].find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport && report.get(transport.selectedCandidatePairId);
  const local = pair && report.get(pair.localCandidateId);
  return local ? `${local.candidateType}/${local.relayProtocol || local.protocol}` : "";
}"""
PATHS = ("plain-direct", "tls-direct", "plain-turn-tcp", "tls-turn-tcp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def coturn(folder: Path) -> AsyncIterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("turnserver") or "turnserver", "-n", "--listening-ip", "127.0.0.1",
         "--relay-ip", "127.0.0.1", "--listening-port", str(port), "--allow-loopback-peers",
         "--no-cli", "--no-tls", "--no-dtls", "--use-auth-secret",
         f"--static-auth-secret={TURN_SECRET}", "--realm", "hallbridge.bench",
         "--log-file", str(folder / "turn.log"), "--pidfile", str(folder / "turn.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(150):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@asynccontextmanager
async def serve(settings: Settings, tls: tuple[Path, Path] | None) -> AsyncIterator[web.Application]:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    context = server_context(*tls) if tls else None
    await web.TCPSite(runner, settings.server.host, settings.server.port, ssl_context=context).start()
    try:
        yield app
    finally:
        await runner.cleanup()


async def join_once(browser: Any, url: str) -> tuple[float, float, str]:
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        t0 = time.perf_counter()
        await page.goto(url)
        await page.wait_for_function(WELCOMED, timeout=30_000, polling=20)
        t1 = time.perf_counter()
        await page.wait_for_selector("#join:visible", timeout=30_000)
        t2 = time.perf_counter()
        await page.click("#join")
        await page.wait_for_function(DECODED, timeout=60_000, polling=20)
        t3 = time.perf_counter()
        # (after the clock stops) which path the media took, once the stats name the pair
        for _ in range(100):
            pair = str(await page.evaluate(LOCAL_TYPE))
            if pair:
                break
            await asyncio.sleep(0.1)
        return t1 - t0, t3 - t2, pair
    finally:
        await page.close()


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_s": round(statistics.median(ordered), 3),
            "p90_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
            "min_s": round(ordered[0], 3), "max_s": round(ordered[-1], 3)}


async def run(trials: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    base = load_settings(env={})
    os.environ["HALLBRIDGE_TURN_SECRET"] = TURN_SECRET
    with tempfile.TemporaryDirectory(prefix="hallbridge-join-") as tmp:
        folder = Path(tmp)
        cert, key = write_certificate(folder / "tls", ["127.0.0.1"])
        spki = fingerprints(cert.read_bytes()).spki_sha256
        async with coturn(folder) as turn_port:
            def settings(tls: bool, turn: bool) -> Settings:
                server = replace(base.server, port=free_port(), tls_cert=str(cert) if tls else "",
                                 tls_key=str(key) if tls else "")
                urls = [f"turn:127.0.0.1:{turn_port}?transport=tcp"] if turn else []
                return replace(base, server=server, turn=replace(base.turn, urls=urls),
                               media=replace(base.media, program_width=640, program_height=360),
                               tokens=replace(base.tokens, secret_file=str(folder / "secret")),
                               recording=replace(base.recording, directory=str(folder / "rec")))

            # a direct site's server offers no TURN (with TURN offered, Chromium may keep the relay
            # pair even though a host pair works: the "candidates" field shows what was used)
            async with AsyncExitStack() as stack:
                urls, halls = {}, []
                for name in PATHS:
                    tls, turn = name.startswith("tls"), name.endswith("turn-tcp")
                    s = settings(tls, turn)
                    app = await stack.enter_async_context(serve(s, (cert, key) if tls else None))
                    tokens = app[BRIDGE].tokens
                    hall = SimulatedParticipant(s.server.base_url(), tokens.issue(Role.HALL), "hall",
                                                1, width=640, height=360, fps=15,
                                                ca_file=str(cert) if tls else None)
                    await hall.connect()
                    await hall.join_media()
                    halls.append(hall)
                    query = "?ice=relay" if turn else ""
                    urls[name] = (f"{s.server.base_url()}/site.html{query}#token="
                                  + tokens.issue(Role.SITE, SITE))
                times: dict[str, list[tuple[float, float, str]]] = {name: [] for name in PATHS}
                async with async_playwright() as pw:
                    browser = await pw.chromium.launch(
                        executable_path=CHROMIUM, headless=True,
                        args=[*FLAGS, f"--ignore-certificate-errors-spki-list={spki}"])
                    try:
                        await join_once(browser, urls["plain-direct"])  # warm-up, not counted
                        for _ in range(trials):
                            for name in PATHS:
                                times[name].append(await join_once(browser, urls[name]))
                                await asyncio.sleep(0.5)  # the site's old session goes
                    finally:
                        await browser.close()
                for hall in halls:
                    await hall.close()
    result: dict[str, Any] = {"trials": trials, "paths": {}}
    baseline = times["plain-direct"]
    for name in PATHS:
        sig, media = [t[0] for t in times[name]], [t[1] for t in times[name]]
        result["paths"][name] = {
            "signaling": summary(sig), "media": summary(media),
            "signaling_ratio": round(statistics.median(sig) / statistics.median([t[0] for t in baseline]), 2),
            "media_ratio": round(statistics.median(media) / statistics.median([t[1] for t in baseline]), 2),
            "candidates": sorted({t[2] for t in times[name]}),  # the site's side of the pair
            "raw": [[round(a, 3), round(b, 3)] for a, b, _ in times[name]]}
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, part, title in ((axes[0], 0, "page open → welcome (signaling)"),
                            (axes[1], 1, "Join → first program frame (media)")):
        data = [[t[part] for t in result["paths"][n]["raw"]] for n in PATHS]
        ax.boxplot(data, tick_labels=[n.replace("-", "\n", 1) for n in PATHS])
        ax.set_title(title)
        ax.set_ylabel("seconds")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Join time by path, real Chromium, {result['trials']} trials each (one run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench/out/join_paths.json"))
    args = parser.parse_args()
    result = asyncio.run(run(args.trials))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({n: {k: v for k, v in p.items() if k != "raw"}
                      for n, p in result["paths"].items()}, indent=2))


if __name__ == "__main__":
    main()
