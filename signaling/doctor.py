"""`hallbridge doctor`: the pre-meeting self-check a technician runs on the server.

One line per check, `OK` or `FAIL` and what to do; the exit status is non-zero when any check
fails. It reads the same settings as `hallbridge serve` and changes nothing (a secret file that
does not exist yet is reported, not created):
- certificate: readable, matches its key, valid now for the public name and for 14 days more;
- TURN: every `turn.urls` entry allocates a relay with a fresh credential (a real allocation);
- UDP ports: the media sockets can bind on every host address, within `ice.port_range`;
- Redis (store.backend = "redis"): answers, with AOF on;
- secrets: the token secret and the TURN secret are long, not a placeholder, and not each other.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint
from aiortc.rtcicetransport import parse_stun_turn_uri
from cryptography import x509

from signaling.settings import Settings
from signaling.turn import credentials

RENEW_WITHIN = datetime.timedelta(days=14)
TURN_TIMEOUT_S = 5.0
REDIS_TIMEOUT_S = 3.0
MIN_SECRET = 32  # characters of the token secret (the file the server writes has 64)
MIN_TURN_SECRET = 16
# what a secret must not be: the documentation's and the usual examples' placeholders
PLACEHOLDERS = frozenset({"", "secret", "changeme", "change-me", "password", "<the secret>",
                          "north", "hallbridge", "test", "example"})


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.name:<12} {self.detail}"


def public_host(settings: Settings) -> str:
    url = settings.server.public_url
    return (urlsplit(url).hostname or "") if url else settings.server.host


def check_certificate(settings: Settings, now: datetime.datetime | None = None) -> Check:
    now = now or datetime.datetime.now(datetime.UTC)
    paths = settings.tls_paths()
    host = public_host(settings)
    if paths is None:
        if settings.server.public_url.startswith("https://") and settings.server.trusted_proxies:
            return Check("certificate", True, "TLS is the reverse proxy's (server.trusted_proxies):"
                         " check its certificate there")
        if _is_loopback(host):
            return Check("certificate", True, f"none: plain HTTP on {host} (a demo on this machine)")
        return Check("certificate", False, f"none: sites on http://{host} get no camera or "
                     "microphone; set server.tls_cert and server.tls_key (docs/deploy.md)")
    cert_path, key_path = paths
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
    except (OSError, ValueError, ssl.SSLError) as exc:
        return Check("certificate", False, f"{cert_path} / {key_path} unusable: {exc}")
    if not _names(cert, host):
        return Check("certificate", False, f"not valid for {host} (it names "
                     f"{', '.join(_san(cert)) or 'nothing'}): sites would be warned off")
    until = cert.not_valid_after_utc
    if now < cert.not_valid_before_utc:
        return Check("certificate", False, f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}")
    if until <= now:
        return Check("certificate", False, f"expired on {until:%Y-%m-%d %H:%M} UTC: renew it, "
                     "then kill -HUP the server")
    if until - now < RENEW_WITHIN:
        return Check("certificate", False, f"expires on {until:%Y-%m-%d} ({(until - now).days} "
                     "days): renew it before the meeting, then kill -HUP the server")
    own = " (self-signed: operators compare its fingerprint)" if cert.issuer == cert.subject else ""
    return Check("certificate", True,
                 f"valid for {host} until {until:%Y-%m-%d} ({(until - now).days} days){own}")


def _san(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n) for n in ext.get_values_for_type(x509.DNSName)] + \
        [str(n) for n in ext.get_values_for_type(x509.IPAddress)]


def _names(cert: x509.Certificate, host: str) -> bool:
    host = host.lower().rstrip(".")
    for name in _san(cert):
        name = name.lower()
        if name == host or (name.startswith("*.") and "." in host
                            and host.split(".", 1)[1] == name[2:]):
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def check_turn(settings: Settings) -> list[Check]:
    if not settings.turn.urls:
        return [Check("turn", True, "none configured: sites behind TCP-only firewalls cannot "
                      "join (docs/deploy.md section 4)")]
    try:
        secret = settings.turn_secret()
    except (OSError, ValueError) as exc:
        return [Check("turn", False, str(exc))]
    assert secret is not None
    fresh = credentials(secret, "doctor", time.time(), 600, settings.turn.urls)
    return [await _allocate(url, fresh["username"], fresh["credential"])
            for url in settings.turn.urls]


async def _allocate(url: str, username: str, password: str) -> Check:
    try:
        parsed = parse_stun_turn_uri(url)  # aiortc's reading of it, as the clients' is
    except ValueError as exc:
        return Check("turn", False, f"{url}: {exc}")
    secure = parsed["scheme"] == "turns"
    context = ssl.create_default_context() if secure else None
    try:
        relay, _ = await asyncio.wait_for(create_turn_endpoint(
            asyncio.DatagramProtocol, (parsed["host"], parsed["port"]), username, password,
            lifetime=60, ssl=context, transport=parsed["transport"]), TURN_TIMEOUT_S)
    except TransactionFailed as exc:
        code = exc.response.attributes.get("ERROR-CODE", (0, ""))[0]
        why = ("the credential was refused: turn secret differs from coturn's static-auth-secret"
               if code == 401 else f"refused ({exc})")
        return Check("turn", False, f"{url}: {why}")
    except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
        return Check("turn", False, f"{url}: unreachable ({type(exc).__name__}: {exc or 'timeout'})")
    try:
        address = relay.get_extra_info("sockname")
    finally:
        relay.close()
    return Check("turn", True, f"{url}: a fresh credential allocated relay {address[0]}:{address[1]}")


def check_ports(settings: Settings) -> Check:
    ports = settings.ice.ports()
    addresses = settings.ice.host_addresses or ["0.0.0.0"]
    wanted = list(ports) if ports is not None else [0]
    free = 0
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        bound_any = False
        for port in wanted:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                try:
                    sock.bind((address, port))
                except OSError:
                    continue
                bound_any = True
                free += 1
        if not bound_any:
            return Check("udp ports", False, f"cannot bind UDP on {address}"
                         + (f" in {settings.ice.port_range}" if ports else "")
                         + ": is the address this machine's (ice.host_addresses)?")
    if ports is None:
        return Check("udp ports", True, f"any port on {', '.join(addresses)} (no ice.port_range: "
                     "the firewall must pass all UDP to this server)")
    total = len(wanted) * len(addresses)
    return Check("udp ports", True, f"{free} of {total} free in {settings.ice.port_range} on "
                 f"{', '.join(addresses)} (a running server holds one per site)")


async def check_redis(settings: Settings) -> Check:
    if settings.store.backend != "redis":
        return Check("redis", True, "not used (store.backend = \"memory\": state is lost "
                     "when the server stops)")
    url = settings.store.redis_url
    client = aioredis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                     socket_connect_timeout=REDIS_TIMEOUT_S)
    try:
        await client.ping()
        try:
            appendonly = (await client.config_get("appendonly")).get("appendonly")
        except aioredis.ResponseError as exc:
            return Check("redis", False, f"{_safe(url)} answers but hides its config ({exc}): "
                         "check appendonly yes by hand")
    except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
        return Check("redis", False, f"{_safe(url)} does not answer ({exc})")
    finally:
        await client.aclose()
    if appendonly != "yes":
        return Check("redis", False, f"{_safe(url)} answers with AOF off: a restart of Redis "
                     "would lose the meeting's state (appendonly yes)")
    return Check("redis", True, f"{_safe(url)} answers, AOF on")


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":***@") if parts.password else url


def check_secrets(settings: Settings) -> list[Check]:
    out: list[Check] = []
    token_secret = os.environ.get(settings.tokens.secret_env, "")
    where = f"${settings.tokens.secret_env}"
    path = settings.secret_path()
    if not token_secret:
        where = str(path)
        if not path.exists():
            out.append(Check("secrets", True, f"token secret: {path} is written at the first "
                             "start (random, mode 0600)"))
        else:
            token_secret = path.read_text().strip()
            if path.stat().st_mode & 0o077:
                out.append(Check("secrets", False, f"token secret: {path} is readable by others "
                                 "(chmod 600)"))
    if token_secret or not out:
        out.append(_strength("token secret", where, token_secret, MIN_SECRET))
    if settings.turn.urls:
        try:
            turn_secret = (settings.turn_secret() or b"").decode()
        except (OSError, ValueError) as exc:
            return [*out, Check("secrets", False, f"TURN secret: {exc}")]
        check = _strength("TURN secret", "turn", turn_secret, MIN_TURN_SECRET)
        if check.ok and token_secret and turn_secret == token_secret:
            check = Check("secrets", False, "the TURN secret is the token secret: coturn's "
                          "operators would hold the key to every join link")
        out.append(check)
    return out


def _strength(what: str, where: str, value: str, minimum: int) -> Check:
    if value.lower() in PLACEHOLDERS:
        return Check("secrets", False, f"{what} ({where}) is a placeholder: set a random one")
    if len(value) < minimum:
        return Check("secrets", False, f"{what} ({where}) is {len(value)} characters: use at "
                     f"least {minimum} random ones")
    return Check("secrets", True, f"{what} ({where}): {len(value)} characters")


async def run_checks(settings: Settings) -> list[Check]:
    return [check_certificate(settings), *await check_turn(settings), check_ports(settings),
            await check_redis(settings), *check_secrets(settings)]


def doctor(settings: Settings) -> int:
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        print(check.line(), flush=True)
    failed = [c.name for c in checks if not c.ok]
    print(f"doctor: {'all checks passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
    return 1 if failed else 0

