from __future__ import annotations

from bridge.media.policy import (
    CONTENT,
    HALL_AUDIO,
    HIGH,
    LISTEN_AUDIO,
    PROGRAM_AUDIO,
    PROGRAM_VIDEO,
    SPEAKER_AUDIO,
    THUMBNAIL,
    Scene,
    layout,
    quality_for,
    source_for,
)
from bridge.roles import Role


def test_layouts() -> None:
    site = layout(Role.SITE, ["a", "b"])
    assert [(line.kind, line.send, line.slot, line.layer) for line in site] == [
        ("audio", True, PROGRAM_AUDIO, None), ("video", True, PROGRAM_VIDEO, "high"),
        ("video", True, None, "low"), ("audio", False, HALL_AUDIO, None),
        ("audio", False, SPEAKER_AUDIO, None)]
    assert [line.stream for line in site[:3]] == ["audio", "video", "video-low"]
    assert site[2].to_wire() == {"kind": "video", "send": True, "slot": None, "layer": "low"}
    moderator = layout(Role.MODERATOR, ["a"])
    assert not any(line.send for line in moderator)
    assert not any(line.layer for line in moderator), "only publishers send two layers"
    tech = layout(Role.TECHNICIAN, ["a", "b"])
    assert [line.slot for line in tech[4:]] == [LISTEN_AUDIO, "thumb:a", "thumb:b"]
    with_content = layout(Role.SITE, ["a"], content=True)
    assert with_content[-1].to_wire() == {"kind": "video", "send": True, "slot": "content"}
    assert with_content[-1].stream == "content", "a presenter's slides are a stream of their own"
    assert layout(Role.MODERATOR, ["a"], content=True)[-1].send is False


def test_the_content_slot_carries_the_presenter_to_everyone_else() -> None:
    scene = Scene(hall="hall", program="a", presenter="b")
    assert source_for(scene, "c", CONTENT) == "b"
    assert source_for(scene, "hall", CONTENT) == "b"
    assert source_for(scene, "b", CONTENT) is None, "the presenter is not sent its own slides"
    assert source_for(scene, "c", PROGRAM_VIDEO) == "a", "beside the program, not instead of it"
    assert source_for(Scene(hall="hall", program="hall"), "c", CONTENT) is None


def test_hall_on_the_program() -> None:
    scene = Scene(hall="hall", program="hall")
    assert source_for(scene, "a", PROGRAM_VIDEO) == "hall"
    assert source_for(scene, "a", PROGRAM_AUDIO) == "hall"
    assert source_for(scene, "a", HALL_AUDIO) is None, "the hall is already the program sound"
    assert source_for(scene, "hall", PROGRAM_VIDEO) is None, "nobody receives itself"


def test_a_site_on_the_program_sees_and_hears_the_hall() -> None:
    scene = Scene(hall="hall", program="a")
    assert (source_for(scene, "b", PROGRAM_VIDEO), source_for(scene, "b", HALL_AUDIO)) == ("a", "hall")
    assert source_for(scene, "a", PROGRAM_VIDEO) == "hall"
    assert source_for(scene, "a", PROGRAM_AUDIO) == "hall"
    assert source_for(scene, "a", HALL_AUDIO) is None
    assert source_for(scene, "hall", PROGRAM_AUDIO) == "a", "the hall hears the remote speaker"


def test_heard_sources_and_listen_in() -> None:
    scene = Scene(hall="hall", program="hall", heard=("a", "b"), listen={"technician:x": "c"})
    assert source_for(scene, "b", SPEAKER_AUDIO) == "a"
    assert source_for(scene, "a", SPEAKER_AUDIO) == "b", "never itself"
    assert source_for(scene, "technician:x", LISTEN_AUDIO) == "c"
    assert source_for(scene, "technician:y", LISTEN_AUDIO) is None
    assert source_for(scene, "technician:x", "thumb:c") == "c"
    assert source_for(scene, "c", "thumb:c") is None


def test_quality() -> None:
    scene = Scene(hall="hall", program="a")
    assert [quality_for(scene, s) for s in ("a", "hall", "b")] == [HIGH, HIGH, THUMBNAIL]
