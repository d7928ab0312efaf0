"""Behind a reverse proxy: `X-Forwarded-For/-Proto/-Host` honoured from `server.trusted_proxies`
only.

A request whose TCP peer is one of the trusted proxies is handed on as the client's: its remote
address is the right-most X-Forwarded-For entry that is not itself a trusted proxy, its scheme and
host the forwarded ones (aiohttp-remotes' `XForwardedFiltered` reads the headers). From any other
peer the headers are ignored, so a client cannot pick the address the per-address limits and the
logs see. `XForwardedStrict` is not used: it refuses every request not from a proxy (the console on
the hall's LAN reaches the server directly) instead of ignoring the headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp_remotes import XForwardedFiltered

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# set on the request the server made when a trusted proxy forwarded it over HTTPS: the response
# hooks (security.py) see that request, not the forwarded clone
FORWARDED_SECURE = web.RequestKey("forwarded_secure", bool)


class TrustedProxies:
    def __init__(self, networks: Sequence[str]) -> None:
        self._networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._headers = XForwardedFiltered(set(networks))

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # a Unix socket or an unknown peer: not a proxy we know
            return False
        return any(ip in net for net in self._networks)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not peer or not self.trusts(str(peer[0])):
            return await handler(request)  # not from our proxy: its X-Forwarded-* mean nothing

        async def forwarded(clone: web.Request) -> web.StreamResponse:
            request[FORWARDED_SECURE] = clone.secure
            return await handler(clone)

        return await self._headers.middleware(request, forwarded)


def install(app: web.Application, networks: Sequence[str]) -> None:
    if networks:
        app.middlewares.append(TrustedProxies(networks).middleware)
