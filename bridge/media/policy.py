"""Pure media policy: the m-lines each role offers, which source each slot carries, who sends what.

A *slot* is one stream the bridge sends to a participant: `program-video` (the program picture)
with `program-audio` (the same source's sound, lip-synced with it), `hall-audio` (the main hall
when it is not already the picture), `speaker-audio` (a site that is heard but not on the picture,
e.g. the floor holder in lecture mode), and, for the technician console, `listen-audio` (one site
listened to privately) and `thumb:<site>` (every site's thumbnail). Nobody is sent their own
audio or video: the site on the program sees and hears the main hall instead.

A publisher sends its camera on two lines (issue 17): `program-video` carries its high layer (or,
off the program, its thumbnail) and a second video line, with no slot, its low layer while it is
on the program. The router forwards whichever layer each receiving site's line can carry. The
packets of a publisher arrive as *streams*: `audio`, `video` (high), `video-low` and `content`.

The `content` slot (issue 18) carries the presenter's slides or screen to everyone but the
presenter, beside the program: every publisher offers it as a send line (it sends on it only
while it presents; any site may be granted the token).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.roles import Role

PROGRAM_VIDEO = "program-video"
PROGRAM_AUDIO = "program-audio"
HALL_AUDIO = "hall-audio"
SPEAKER_AUDIO = "speaker-audio"
LISTEN_AUDIO = "listen-audio"
THUMB_PREFIX = "thumb:"
CONTENT = "content"  # the presentation: a slot, and the stream a presenter sends it on
HIGH, THUMBNAIL = "high", "thumbnail"
LOW = "low"  # the low program layer (its figures in media:quality)
AUDIO_STREAM, VIDEO_STREAM, LOW_STREAM, CONTENT_STREAM = "audio", "video", "video-low", CONTENT


def stream_kind(stream: str) -> str:
    return "audio" if stream == AUDIO_STREAM else "video"


@dataclass(frozen=True, slots=True)
class Line:
    """One m-line a client offers, in order: its kind, whether it publishes on it, its slot."""

    kind: str
    send: bool
    slot: str | None
    layer: str | None = None  # a publisher's video lines: "high" (program-video) or "low"

    @property
    def stream(self) -> str:
        """The stream name of what the participant sends on this line."""
        if self.kind == "audio":
            return AUDIO_STREAM
        if self.slot == CONTENT:
            return CONTENT_STREAM
        return LOW_STREAM if self.layer == LOW else VIDEO_STREAM

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"kind": self.kind, "send": self.send, "slot": self.slot}
        if self.layer is not None:
            wire["layer"] = self.layer
        return wire


def layout(role: Role, remote_site_ids: Iterable[str], content: bool = False) -> list[Line]:
    """The m-lines a participant of this role offers (`content`: with the presentation line)."""
    publishes = role.publishes
    lines = [Line("audio", publishes, PROGRAM_AUDIO),
             Line("video", publishes, PROGRAM_VIDEO, HIGH if publishes else None)]
    if publishes:
        lines.append(Line("video", True, None, LOW))
    lines += [Line("audio", False, HALL_AUDIO), Line("audio", False, SPEAKER_AUDIO)]
    if content:
        lines.append(Line("video", publishes, CONTENT))
    if role is Role.TECHNICIAN:
        lines.append(Line("audio", False, LISTEN_AUDIO))
        lines.extend(Line("video", False, THUMB_PREFIX + s) for s in remote_site_ids)
    return lines


@dataclass(frozen=True, slots=True)
class Scene:
    """What is on air: the inputs of every routing decision."""

    hall: str
    program: str
    heard: tuple[str, ...] = ()  # sources every site hears besides the picture and the hall
    listen: dict[str, str] = field(default_factory=dict)  # console participant -> site
    presenter: str | None = None  # who holds the presentation token (the content slot's source)

    def picture(self, me: str) -> str | None:
        """The program source a participant sees: the site on the program sees the hall."""
        source = self.program if self.program != me else self.hall
        return None if source == me else source


def source_for(scene: Scene, me: str, slot: str) -> str | None:
    """The source a participant's slot carries now (None: silent / no picture)."""
    if slot in (PROGRAM_VIDEO, PROGRAM_AUDIO):
        return scene.picture(me)
    if slot == HALL_AUDIO:
        return None if scene.hall in (me, scene.picture(me)) else scene.hall
    if slot == SPEAKER_AUDIO:
        taken = (me, scene.hall, scene.picture(me))
        return next((s for s in scene.heard if s not in taken), None)
    if slot == LISTEN_AUDIO:
        return scene.listen.get(me)
    if slot == CONTENT:
        return None if scene.presenter == me else scene.presenter
    if slot.startswith(THUMB_PREFIX):
        site = slot[len(THUMB_PREFIX) :]
        return None if site == me else site
    return None


def quality_for(scene: Scene, source: str) -> str:
    """What a publisher sends: full quality when it is on air or the hall, a thumbnail otherwise."""
    return HIGH if source in (scene.program, scene.hall) else THUMBNAIL
