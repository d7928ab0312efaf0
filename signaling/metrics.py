"""`GET /metrics` in the Prometheus text format, from one registry per app (no globals).

Read at scrape time: sites connected, state version, program switches, packets forwarded /
dropped / muted, keyframe requests, per-site loss and round trip; observed as they happen:
command latency per event, state store errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from signaling.app import Bridge

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class BridgeCollector(Collector):
    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    def collect(self) -> Iterator[Metric]:
        b = self._bridge
        conference, router, service = b.conference, b.hub.router, b.service
        live = sum(1 for s in conference.sites.values() if s.presence.value == "live")
        yield GaugeMetricFamily("hallbridge_sites_connected", "Sites whose media is connected",
                                value=live)
        yield GaugeMetricFamily("hallbridge_state_version", "Conference state version",
                                value=conference.version)
        yield GaugeMetricFamily("hallbridge_peer_connections", "Open peer connections",
                                value=b.hub.link_count())
        yield GaugeMetricFamily("hallbridge_asyncio_tasks", "Tasks on the server's event loop",
                                value=len(asyncio.all_tasks()))
        yield GaugeMetricFamily("hallbridge_store_ready", "1 when the state store answers",
                                value=1 if service.keeper.ready else 0)
        yield CounterMetricFamily("hallbridge_program_switches", "Program source changes",
                                  value=service.program_switches)
        yield CounterMetricFamily("hallbridge_store_errors", "State commits refused: store away",
                                  value=service.keeper.store_errors)
        for name, value, text in (
                ("packets_received", router.stats.received, "RTP packets received from publishers"),
                ("packets_forwarded", router.stats.forwarded, "RTP packets sent to sites"),
                ("packets_dropped", router.stats.dropped + b.hub.outbox.dropped,
                 "Packets a site could not take"),
                ("packets_muted", router.stats.muted, "Audio packets of muted sites dropped"),
                ("keyframe_requests", router.stats.keyframe_requests, "PLIs sent to publishers"),
                ("retransmissions", router.stats.retransmitted, "Packets resent after NACK"),
                ("unrepairable_nacks", router.stats.unrepairable_nacks,
                 "NACKs for packets gone or too old: answered with a keyframe"),
                ("backlog_dropped", router.stats.backlog_dropped,
                 "Audio or program packets dropped: the fan-out backlog was full"),
                ("backlog_thumbnails_dropped", router.stats.backlog_thumbnails_dropped,
                 "Thumbnail packets that gave way in a full fan-out backlog"),
                ("ice_ports_exhausted", b.hub.policy.hosts.exhausted,
                 "Peer connections offered no host candidate: ice.port_range was all taken"),
                ("ignored_packets", b.hub.ignored_packets,
                 "Packets on a peer connection that were neither RTP nor RTCP of it"),
                ("broadcasts_dropped", b.broadcaster.dropped,
                 "State patches not sent: the broadcast queue was full (clients resync)"),
                ("rate_limited_events", b.namespace.rate_limited,
                 "Client events refused: a page sent too many"),
                ("audit_unstored", service.keeper.audit_unstored,
                 "Audit entries of refusals made while the store was away")):
            yield CounterMetricFamily(f"hallbridge_{name}", text, value=value)
        keeper = service.keeper
        doubt = CounterMetricFamily("hallbridge_in_doubt_commits", "Commits whose answer was lost, "
                                    "by how they were settled", labels=["outcome"])
        for outcome, count in keeper.in_doubt.items():
            doubt.add_metric([outcome], count)
        yield doubt
        yield CounterMetricFamily("hallbridge_store_refills", "Times this process refilled an "
                                  "emptied state store from its memory", value=keeper.reseeds)
        ended = CounterMetricFamily("hallbridge_sessions_ended", "Live sessions ended: their link "
                                    "was revoked or expired", labels=["reason"])
        for reason in ("revoked", "expired"):
            ended.add_metric([reason], b.namespace.sessions_ended.get(reason, 0))
        yield ended
        gate = CounterMetricFamily("hallbridge_connections_refused", "Connections the gate closed "
                                   "before they joined", labels=["why"])
        gate.add_metric(["deadline"], b.sio.closed_at_deadline)
        gate.add_metric(["pending_per_address"], b.sio.refused_pending)
        yield gate
        loss = GaugeMetricFamily("hallbridge_site_loss_ratio", "Packet loss of a site (worst way)",
                                 labels=["site"])
        rtt = GaugeMetricFamily("hallbridge_site_rtt_seconds", "Round trip to a site", labels=["site"])
        now = time.monotonic()
        for site, status in conference.sites.items():
            if status.presence.value != "live":
                continue
            h = router.health(site, now)
            loss.add_metric([site], max(h["loss_in"] or 0.0, h["loss_out"] or 0.0))
            if h["rtt_ms"] is not None:
                rtt.add_metric([site], h["rtt_ms"] / 1000)
        yield loss
        yield rtt


def install(app: web.Application, bridge: Bridge) -> None:
    registry = CollectorRegistry()
    registry.register(BridgeCollector(bridge))
    latency = Histogram("hallbridge_command_seconds", "Time to handle a client event",
                        ["event"], registry=registry,
                        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
    bridge.namespace.latency = lambda event, seconds: latency.labels(event).observe(seconds)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)
