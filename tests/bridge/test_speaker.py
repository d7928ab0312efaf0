"""The dominant speaker identifier on scripted level sequences, with a fake clock."""

from __future__ import annotations

from bridge.media.speaker import DominantSpeaker

SILENT, NOISE, SPEECH = 100, 60, 25  # RFC 6464 levels (-dBov)


def speech_level(frame: int) -> int:
    return SPEECH if frame % 12 < 9 else NOISE  # syllables with short gaps


class Meeting:
    def __init__(self, sources: tuple[str, ...] = ("hall", "a", "b")) -> None:
        self.dsi = DominantSpeaker()
        self.sources = sources
        self.frame = 0
        self.decisions: list[tuple[float, str | None]] = []

    def run(self, seconds: float, talking: dict[str, str]) -> None:
        """`talking`: source -> "speech" | "click" | "quiet" for these seconds."""
        for n in range(int(seconds * 50)):
            now = self.frame * 0.02
            for s in self.sources:
                kind = talking.get(s, "quiet")
                level = speech_level(self.frame) if kind == "speech" else (
                    10 if kind == "click" and n < 10 else NOISE)
                self.dsi.level(s, level, now)
            if self.dsi.due(now):
                self.decisions.append((now, self.dsi.decide(now)))
            self.frame += 1

    @property
    def dominant(self) -> str | None:
        return self.dsi.dominant

    def switched_within(self, name: str, since: float) -> float | None:
        for at, who in self.decisions:
            if at >= since and who == name:
                return at - since
        return None


def test_a_steady_speaker_keeps_the_floor_through_a_transient() -> None:
    m = Meeting()
    m.run(5, {"a": "speech"})
    assert m.dominant == "a"
    m.run(1, {"a": "speech", "b": "click"})  # a 200 ms click (or cough) at b
    m.run(2, {"a": "speech"})
    assert [who for _, who in m.decisions[20:]] == ["a"] * len(m.decisions[20:])


def test_a_new_speaker_who_talks_for_a_second_takes_it() -> None:
    m = Meeting()
    m.run(5, {"a": "speech"})
    start = m.frame * 0.02
    m.run(1.5, {"b": "speech"})
    delay = m.switched_within("b", start)
    assert delay is not None and delay <= 1.0


def test_silence_keeps_the_last_speaker() -> None:
    m = Meeting()
    m.run(4, {"b": "speech"})
    m.run(10, {})
    assert m.dominant == "b"


def test_a_loud_room_is_not_a_talking_room() -> None:
    dsi = DominantSpeaker()
    for f in range(12 * 50):  # a room with a fan at -30 dBov, louder than a's pauses
        now = f * 0.02
        dsi.level("a", speech_level(f) if f < 4 * 50 else NOISE, now)
        dsi.level("noisy", 30, now)
        dsi.level("hall", NOISE, now)
        if dsi.due(now):
            dsi.decide(now)
    assert dsi.dominant == "a"


def test_candidates_limit_the_choice_to_unmuted_sources() -> None:
    dsi = DominantSpeaker()
    for f in range(200):
        dsi.level("a", speech_level(f), f * 0.02)
        dsi.level("b", NOISE, f * 0.02)
        if dsi.due(f * 0.02):
            dsi.decide(f * 0.02, candidates={"b"})
    assert dsi.dominant != "a"


def test_the_meter_reads_the_peak_since_its_last_read() -> None:
    dsi = DominantSpeaker()
    dsi.level("a", 90, 0.00)
    dsi.level("a", 20, 0.02)  # a short beep between two reads
    dsi.level("a", 100, 0.04)
    assert dsi.loudness("a") == -20.0
    assert dsi.loudness("a") == -127.0, "read once"
    assert dsi.loudness("nobody") == -127.0
