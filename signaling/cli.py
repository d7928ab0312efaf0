"""`hallbridge serve | links | simulate | rehearse | revoke | cert | doctor | demo`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from bridge.roles import Role
from bridge.roster import load_roster
from signaling.app import create_app
from signaling.doctor import doctor
from signaling.settings import DEFAULT_CONFIG, Settings, SettingsError, load_settings
from signaling.tls import DEFAULT_DAYS, fingerprints, server_context, write_certificate
from signaling.tokens import (
    RevocationList,
    SecretError,
    TokenAuthority,
    TokenError,
    load_secret,
    token_id,
)

log = logging.getLogger("hallbridge")


def authority(settings: Settings) -> TokenAuthority:
    secret = load_secret(settings.tokens.secret_env, settings.secret_path())
    return TokenAuthority(secret, settings.conference.id, load_roster(settings.roster_path()),
                          RevocationList(settings.revoked_path()))


def links(settings: Settings) -> list[tuple[str, str, str]]:
    """(label, role, url) for every role and every site; the token rides in the URL fragment."""
    tokens, base = authority(settings), settings.server.base_url()
    ttl = settings.tokens.ttl_hours * 3600
    roster = load_roster(settings.roster_path())
    out = [
        ("Console (kỹ thuật)", "technician", f"{base}/console.html#token="
         + tokens.issue(Role.TECHNICIAN, ttl_s=ttl)),
        ("Moderator (điều hành)", "moderator", f"{base}/moderator.html#token="
         + tokens.issue(Role.MODERATOR, ttl_s=ttl)),
        ("Observer (theo dõi)", "observer", f"{base}/site.html#token="
         + tokens.issue(Role.OBSERVER, ttl_s=ttl)),
        (roster.hall.name, "hall", f"{base}/hall.html#token=" + tokens.issue(Role.HALL, ttl_s=ttl)),
    ]
    for site in roster.remote_sites():
        token = tokens.issue(Role.SITE, site.id, ttl_s=ttl)
        out.append((site.name, "site", f"{base}/site.html#token={token}"))
    return out


def cmd_serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _use_uvloop()
    app = create_app(settings)
    context = None
    paths = settings.tls_paths()
    if paths is not None:
        context = server_context(*paths)

        async def reload_on_hup(app: web.Application) -> None:
            def reload() -> None:
                try:
                    context.load_cert_chain(*paths)
                    log.warning("TLS certificate read again from %s", paths[0])
                except (OSError, ssl.SSLError) as exc:  # keep serving the one it had
                    log.error("TLS certificate not reloaded: %s", exc)

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)

        app.on_startup.append(reload_on_hup)
    print(f"hallbridge: {settings.conference.title} on {settings.server.base_url()}", flush=True)
    web.run_app(app, host=settings.server.host, port=settings.server.port, print=None,
                access_log=None, ssl_context=context)


def cmd_cert(hosts: list[str], out: Path, days: int) -> None:
    cert, key = write_certificate(out, hosts, days)
    prints = fingerprints(cert.read_bytes())
    print(f"certificate: {cert}\nkey:         {key}  (mode 0600)\nfor:         {', '.join(hosts)}, "
          f"{days} days\nSHA-256:     {prints.sha256}\nSPKI:        {prints.spki_sha256}")
    print("set server.tls_cert and server.tls_key to these files; operators compare the SHA-256 "
          "with what their browser shows before they trust it")


def cmd_links(settings: Settings, role: str | None) -> None:
    for label, link_role, url in links(settings):
        if role is None or role == link_role:
            print(f"{label}\t{url}")


class SimulatorMissing(Exception):
    """The simulator's extra (Pillow, rich) is not installed: the server itself does not need it."""


def _need_simulator() -> None:
    try:
        import PIL  # noqa: F401
        import rich  # noqa: F401
    except ModuleNotFoundError as exc:
        raise SimulatorMissing(f"the simulator needs {exc.name}: pip install 'hallbridge[sim]'") from None


def cmd_simulate(settings: Settings, url: str, sites: int, seconds: float, hall: bool) -> None:
    _need_simulator()
    from bench.sim.simulate import run_simulation

    tokens = authority(settings)
    roster = load_roster(settings.roster_path())
    who = [(tokens.issue(Role.HALL), roster.hall.short, "hall")] if hall else []
    who += [(tokens.issue(Role.SITE, s.id), s.short, "site") for s in roster.remote_sites()[:sites]]
    _use_uvloop()
    asyncio.run(run_simulation(url, who, seconds))


def cmd_rehearse(settings: Settings, url: str, name: str, out: Path | None) -> int:
    _need_simulator()
    from bench.sim.rehearsal import Rehearsal, make_display, save
    from bench.sim.scenario import ScenarioError, load_scenario

    roster = load_roster(settings.roster_path())
    try:
        scenario = load_scenario(name, roster)
    except ScenarioError as exc:
        print(f"hallbridge: scenario: {exc}", file=sys.stderr)
        return 2
    _use_uvloop()
    summary = asyncio.run(Rehearsal(url, authority(settings), roster, scenario).run(make_display()))
    print()
    print(f"{summary['scenario']}: {sum(s['joined'] for s in summary['sites'].values())}/"
          f"{len(summary['sites'])} joined, all received the program: {summary['all_received']}, "
          f"floor granted in order: {', '.join(summary['floor_granted_in_order']) or '—'}, "
          f"errors: {len(summary['errors'])}")
    for error in summary["errors"]:
        print(f"  error: {error}")
    if out is not None:
        save(summary, out)
        print(f"summary saved to {out}")
    return 0 if not summary["errors"] and summary["all_joined"] else 1


def cmd_demo(settings: Settings, config: Path, sites: int) -> None:
    """Serve, plus a simulated hall and `sites` simulated sites in a second process."""
    _need_simulator()
    env = dict(os.environ)
    sim = subprocess.Popen(  # started first; it waits for the server below to answer
        [sys.executable, "-m", "signaling.cli", "--config", str(config), "simulate",
         "--sites", str(sites), "--seconds", "86400", "--wait"], env=env)
    try:
        for label, role, url in links(settings)[: 5 + min(sites, 3)]:
            print(f"{role:10} {label}\n           {url}", flush=True)
        print("(all links: hallbridge links)", flush=True)
        cmd_serve(settings)
    finally:
        sim.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.wait(10)


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _wait_for_server(url: str, seconds: float = 30) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                if loop.time() > end:
                    raise
            await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hallbridge", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="settings TOML file")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server")
    p_links = sub.add_parser("links", help="print a join link per role and per site")
    p_links.add_argument("--role", choices=[r.value for r in Role])
    p_sim = sub.add_parser("simulate", help="join simulated sites (aiortc clients)")
    p_sim.add_argument("--url", default=None, help="server URL (default: from settings)")
    p_sim.add_argument("--sites", type=int, default=3)
    p_sim.add_argument("--seconds", type=float, default=30)
    p_sim.add_argument("--no-hall", action="store_true", help="do not simulate the main hall")
    p_sim.add_argument("--wait", action="store_true", help="wait for the server to answer")
    p_sim.add_argument("--scenario", help="play a rehearsal scenario (configs/scenarios/NAME.toml)")
    p_sim.add_argument("--out", type=Path, help="save the rehearsal summary (JSON) here")
    p_revoke = sub.add_parser("revoke", help="refuse a join link from now on")
    p_revoke.add_argument("token", help="the token (the part after #token= in the link)")
    p_cert = sub.add_parser("cert", help="write a self-signed certificate for a rehearsal")
    p_cert.add_argument("--host", action="append", required=True,
                        help="a DNS name or IP address the sites use (repeat for each)")
    p_cert.add_argument("--out", type=Path, default=Path(".hallbridge/tls"))
    p_cert.add_argument("--days", type=int, default=DEFAULT_DAYS)
    sub.add_parser("doctor", help="check certificate, TURN, UDP ports, Redis and secrets "
                   "before a meeting (exit status 1 on any failure)")
    p_demo = sub.add_parser("demo", help="serve plus a simulated hall and sites")
    p_demo.add_argument("--sites", type=int, default=6)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (SettingsError, OSError) as exc:
        print(f"hallbridge: settings: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(args, settings)
    except SecretError as exc:
        print(f"hallbridge: {settings.tokens.secret_env}: {exc}", file=sys.stderr)
        return 2
    except (SimulatorMissing, TokenError) as exc:
        print(f"hallbridge: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"hallbridge: settings: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        cmd_serve(settings)
    elif args.command == "links":
        cmd_links(settings, args.role)
    elif args.command == "simulate":
        url = args.url or settings.server.base_url()
        if args.wait:
            asyncio.run(_wait_for_server(url))
        if args.scenario:
            return cmd_rehearse(settings, url, args.scenario, args.out)
        cmd_simulate(settings, url, args.sites, args.seconds, not args.no_hall)
    elif args.command == "revoke":
        RevocationList(settings.revoked_path()).add(token_id(args.token))
        print("revoked: the link can no longer join (running servers see it at once)")
    elif args.command == "cert":
        cmd_cert(args.host, args.out, args.days)
    elif args.command == "doctor":
        return doctor(settings)
    elif args.command == "demo":
        cmd_demo(settings, args.config, args.sites)
    return 0


if __name__ == "__main__":
    sys.exit(main())
