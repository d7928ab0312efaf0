"""Active-speaker evaluation: three detectors on labelled multi-site conversations.

Builds conversations among 10 sites (at least 10 minutes in all) from speech generated here with
espeak-ng (Vietnamese and English voices, each site at its own level), adds what must NOT take
the floor — coughs, door slams, paper rustle, keyboards — over every site's own background noise,
with overlapping talk (interjections, back-channel "vâng"/"yes"); turns the mix into the 20 ms
RFC 6464 levels a browser would send; and runs on the same levels:
  (a) loudest: the loudest site of every 20 ms frame,
  (b) loudest-hold: the loudest site once it has stayed the loudest for a hold time,
  (c) hallbridge: bridge.media.speaker.DominantSpeaker.
Writes JSON per detector (share of speech time with the right speaker, false switches per minute,
detection delay p50/p95 after a speaker starts) and a PNG timeline of one stretch.

    python -m bench.speakers --out bench/out/speakers.json      (needs Debian's espeak-ng)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bridge.media.speaker import DominantSpeaker

RATE = 16_000
FRAME = RATE // 50  # 20 ms
SITES = 10
PHRASES = {
    "vi": ["Kính thưa các đồng chí lãnh đạo Bộ và các đại biểu tham dự hội nghị.",
           "Sở Thông tin và Truyền thông đã triển khai chuyển đổi số trên toàn tỉnh.",
           "Chúng tôi xin báo cáo kết quả công tác thông tin cơ sở trong năm qua.",
           "Đề nghị Bộ hướng dẫn thêm về kinh phí cho các đài truyền thanh xã.",
           "Tỷ lệ hộ gia đình có kết nối băng rộng đã đạt trên tám mươi phần trăm.",
           "Xin cảm ơn chủ tọa, tôi xin phép được trình bày ngắn gọn ba ý kiến.",
           "Về nội dung này, địa phương chúng tôi hoàn toàn thống nhất với dự thảo."],
    "en": ["Thank you, chair. I would like to raise two points about the budget.",
           "Our department has completed the migration of the provincial portal.",
           "We propose a joint training programme for district information officers.",
           "The broadband coverage target for this year has already been exceeded.",
           "Could the ministry clarify the timeline for the new reporting system?"],
}
VOICES = [("vi", "vi+m1"), ("vi", "vi+f2"), ("vi", "vi+m3"), ("en", "en+m2"), ("vi", "vi+f4"),
          ("en", "en+f3"), ("vi", "vi+m4"), ("vi", "vi+f1"), ("en", "en-us+m3"), ("vi", "vi+m2")]
BACKCHANNEL = {"vi": "Vâng.", "en": "Yes."}


@dataclass
class Turn:
    site: int
    start: float
    end: float


def speak(text: str, voice: str, speed: int, pitch: int, workdir: Path) -> np.ndarray:
    path = workdir / f"{abs(hash((text, voice, speed, pitch)))}.wav"
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text]
    subprocess.run(command, check=True, capture_output=True)
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        rate = w.getframerate()
    idx = np.arange(0, len(data), rate / RATE)  # resample to 16 kHz (linear: levels only)
    return np.interp(idx, np.arange(len(data)), data).astype(np.float32)


def transient(kind: str, rng: random.Random) -> np.ndarray:
    """Non-speech sounds that a bridge must not put on the program."""
    n_rng = np.random.default_rng(rng.randrange(1 << 30))
    if kind == "cough":
        n = int(RATE * rng.uniform(0.15, 0.3))
        env = np.exp(-np.linspace(0, 5, n))
        return (n_rng.normal(0, 0.5, n) * env).astype(np.float32)
    if kind == "door":
        n = int(RATE * rng.uniform(0.1, 0.2))
        t = np.arange(n) / RATE
        return (0.9 * np.sin(2 * np.pi * 60 * t) * np.exp(-t * 30) + n_rng.normal(0, 0.3, n)
                * np.exp(-t * 60)).astype(np.float32)
    if kind == "paper":
        n = int(RATE * rng.uniform(0.5, 1.5))
        swell = 0.5 + 0.5 * np.abs(np.sin(np.arange(n) / 900))
        return (n_rng.normal(0, 0.05, n) * swell).astype(np.float32)
    n = int(RATE * rng.uniform(1.0, 3.0))  # keyboard: 8 ms clicks every 100-200 ms
    out = np.zeros(n, np.float32)
    at = 0
    while at < n - 200:
        out[at : at + 128] += n_rng.normal(0, 0.25, 128).astype(np.float32) * np.exp(-np.arange(128) / 30)
        at += int(RATE * rng.uniform(0.1, 0.2))
    return out


Events = list[tuple[int, float, str]]  # (site, time s, kind) of what must not take the floor


def build(workdir: Path, minutes: float, seed: int) -> tuple[np.ndarray, list[Turn], Events]:
    rng = random.Random(seed)
    total = int(minutes * 60 * RATE)
    audio = np.zeros((SITES, total), np.float32)
    gains = [10 ** (rng.uniform(-22, -4) / 20) for _ in range(SITES)]  # each site's microphone
    noise_db = [rng.uniform(-62, -42) for _ in range(SITES)]  # each room's background
    nrng = np.random.default_rng(seed)
    for s in range(SITES):
        audio[s] += nrng.normal(0, 10 ** (noise_db[s] / 20), total).astype(np.float32)
    voices = [(lang, voice, rng.randint(140, 175), rng.randint(30, 70)) for lang, voice in VOICES]
    clips = {s: [speak(t, voices[s][1], voices[s][2], voices[s][3], workdir)
                 for t in PHRASES[voices[s][0]]] for s in range(SITES)}
    back = {s: speak(BACKCHANNEL[voices[s][0]], voices[s][1], voices[s][2], voices[s][3], workdir)
            for s in range(SITES)}
    turns: list[Turn] = []
    events: Events = []
    t, previous = 1.0, -1
    while t < minutes * 60 - 25:
        site = rng.choice([s for s in range(SITES) if s != previous])
        start, at = t, int(t * RATE)
        for _ in range(rng.randint(2, 4)):  # a turn: a few phrases with short pauses
            clip = rng.choice(clips[site]) * gains[site]
            audio[site, at : at + len(clip)] += clip[: total - at]
            at += len(clip) + int(RATE * rng.uniform(0.2, 0.6))
        end = at / RATE
        turns.append(Turn(site, start, end))
        if rng.random() < 0.35:  # someone else says "yes" in the middle: must not take over
            other = rng.choice([s for s in range(SITES) if s != site])
            mid = int(rng.uniform(start + 1, end - 1) * RATE)
            audio[other, mid : mid + len(back[other])] += back[other] * gains[other]
            events.append((other, mid / RATE, "backchannel"))
        for _ in range(rng.randint(1, 3)):  # transients anywhere
            other = rng.randrange(SITES)
            kind = rng.choice(["cough", "door", "paper", "keyboard"])
            sound = transient(kind, rng) * (1.0 if kind in ("door", "cough") else gains[other] * 3)
            pos = int(rng.uniform(start, end + 2) * RATE)
            audio[other, pos : pos + len(sound)] += sound[: total - pos]
            events.append((other, pos / RATE, kind))
        overlap = rng.random() < 0.3  # the next speaker starts before this one ends
        t = end - rng.uniform(0.3, 0.8) if overlap else end + rng.uniform(0.4, 1.8)
        previous = site
    return np.clip(audio, -1, 1), turns, events


def levels(audio: np.ndarray) -> np.ndarray:
    """RFC 6464 levels per site per 20 ms: -dBov, 0 (loudest) .. 127 (silence)."""
    frames = audio[:, : audio.shape[1] // FRAME * FRAME].reshape(audio.shape[0], -1, FRAME)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=2))
    dbov = 20 * np.log10(np.maximum(rms, 1e-7)) + 3.0  # full-scale sine = 0 dBov
    return np.clip(np.round(-dbov), 0, 127).astype(np.int16)


LOUD_ENOUGH = 40  # (a) and (b) consider a site only above -40 dBov: rooms' noise is below


def run_loudest(lv: np.ndarray, hold_s: float) -> np.ndarray:
    """The loudest site of each frame; with `hold_s`, a new choice stays at least that long."""
    out = np.full(lv.shape[1], -1)
    current, switched = -1, -1e9
    for f in range(lv.shape[1]):
        loudest = int(np.argmin(lv[:, f]))
        if lv[loudest, f] <= LOUD_ENOUGH and loudest != current and f * 0.02 - switched >= hold_s:
            current, switched = loudest, f * 0.02
        out[f] = current
    return out


def run_dominant(lv: np.ndarray) -> np.ndarray:
    dsi = DominantSpeaker()
    out = np.full(lv.shape[1], -1)
    current = -1
    for f in range(lv.shape[1]):
        now = f * 0.02
        for s in range(lv.shape[0]):
            dsi.level(str(s), int(lv[s, f]), now)
        if dsi.due(now):
            chosen = dsi.decide(now)
            current = int(chosen) if chosen is not None else -1
        out[f] = current
    return out


def truth(turns: list[Turn], frames: int) -> np.ndarray:
    """Who holds the floor each frame: in an overlap, the speaker who has it until they finish."""
    out = np.full(frames, -1)
    for turn in turns:
        out[int(turn.start / 0.02) : int(turn.end / 0.02)] = turn.site
    for before, turn in itertools.pairwise(turns):
        if turn.start < before.end:  # the interrupting speaker takes over when the other stops
            out[int(turn.start / 0.02) : int(before.end / 0.02)] = before.site
            turn.start = before.end
    return out


def evaluate(choice: np.ndarray, right: np.ndarray, turns: list[Turn]) -> dict[str, Any]:
    speech = right >= 0
    accuracy = float(np.mean(choice[speech] == right[speech]))
    switches = np.flatnonzero(choice[1:] != choice[:-1]) + 1
    false = sum(1 for f in switches if choice[f] != right[f] and choice[f] >= 0)
    minutes = len(choice) * 0.02 / 60
    delays, missed = [], 0
    for turn in turns:
        a, b = int(turn.start / 0.02), int(turn.end / 0.02)
        hit = np.flatnonzero(choice[a:b] == turn.site)
        if len(hit) == 0:
            missed += 1
        else:
            delays.append(hit[0] * 0.02)
    return {"right_speaker_share": round(accuracy, 4),
            "false_switches_per_min": round(false / minutes, 2),
            "switches_per_min": round(len(switches) / minutes, 2),
            "detection_p50_s": round(float(np.percentile(delays, 50)), 3) if delays else None,
            "detection_p95_s": round(float(np.percentile(delays, 95)), 3) if delays else None,
            "turns_missed": missed}


def plot(path: Path, right: np.ndarray, results: dict[str, np.ndarray], span: tuple[int, int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = span
    t = np.arange(a, b) * 0.02
    fig, ax = plt.subplots(figsize=(12, 3.8))
    ax.step(t, right[a:b], where="post", color="black", linewidth=3, alpha=0.35, label="who speaks (truth)")
    for (name, choice), offset in zip(results.items(), (-0.2, 0.0, 0.2), strict=True):
        ax.step(t, choice[a:b] + offset, where="post", linewidth=1.2, label=name)
    ax.set(xlabel="time (s)", ylabel="site on the program", yticks=range(SITES),
           title="Program choice by each detector (stretch of the evaluation)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--hold", type=float, default=1.0, help="hold time of detector (b), seconds")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is missing: apt-get install -y espeak-ng")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        audio, turns, events = build(Path(tmp), args.minutes, args.seed)
    lv = levels(audio)
    right = truth(turns, lv.shape[1])
    choices = {"loudest": run_loudest(lv, 0.0), f"loudest_hold_{args.hold:g}s": run_loudest(lv, args.hold),
               "hallbridge": run_dominant(lv)}
    report = {"sites": SITES, "minutes": args.minutes, "turns": len(turns),
              "transients": {k: sum(1 for e in events if e[2] == k)
                             for k in ("cough", "door", "paper", "keyboard", "backchannel")},
              "detectors": {name: evaluate(c, right, turns) for name, c in choices.items()}}
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    mid = lv.shape[1] // 3
    plot(args.out.with_suffix(".png"), right, choices, (mid, mid + 60 * 50))
    print(json.dumps(report["detectors"], indent=2))


if __name__ == "__main__":
    main()
