"""Recording the program to Matroska from the forwarded packets, off the event loop.

The recorder joins the router as one more receiver with an observer's slots: the program video
and every audio slot a site hears, and the presentation (`content`) when the conference offers it.
On the loop it only files each packet into a bounded queue; a writer thread (its owner is the
`Recorder`) reassembles VP8 frames and muxes them as they came, without decoding or re-encoding,
and mixes the Opus streams into one sound track. The file's tracks: the program (video, "program"),
the sound, and with content a second video track ("content": the slides as forwarded, each
presentation from its first keyframe; empty while nobody presents). Both video tracks start with
the file; the content track's header size is nominal (CONTENT_SIZE), each VP8 keyframe carries
its own.
"""

from __future__ import annotations

import fractions
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from bridge.media.policy import CONTENT, HALL_AUDIO, PROGRAM_AUDIO, PROGRAM_VIDEO, SPEAKER_AUDIO
from bridge.media.rtp import (
    parse_header,
    vp8_descriptor_size,
    vp8_frame_size,
    vp8_is_keyframe_start,
)

log = logging.getLogger(__name__)
QUEUE_PACKETS = 4096  # ~10 s of program: beyond it packets are dropped and counted
RATE = 48_000
FRAME = 960  # 20 ms of audio
MIX_DELAY_S = 0.3  # audio is mixed once every slot had time to deliver that moment
MS = fractions.Fraction(1, 1000)
RECORDED_SLOTS = (PROGRAM_VIDEO, PROGRAM_AUDIO, HALL_AUDIO, SPEAKER_AUDIO)
AUDIO_SLOTS = (PROGRAM_AUDIO, HALL_AUDIO, SPEAKER_AUDIO)
VIDEO_SLOTS = (PROGRAM_VIDEO, CONTENT)
CONTENT_SIZE = (1920, 1080)  # the content track's nominal size (a presentation's usual one)


@dataclass(frozen=True, slots=True)
class RecorderSlot:
    """The numbering the router uses for one recorded stream (the router's SlotLayout)."""

    kind: str
    ssrc: int
    payload_type: int
    clock_rate: int
    extension_ids: dict[str, int] = field(default_factory=dict)
    rtx_payload_type: int | None = None
    rtx_ssrc: int | None = None


@dataclass(slots=True)
class Vp8Assembler:
    """RTP packets in, whole VP8 frames out; after a loss, waits for the next keyframe."""

    _parts: list[bytes] = field(default_factory=list)
    _timestamp: int | None = None
    _next_seq: int | None = None
    _need_keyframe: bool = True

    def add(self, seq: int, timestamp: int, marker: bool, payload: bytes) -> bytes | None:
        if self._next_seq is not None and seq != self._next_seq:
            self._parts, self._need_keyframe = [], True  # a packet was lost: drop the frame
        self._next_seq = (seq + 1) & 0xFFFF
        starts = bool(payload) and bool(payload[0] & 0x10) and not payload[0] & 0x07
        if starts:
            if self._need_keyframe and not vp8_is_keyframe_start(payload):
                self._parts = []
                return None
            self._parts, self._timestamp, self._need_keyframe = [], timestamp, False
        elif not self._parts and timestamp != self._timestamp:
            return None
        self._parts.append(payload[vp8_descriptor_size(payload) :])
        if not marker:
            return None
        frame, self._parts = b"".join(self._parts), []
        return frame


class ArrivalMixer:
    """Sums mono 48 kHz audio by arrival time into 20 ms frames."""

    def __init__(self) -> None:
        self._frames: dict[int, np.ndarray] = {}  # 20 ms index -> int32 samples
        self._next = 0

    def add(self, at_s: float, samples: np.ndarray) -> None:
        index = max(self._next, round(at_s * RATE / FRAME))
        for n in range(0, len(samples), FRAME):
            chunk = samples[n : n + FRAME].astype(np.int32)
            acc = self._frames.setdefault(index, np.zeros(FRAME, np.int32))
            acc[: len(chunk)] += chunk
            index += 1

    def ready(self, until_s: float) -> list[tuple[int, np.ndarray]]:
        """Mixed frames up to `until_s` (silence fills gaps), as (sample offset, int16 samples)."""
        last = int(until_s * RATE / FRAME)
        out = []
        while self._next <= last:
            acc = self._frames.pop(self._next, None)
            mixed = np.zeros(FRAME, np.int16) if acc is None else np.clip(acc, -32768, 32767).astype(np.int16)
            out.append((self._next * FRAME, mixed))
            self._next += 1
        return out


@dataclass(slots=True)
class RecordingSummary:
    path: str
    seconds: float
    video_frames: int
    audio_frames: int
    dropped_packets: int
    content_frames: int = 0


class Recorder:
    """A router endpoint that writes what an observer sees and hears to a Matroska file."""

    participant_id = "recorder"

    def __init__(self, path: Path, content: bool = False) -> None:
        self.path = path
        names = (*RECORDED_SLOTS, CONTENT) if content else RECORDED_SLOTS
        self.slots = {name: RecorderSlot("video" if name in VIDEO_SLOTS else "audio",
                                         random.getrandbits(32), 96 if name in VIDEO_SLOTS else 111,
                                         90_000 if name in VIDEO_SLOTS else RATE)
                      for name in names}
        self._by_ssrc = {s.ssrc: name for name, s in self.slots.items()}
        self._queue: queue.Queue[tuple[str, bytes, float] | None] = queue.Queue(QUEUE_PACKETS)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._started = time.monotonic()
        self.dropped = 0
        self._summary: RecordingSummary | None = None

    # -- router endpoint (called on the event loop) ----------------------------------------

    def inbound_extension_ids(self, kind: str) -> dict[str, int]:
        return {}

    def remote_ssrc(self, kind: str) -> int | None:
        return None

    def send_rtcp(self, packet: bytes) -> bool:
        return True  # reports to a file are not needed

    def send_rtp(self, packet: bytes) -> bool:
        slot = self._by_ssrc.get(int.from_bytes(packet[8:12], "big"))
        if slot is None:
            return False
        try:
            self._queue.put_nowait((slot, packet, time.monotonic() - self._started))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    # -- lifetime --------------------------------------------------------------------------

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self) -> RecordingSummary:
        """Finish the file (blocking: call it from a worker thread, not the event loop)."""
        self._queue.put(None)
        self._thread.join()
        assert self._summary is not None
        return self._summary

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        writer = _MatroskaWriter(self.path, CONTENT in self.slots)
        try:
            while (item := self._queue.get()) is not None:
                writer.packet(*item)
        except Exception:
            log.exception("recording failed: %s", self.path)
        finally:
            self._summary = writer.close(self.dropped)


class _MatroskaWriter:
    def __init__(self, path: Path, content: bool = False) -> None:
        self._path = path
        self._out: Any = av.open(str(path), "w", format="matroska")
        self._video: Any = None
        self._content: Any = None
        self._with_content = content
        self._audio: Any = self._out.add_stream("libopus", rate=RATE)
        self._audio.layout = "mono"
        self._decoders = {name: av.CodecContext.create("opus", "r") for name in AUDIO_SLOTS}
        self._assemblers = {name: Vp8Assembler() for name in VIDEO_SLOTS}
        self._mixer = ArrivalMixer()
        self._last_at = 0.0
        self._video_frames = self._audio_frames = self._content_frames = 0
        self._last_pts: dict[str, int] = {}

    def packet(self, slot: str, data: bytes, at: float) -> None:
        header = parse_header(data)
        if header is None:
            return
        self._last_at = max(self._last_at, at)
        payload = data[header.payload_offset :]
        if slot in VIDEO_SLOTS:
            frame = self._assemblers[slot].add(header.sequence, header.timestamp, header.marker, payload)
            if frame is not None:
                self._write_video(slot, frame, at)
        else:
            self._add_audio(slot, payload, at)
        self._flush_audio(at - MIX_DELAY_S)

    def _open_video(self, frame: bytes) -> bool:
        """The file starts with the program's first picture: both video tracks are made then."""
        size = vp8_frame_size(frame)
        if size is None:
            return False
        self._video = self._video_track("program", size)
        if self._with_content:
            self._content = self._video_track("content", CONTENT_SIZE)
        return True

    def _video_track(self, title: str, size: tuple[int, int]) -> Any:
        track = self._out.add_stream("vp8", rate=30)
        track.width, track.height = size
        track.time_base = MS
        track.metadata["title"] = title
        return track

    def _write_video(self, slot: str, frame: bytes, at: float) -> None:
        if self._video is None and (slot != PROGRAM_VIDEO or not self._open_video(frame)):
            return  # nothing before the program's first picture
        track = self._video if slot == PROGRAM_VIDEO else self._content
        pts = max(int(at * 1000), self._last_pts.get(slot, -1) + 1)  # strictly increasing
        self._last_pts[slot] = pts
        packet = av.Packet(frame)
        packet.stream = track
        packet.pts = packet.dts = pts
        packet.time_base = MS
        packet.is_keyframe = not frame[0] & 0x01
        self._out.mux(packet)
        if slot == PROGRAM_VIDEO:
            self._video_frames += 1
        else:
            self._content_frames += 1

    def _add_audio(self, slot: str, payload: bytes, at: float) -> None:
        try:
            frames = self._decoders[slot].decode(av.Packet(payload))
        except av.error.FFmpegError:
            return
        for frame in frames:
            pcm = frame.to_ndarray()
            mono = pcm.mean(axis=0) if pcm.ndim == 2 and pcm.shape[0] > 1 else pcm.reshape(-1)
            if mono.dtype.kind == "f":
                mono = mono * 32767
            self._mixer.add(at, mono.astype(np.int32))

    def _flush_audio(self, until: float) -> None:
        if self._video is None:
            return  # the file starts with the first picture
        for offset, samples in self._mixer.ready(until):
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = offset
            frame.time_base = fractions.Fraction(1, RATE)
            for packet in self._audio.encode(frame):
                self._out.mux(packet)
            self._audio_frames += 1

    def close(self, dropped: int) -> RecordingSummary:
        try:
            self._flush_audio(self._last_at)
            for packet in self._audio.encode(None):
                self._out.mux(packet)
        finally:
            self._out.close()
        return RecordingSummary(str(self._path), self._last_at, self._video_frames,
                                self._audio_frames, dropped, self._content_frames)
