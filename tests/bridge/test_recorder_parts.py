from __future__ import annotations

import numpy as np

from bridge.media.recorder import FRAME, ArrivalMixer, Vp8Assembler
from bridge.media.rtp import vp8_frame_size

KEY = b"\x50\x02\x00\x9d\x01\x2a\x40\x01\xb4\x00"  # keyframe tag, start code, 320x180
DELTA = b"\x51\x02\x00"


def test_frames_are_reassembled_from_their_packets() -> None:
    asm = Vp8Assembler()
    assert asm.add(10, 1000, False, b"\x10" + KEY) is None
    frame = asm.add(11, 1000, True, b"\x00" + b"rest")
    assert frame == KEY + b"rest"
    assert vp8_frame_size(frame) == (320, 180)
    assert asm.add(12, 4000, True, b"\x10" + DELTA) == DELTA


def test_a_loss_waits_for_the_next_keyframe() -> None:
    asm = Vp8Assembler()
    asm.add(1, 0, True, b"\x10" + KEY)
    assert asm.add(3, 3000, True, b"\x10" + DELTA) is None, "packet 2 was lost"
    assert asm.add(4, 6000, True, b"\x10" + DELTA) is None, "still no keyframe"
    assert asm.add(5, 9000, True, b"\x10" + KEY) == KEY


def test_stream_starting_mid_frame_or_on_a_delta_is_skipped() -> None:
    asm = Vp8Assembler()
    assert asm.add(1, 0, True, b"\x00tail") is None
    assert asm.add(2, 3000, True, b"\x10" + DELTA) is None
    assert asm.add(3, 6000, True, b"\x10" + KEY) == KEY


def test_mixer_sums_by_arrival_and_fills_gaps_with_silence() -> None:
    mixer = ArrivalMixer()
    mixer.add(0.0, np.full(FRAME, 1000, np.int32))
    mixer.add(0.0, np.full(FRAME, 2000, np.int32))
    mixer.add(0.04, np.full(FRAME, 30000, np.int32))
    mixer.add(0.04, np.full(FRAME, 30000, np.int32))
    frames = mixer.ready(0.04)
    assert [offset for offset, _ in frames] == [0, FRAME, 2 * FRAME]
    assert frames[0][1][0] == 3000
    assert frames[1][1].max() == 0, "nothing arrived then: silence"
    assert frames[2][1][0] == 32767, "clipped, not wrapped"
    assert mixer.ready(0.04) == []
