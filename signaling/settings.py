"""Settings: defaults in code -> TOML file -> environment -> validated. Unknown keys are errors."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.media.policy import HIGH, LOW, THUMBNAIL

ENV_PREFIX = "HALLBRIDGE__"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "hallbridge.toml"


class SettingsError(ValueError):
    """A setting is unknown, of the wrong type, or out of range."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    allowed_origins: list[str] = field(default_factory=list)
    events_per_s: float = 20.0
    events_burst: float = 40.0
    connect_deadline_s: float = 5.0
    pending_per_address: int = 128
    connections_per_token: int = 4
    tls_cert: str = ""
    tls_key: str = ""
    # reverse proxies (CIDRs) whose X-Forwarded-For/-Proto/-Host are believed; nobody else's are
    trusted_proxies: list[str] = field(default_factory=list)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return self.public_url.rstrip("/") or f"{scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ConferenceSettings:
    id: str = "bo-tttt-2026-tap-huan"
    title: str = "Hội nghị tập huấn công tác thông tin 2026"
    roster: str = "sites.toml"


@dataclass(frozen=True, slots=True)
class IceSettings:
    servers: list[str] = field(default_factory=list)
    host_addresses: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    remote_networks: list[str] = field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    announce_addresses: list[str] = field(default_factory=list)
    port_range: str = ""

    def ports(self) -> range | None:
        if not self.port_range:
            return None
        first, _, last = self.port_range.partition("-")
        return range(int(first), int(last) + 1)


@dataclass(frozen=True, slots=True)
class StoreSettings:
    backend: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "hallbridge:"
    host_grace_s: float = 10.0


@dataclass(frozen=True, slots=True)
class TurnSettings:
    urls: list[str] = field(default_factory=list)
    secret_env: str = "HALLBRIDGE_TURN_SECRET"
    secret_file: str = ""
    ttl_s: int = 43200


@dataclass(frozen=True, slots=True)
class TokenSettings:
    secret_env: str = "HALLBRIDGE_SECRET"
    secret_file: str = ".hallbridge/secret"
    ttl_hours: int = 12
    revoked_file: str = ".hallbridge/revoked"


@dataclass(frozen=True, slots=True)
class MediaSettings:
    program_max_kbps: int = 1500
    program_width: int = 1280
    program_height: int = 720
    program_fps: int = 30
    low_max_kbps: int = 300
    low_width: int = 640
    low_height: int = 360
    low_fps: int = 30
    thumbnail_max_kbps: int = 150
    thumbnail_width: int = 320
    thumbnail_height: int = 180
    thumbnail_fps: int = 15
    pli_interval_ms: int = 500
    layers_by_estimate: bool = False
    content: bool = True  # the presentation line in every offer (issue 18); off: no slides

    def ladder(self) -> dict[str, dict[str, int]]:
        """What a publisher sends at each level (`media:quality`); the router's REMB caps use
        the same bitrates."""
        return {
            HIGH: {"maxBitrate": self.program_max_kbps * 1000, "maxFramerate": self.program_fps,
                     "width": self.program_width, "height": self.program_height},
            LOW: {"maxBitrate": self.low_max_kbps * 1000, "maxFramerate": self.low_fps,
                  "width": self.low_width, "height": self.low_height},
            THUMBNAIL: {"maxBitrate": self.thumbnail_max_kbps * 1000,
                          "maxFramerate": self.thumbnail_fps, "width": self.thumbnail_width,
                          "height": self.thumbnail_height},
        }


@dataclass(frozen=True, slots=True)
class ControlSettings:
    max_speakers: int = 1
    auto_accept: bool = True
    speaking_limit_s: float = 300.0
    warning_s: float = 30.0
    grace_s: float = 60.0


@dataclass(frozen=True, slots=True)
class SpeakerSettings:
    tick_s: float = 0.3
    margin_db: float = 8.0
    floor_rise_db_s: float = 4.0
    c1: float = 3.0
    c2: float = 2.0
    c3: float = -150.0


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    directory: str = "recordings"


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    conference: ConferenceSettings = field(default_factory=ConferenceSettings)
    ice: IceSettings = field(default_factory=IceSettings)
    turn: TurnSettings = field(default_factory=TurnSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    speaker: SpeakerSettings = field(default_factory=SpeakerSettings)
    # folder that relative paths (roster, secret file) are resolved against
    base_dir: Path = REPO_ROOT / "configs"

    def roster_path(self) -> Path:
        return self.base_dir / self.conference.roster

    def recording_dir(self) -> Path:
        path = Path(self.recording.directory)
        return path if path.is_absolute() else REPO_ROOT / path

    def revoked_path(self) -> Path:
        path = Path(self.tokens.revoked_file)
        return path if path.is_absolute() else REPO_ROOT / path

    def secret_path(self) -> Path:
        path = Path(self.tokens.secret_file)
        return path if path.is_absolute() else REPO_ROOT / path

    def turn_secret(self) -> bytes | None:
        """The TURN shared secret (from `turn.secret_env`, else `turn.secret_file`), or None when
        no TURN server is configured. Never logged, never sent to a client."""
        if not self.turn.urls:
            return None
        value = os.environ.get(self.turn.secret_env, "")
        if not value and self.turn.secret_file:
            path = Path(self.turn.secret_file)
            value = (path if path.is_absolute() else REPO_ROOT / path).read_text().strip()
        if not value:
            raise SettingsError(f"turn.urls is set: give the TURN secret in ${self.turn.secret_env} "
                                "or turn.secret_file (coturn's static-auth-secret)")
        return value.encode()

    def tls_paths(self) -> tuple[Path, Path] | None:
        """The certificate and key files (relative to the checkout), or None: plain HTTP."""
        if not self.server.tls:
            return None
        cert, key = Path(self.server.tls_cert), Path(self.server.tls_key)
        return (cert if cert.is_absolute() else REPO_ROOT / cert,
                key if key.is_absolute() else REPO_ROOT / key)


_SECTIONS = {f.name: f.type for f in dataclasses.fields(Settings) if f.name != "base_dir"}


def load_settings(
    path: Path | None = DEFAULT_CONFIG, env: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the TOML file (if any), then HALLBRIDGE__SECTION__KEY variables."""
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        for section, values in data.items():
            if not isinstance(values, dict):
                raise SettingsError(f"[{section}] must be a table")
            raw.setdefault(section, {}).update(values)
    for key, text in (os.environ if env is None else env).items():
        if key.startswith(ENV_PREFIX):
            section, _, name = key[len(ENV_PREFIX) :].lower().partition("__")
            raw.setdefault(section, {})[name] = _EnvText(text)
    base_dir = path.parent if path is not None else REPO_ROOT / "configs"
    settings = Settings(**{s: _build_section(s, v) for s, v in raw.items()}, base_dir=base_dir)
    _validate(settings)
    return settings


class _EnvText(str):
    """A value that came from the environment: converted to the field's type."""


def _build_section(section: str, values: dict[str, Any]) -> Any:
    if section not in _SECTIONS:
        raise SettingsError(f"unknown settings section [{section}]")
    defaults = getattr(Settings(), section)
    known = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise SettingsError(f"unknown setting {section}.{name}")
        out[name] = _coerce(f"{section}.{name}", value, known[name])
    return dataclasses.replace(defaults, **out)


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(value, _EnvText):
        value = _parse_env(name, str(value), default)
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise SettingsError(f"{name} must be {expected.__name__}, got {value!r}")
    if isinstance(default, list) and not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{name} must be a list of strings")
    return value


def _parse_env(name: str, text: str, default: Any) -> Any:
    if isinstance(default, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name}: cannot parse {text!r} from the environment") from exc


def _validate(s: Settings) -> None:
    if not 0 < s.server.port < 65536:
        raise SettingsError(f"server.port out of range: {s.server.port}")
    if s.store.backend not in ("memory", "redis"):
        raise SettingsError(f"store.backend must be 'memory' or 'redis', got {s.store.backend!r}")
    for url in s.turn.urls:
        if not url.startswith(("turn:", "turns:")):
            raise SettingsError(f"turn.urls: {url!r} is not a turn: or turns: URL")
    if not 60 <= s.turn.ttl_s <= 7 * 86400:
        raise SettingsError("turn.ttl_s must be between 60 s and 7 days")
    if bool(s.server.tls_cert) != bool(s.server.tls_key):
        raise SettingsError("server.tls_cert and server.tls_key go together: set both or neither")
    if s.server.public_url and not s.server.public_url.startswith(("http://", "https://")):
        raise SettingsError("server.public_url must start with https:// (or http://)")
    if not 2.0 <= s.store.host_grace_s <= 300.0:
        raise SettingsError("store.host_grace_s must be between 2 and 300 seconds")
    if not s.conference.id:
        raise SettingsError("conference.id must not be empty")
    for addr in s.ice.host_addresses:
        _check(f"ice.host_addresses: {addr!r}", ipaddress.ip_address, addr)
    for net in s.server.trusted_proxies:
        _check(f"server.trusted_proxies: {net!r}", ipaddress.ip_network, net)
    for net in s.ice.remote_networks:
        _check(f"ice.remote_networks: {net!r}", ipaddress.ip_network, net)
    _validate_ice_ports(s.ice)
    for url in s.ice.servers:
        if not url.startswith(("stun:", "turn:", "turns:")):
            raise SettingsError(f"ice.servers: {url!r} is not a stun:/turn: URL")
    for key in (f.name for f in dataclasses.fields(s.media)):
        if not isinstance(getattr(s.media, key), bool) and getattr(s.media, key) <= 0:
            raise SettingsError(f"media.{key} must be positive")
    if s.control.max_speakers < 1 or s.control.speaking_limit_s < 10 or s.control.grace_s < 0:
        raise SettingsError("control: max_speakers >= 1, speaking_limit_s >= 10, grace_s >= 0")
    if not 0.05 <= s.speaker.tick_s <= 2 or s.speaker.margin_db <= 0:
        raise SettingsError("speaker: tick_s from 0.05 to 2 s, margin_db positive")
    if s.server.connect_deadline_s <= 0 or s.server.pending_per_address < 1 or \
            s.server.connections_per_token < 1:
        raise SettingsError("server.connect_deadline_s, pending_per_address and "
                            "connections_per_token must be positive")
    if s.server.events_per_s <= 0 or s.server.events_burst < 1:
        raise SettingsError("server.events_per_s must be positive and events_burst at least 1")
    if s.tokens.ttl_hours <= 0:
        raise SettingsError("tokens.ttl_hours must be positive")


MIN_PORTS = 16  # a range smaller than a handful of sites is a typo


def _validate_ice_ports(ice: IceSettings) -> None:
    announce = ice.announce_addresses
    if announce and len(announce) != len(ice.host_addresses):
        raise SettingsError("ice.announce_addresses: one per ice.host_addresses entry, by position")
    for addr in announce:
        _check(f"ice.announce_addresses: {addr!r}", ipaddress.ip_address, addr)
    for i, addr in enumerate(ice.host_addresses):
        if ipaddress.ip_address(addr).is_unspecified and not announce:
            raise SettingsError(f"ice.host_addresses: {addr} binds every interface; "
                                "ice.announce_addresses must say what to announce for it")
        if announce and ipaddress.ip_address(announce[i]).is_unspecified:
            raise SettingsError(f"ice.announce_addresses: {announce[i]} cannot be announced")
    if ice.port_range:
        first, dash, last = ice.port_range.partition("-")
        if not (dash and first.isdigit() and last.isdigit()
                and int(first) >= 1024 and int(first) + MIN_PORTS - 1 <= int(last) <= 65535):
            raise SettingsError(f"ice.port_range {ice.port_range!r}: give FIRST-LAST, ports from "
                                f"1024 to 65535, at least {MIN_PORTS} of them")


def _check(what: str, parse: Any, value: str) -> None:
    try:
        parse(value)
    except ValueError as exc:
        raise SettingsError(f"{what} is not valid") from exc
