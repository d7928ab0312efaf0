"""The composition root: `create_app(settings)` builds everything; cleanup_ctx tears it down."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web

from bridge.conference import Conference
from bridge.control.floor import FloorRules
from bridge.media.aiortc_adapter import IcePolicy
from bridge.media.hub import MediaHub
from bridge.media.sdp import parse_networks
from bridge.media.speaker import SpeakerParams
from bridge.roster import Roster, load_roster
from bridge.store import MemoryStore, StateStore
from signaling import metrics, proxies, security
from signaling.broadcast import Broadcaster
from signaling.gate import GatedServer
from signaling.namespace import ConferenceNamespace
from signaling.redis_store import RedisStore
from signaling.reports import attendance_report
from signaling.service import ConferenceService, MediaSetup
from signaling.settings import REPO_ROOT, Settings
from signaling.tokens import RevocationList, TokenAuthority, load_secret
from signaling.turn import credentials

log = logging.getLogger(__name__)
WEB_DIR = REPO_ROOT / "web"
VENDOR_DIR = WEB_DIR / "node_modules" / "socket.io-client" / "dist"
# A page gone silent is let go within ~30 s; a 10 s network loss is ridden out without tearing the
# session down (its media is marked lost after 3 s by the hub's watchdog and resumes by itself).
PING_INTERVAL_S, PING_TIMEOUT_S = 10, 20
MAX_MESSAGE_BYTES = 1024 * 1024  # largest Socket.IO message: a console offer with 70+ m-lines is ~150 KB


@dataclass(slots=True)
class Bridge:
    """Everything one running conference owns (typed app state)."""

    settings: Settings
    roster: Roster
    tokens: TokenAuthority
    conference: Conference
    hub: MediaHub
    broadcaster: Broadcaster
    sio: GatedServer
    namespace: ConferenceNamespace
    service: ConferenceService


BRIDGE = web.AppKey("bridge", Bridge)


def allowed_origins(settings: Settings) -> list[str]:
    port = settings.server.port
    scheme = "https" if settings.server.tls else "http"
    own = [settings.server.base_url(), f"{scheme}://127.0.0.1:{port}", f"{scheme}://localhost:{port}"]
    return [*own, *settings.server.allowed_origins]


def build_bridge(settings: Settings) -> Bridge:
    roster = load_roster(settings.roster_path())
    secret = load_secret(settings.tokens.secret_env, settings.secret_path())
    tokens = TokenAuthority(secret, settings.conference.id, roster,
                            RevocationList(settings.revoked_path()))
    c = settings.control
    rules = FloorRules(c.max_speakers, c.auto_accept, c.speaking_limit_s, c.warning_s, c.grace_s)
    conference = Conference(settings.conference.id, settings.conference.title, roster, rules)
    ice = settings.ice
    policy = IcePolicy(ice.servers, ice.host_addresses, parse_networks(ice.remote_networks),
                       ice.announce_addresses, ice.ports())
    media = MediaSetup(policy, settings.media.ladder(), settings.media.pli_interval_ms / 1000,
                       settings.media.layers_by_estimate, settings.media.content)
    store: StateStore = MemoryStore()
    manager = None
    if settings.store.backend == "redis":
        store = RedisStore(settings.store.redis_url, settings.store.key_prefix, settings.conference.id)
        # broadcasts reach clients connected to any process of this conference
        channel = f"{settings.store.key_prefix}{settings.conference.id}:socketio"
        manager = socketio.AsyncRedisManager(settings.store.redis_url, channel=channel)
    sio = GatedServer(async_mode="aiohttp", cors_allowed_origins=allowed_origins(settings),
                      max_http_buffer_size=MAX_MESSAGE_BYTES, logger=False,
                      engineio_logger=False, client_manager=manager,
                      ping_interval=PING_INTERVAL_S, ping_timeout=PING_TIMEOUT_S,
                      connect_deadline_s=settings.server.connect_deadline_s,
                      pending_per_address=settings.server.pending_per_address)
    broadcaster = Broadcaster(lambda event, payload, to: sio.emit(event, payload, to=to))
    sp = settings.speaker
    speaker = SpeakerParams(tick_s=sp.tick_s, margin_db=sp.margin_db,
                            floor_rise_db_s=sp.floor_rise_db_s, c1=sp.c1, c2=sp.c2, c3=sp.c3)
    service = ConferenceService(conference, media, broadcaster, settings.recording_dir(), speaker,
                                store, host_grace_s=settings.store.host_grace_s)
    turn_secret, turn = settings.turn_secret(), settings.turn

    def ice_servers(who: str) -> list[dict[str, Any]]:
        if turn_secret is None:
            return []
        return [credentials(turn_secret, who, time.time(), turn.ttl_s, turn.urls)]

    namespace = ConferenceNamespace(tokens, service,
                                    (settings.server.events_per_s, settings.server.events_burst),
                                    settings.server.connections_per_token, ice_servers)
    sio.register_namespace(namespace)
    return Bridge(settings, roster, tokens, conference, service.hub, broadcaster, sio, namespace,
                  service)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_MESSAGE_BYTES)
    proxies.install(app, settings.server.trusted_proxies)  # first: everything after sees the client
    bridge = build_bridge(settings)
    app[BRIDGE] = bridge
    bridge.sio.attach(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/reports/attendance", attendance_report)
    metrics.install(app, bridge)
    security.install(app)
    app.router.add_get("/", index)
    app.router.add_get("/{page}.html", page)
    app.router.add_static("/js/", WEB_DIR / "js")
    app.router.add_static("/css/", WEB_DIR / "css")
    if VENDOR_DIR.is_dir():
        app.router.add_static("/vendor/socket.io/", VENDOR_DIR)
    else:
        log.warning("web/node_modules is missing: run `npm ci --prefix web` for the pages")
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    bridge = app[BRIDGE]
    bridge.broadcaster.start()
    bridge.sio.start_gate()
    bridge.namespace.start()
    bridge.hub.start()
    await bridge.service.start()
    yield
    await bridge.service.stop()
    await bridge.hub.close()
    await bridge.namespace.stop()
    await bridge.sio.stop_gate()
    await bridge.broadcaster.stop()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE]
    ready = bridge.service.keeper.ready
    body: dict[str, Any] = {"ok": ready, "store": bridge.settings.store.backend,
                            "sites": len(bridge.roster), "version": bridge.conference.version}
    if not ready:
        body["error"] = "the state store is unreachable: commands are refused"
    return web.json_response(body, status=200 if ready else 503)


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/index.html")


async def page(request: web.Request) -> web.FileResponse:
    name = request.match_info["page"]
    if name not in PAGES:
        raise web.HTTPNotFound()
    return web.FileResponse(WEB_DIR / f"{name}.html")


PAGES = frozenset({"index", "site", "console", "hall", "moderator"})
