"""Who may do what: the role x action matrix, in one place, enforced by the server."""

from __future__ import annotations

from bridge.roles import Role

EVERYONE = frozenset(Role)
CONSOLE = frozenset({Role.TECHNICIAN, Role.MODERATOR})

MATRIX: dict[str, frozenset[Role]] = {
    "state:get": EVERYONE,
    "media:offer": EVERYONE,
    "media:leave": EVERYONE,
    "program:set": CONSOLE,
    "listen:set": frozenset({Role.TECHNICIAN}),
    "record:start": frozenset({Role.TECHNICIAN}),
    "record:stop": frozenset({Role.TECHNICIAN}),
}


def allowed(role: Role, action: str) -> bool:
    return role in MATRIX.get(action, frozenset())
