"""The program router: applies the forwarder's decisions to real endpoints.

Per incoming packet: parse once, ask the kind's `ProgramGate`, build one template per extension
layout, then per site patch the numbers (`OutStream`) and send. Runs synchronously in the
receiving callback: no queue, no task, nothing that waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bridge.media.forwarder import OutStream, ProgramGate, Throttle
from bridge.media.rtp import (
    FORWARDED_URIS,
    build_template,
    parse_header,
    patch,
    vp8_is_keyframe_start,
)


class StreamLayout(Protocol):
    @property
    def ssrc(self) -> int: ...

    @property
    def payload_type(self) -> int: ...

    @property
    def clock_rate(self) -> int: ...

    @property
    def extension_ids(self) -> dict[str, int]: ...


class Endpoint(Protocol):
    """A participant's media connection, as the router needs it (PeerLink implements it)."""

    participant_id: str

    def outbound(self, kind: str) -> StreamLayout | None: ...

    def inbound_extension_ids(self, kind: str) -> dict[str, int]: ...

    def send_rtp(self, packet: bytes | bytearray) -> bool: ...

    def request_keyframe(self, kind: str = "video") -> bool: ...


@dataclass(slots=True)
class _Sink:
    endpoint: Endpoint
    stream: OutStream
    layout_key: tuple[int | None, ...]
    extension_ids: dict[str, int]
    dropped: int = 0


@dataclass(slots=True)
class RouterStats:
    received: dict[str, int] = field(default_factory=dict)  # participant -> packets in
    forwarded: int = 0  # packets sent, all sites together
    dropped: int = 0  # packets a site could not take (not connected, backlog)


class ProgramRouter:
    """Forwards the program source's audio and video to every receiving endpoint."""

    def __init__(self, keyframe_interval_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._gates = {"audio": ProgramGate(False, keyframe_interval_s),
                       "video": ProgramGate(True, keyframe_interval_s)}
        self._sinks: dict[str, dict[str, _Sink]] = {"audio": {}, "video": {}}
        self._sources: dict[str, Endpoint] = {}
        self._upstream_pli: dict[str, Throttle] = {}
        self._interval = keyframe_interval_s
        self.stats = RouterStats()

    @property
    def program(self) -> str | None:
        return self._gates["video"].pending or self._gates["video"].current

    def add_source(self, endpoint: Endpoint) -> None:
        self._sources[endpoint.participant_id] = endpoint
        self._upstream_pli[endpoint.participant_id] = Throttle(self._interval)
        if endpoint.participant_id == self.program:
            self._request_keyframe(endpoint.participant_id, force=True)

    def add_sink(self, endpoint: Endpoint) -> None:
        """Start sending the program to an endpoint whose negotiation is complete."""
        for kind, sinks in self._sinks.items():
            layout = endpoint.outbound(kind)
            if layout is None:
                continue
            ids = {u: layout.extension_ids[u] for u in FORWARDED_URIS if u in layout.extension_ids}
            key = tuple(ids.get(u) for u in FORWARDED_URIS)
            sinks[endpoint.participant_id] = _Sink(
                endpoint, OutStream(layout.ssrc, layout.payload_type, layout.clock_rate), key, ids)
        if self.program is not None:
            self._request_keyframe(self.program, force=True)

    def remove(self, participant_id: str) -> None:
        for sinks in self._sinks.values():
            sinks.pop(participant_id, None)
        self._sources.pop(participant_id, None)
        self._upstream_pli.pop(participant_id, None)
        for gate in self._gates.values():
            gate.source_gone(participant_id)

    def set_program(self, source: str | None) -> None:
        now = self._clock()
        for gate in self._gates.values():
            wanted = gate.set_program(source, now)
            if wanted is not None:
                self._request_keyframe(wanted, force=True)

    def sink_count(self, kind: str) -> int:
        return len(self._sinks[kind])

    # -- PeerListener half: called from the adapter's receive path --------------------------

    def on_rtp(self, participant_id: str, kind: str, data: bytes) -> None:
        received = self.stats.received
        received[participant_id] = received.get(participant_id, 0) + 1
        gate = self._gates.get(kind)
        header = parse_header(data)
        if gate is None or header is None:
            return
        keyframe = kind == "video" and vp8_is_keyframe_start(
            memoryview(data)[header.payload_offset :])
        if not gate.admit(participant_id, keyframe):
            due = gate.keyframe_due(self._clock())
            if due is not None:
                self._request_keyframe(due, force=True)
            return
        source = self._sources.get(participant_id)
        if source is None:
            return
        source_ids = source.inbound_extension_ids(kind)
        now = self._clock()
        templates: dict[tuple[int | None, ...], bytearray] = {}
        for sink_id, sink in self._sinks[kind].items():
            if sink_id == participant_id:
                continue
            template = templates.get(sink.layout_key)
            if template is None:
                template = build_template(data, header, source_ids, sink.extension_ids)
                templates[sink.layout_key] = template
            packet = bytearray(template)
            stream = sink.stream
            seq, ts = stream.rewrite(participant_id, header.sequence, header.timestamp, now)
            patch(packet, stream.payload_type, seq, ts, stream.ssrc)
            if sink.endpoint.send_rtp(packet):
                self.stats.forwarded += 1
                stream.octets += len(packet)
            else:
                sink.dropped += 1
                self.stats.dropped += 1

    def on_keyframe_request(self, participant_id: str, kind: str) -> None:
        """A site lost the picture: one throttled PLI to the current program source."""
        program = self._gates["video"].current
        if kind == "video" and program is not None:
            self._request_keyframe(program, force=False)

    def _request_keyframe(self, source_id: str, force: bool) -> None:
        source = self._sources.get(source_id)
        throttle = self._upstream_pli.get(source_id)
        if source is None or throttle is None:
            return
        if throttle.allow(self._clock()) or force:
            source.request_keyframe("video")
