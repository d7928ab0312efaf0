"""Who may do what: the role x action matrix, in one place, enforced by the server.

A site acts only on itself: for the `site` role every targeted action must name its own site.
"""

from __future__ import annotations

from bridge.control import Refused
from bridge.roles import Role

EVERYONE = frozenset(Role)
CONSOLE = frozenset({Role.TECHNICIAN, Role.MODERATOR})
MODERATOR = frozenset({Role.MODERATOR})
TECHNICIAN = frozenset({Role.TECHNICIAN})
SITE = frozenset({Role.SITE})

MATRIX: dict[str, frozenset[Role]] = {
    "state:get": EVERYONE,
    "media:offer": EVERYONE,
    "media:leave": EVERYONE,
    "audit:get": CONSOLE,
    "program:set": CONSOLE,
    "program:mode": CONSOLE,
    "listen:set": TECHNICIAN,
    "line:set": TECHNICIAN,  # a site pinned to the low program layer ("đường truyền yếu")
    "record:start": TECHNICIAN,
    "record:stop": TECHNICIAN,
    "floor:request": SITE | MODERATOR,  # a moderator may ask on a site's behalf
    "floor:cancel": SITE | MODERATOR,
    "floor:release": SITE | MODERATOR,
    "floor:accept": MODERATOR,
    "floor:deny": MODERATOR,
    "floor:grant": MODERATOR,
    "floor:next": MODERATOR,
    "floor:revoke": MODERATOR,
    "floor:reorder": MODERATOR,
    "mute:self": SITE | {Role.HALL},
    "mute:set": CONSOLE,
    "mute:all": CONSOLE,
    "mute:ask": MODERATOR,
    "mute:answer": SITE,
    "rollcall:start": MODERATOR,
    "rollcall:answer": SITE,
    "rollcall:mark": MODERATOR,
    "rollcall:end": MODERATOR,
    "agenda:set": MODERATOR,
    "agenda:next": MODERATOR,
    "report:attendance": CONSOLE,
    "present:start": SITE | {Role.HALL},  # a site once granted; the hall without a grant
    "present:stop": SITE | {Role.HALL},
    "present:grant": CONSOLE,
    "present:revoke": CONSOLE,
}


# actions that change the conference: each one, applied or refused, goes to the audit log
AUDITED = frozenset(MATRIX) - {"state:get", "media:offer", "media:leave", "audit:get",
                               "report:attendance"}


def allowed(role: Role, action: str) -> bool:
    return role in MATRIX.get(action, frozenset())


def check(role: Role, own_site: str | None, action: str, target: str | None) -> None:
    """Raise `Refused("forbidden")` unless this role may take this action on this target."""
    if not allowed(role, action):
        raise Refused("forbidden", f"role {role.value} may not {action}")
    if role in (Role.SITE, Role.HALL) and target is not None and target != own_site:
        raise Refused("forbidden", "a site acts only on itself")
