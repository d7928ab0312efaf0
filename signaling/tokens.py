"""Signed join tokens (JWT, HS256): conference id, role, site id, expiry. Verified, never trusted."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from bridge.conference import Actor
from bridge.roles import Role
from bridge.roster import Roster

ALGORITHM = "HS256"
ISSUER = "hallbridge"


class SecretError(ValueError):
    """The token secret is unusable (too short): a clear message, no traceback."""


MIN_SECRET_BYTES = 32


class TokenError(ValueError):
    """The token is missing, malformed, expired, tampered with, or for another conference."""


@dataclass(frozen=True, slots=True)
class Identity:
    role: Role
    site_id: str | None
    subject: str  # stable name for logs and audit: site id or role
    token_id: str = ""  # the token's jti: its pages are counted, its revocation ends them
    expires_at: float = float("inf")  # the token's exp: its sessions end then

    def actor(self) -> Actor:
        return Actor(self.role, self.site_id, self.subject)


class TokenAuthority:
    def __init__(self, secret: bytes, conference_id: str, roster: Roster,
                 revoked: RevocationList | None = None) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise SecretError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes "
                              f"(it has {len(secret)}): set a longer one, e.g. "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        self._revoked = revoked
        self._secret = secret
        self._conference = conference_id
        self._roster = roster

    def issue(self, role: Role, site_id: str | None = None, ttl_s: float = 12 * 3600) -> str:
        if role.needs_site and site_id is None:
            site_id = self._roster.hall.id if role is Role.HALL else None
        self._check_site(role, site_id)
        now = int(time.time())
        claims: dict[str, object] = {"iss": ISSUER, "conf": self._conference, "role": role.value,
                                     "iat": now, "exp": now + int(ttl_s),
                                     "jti": secrets.token_urlsafe(12)}
        if site_id is not None:
            claims["site"] = site_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: object) -> Identity:
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise TokenError("a token is required")
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "iat", "iss", "conf", "role", "jti"]})
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token: {exc}") from exc
        if claims["conf"] != self._conference:
            raise TokenError("token is for another conference")
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise TokenError("token has no id (jti)")
        if self._revoked is not None and self._revoked.contains(claims["jti"]):
            raise TokenError("token revoked")
        try:
            role = Role(claims["role"])
        except ValueError as exc:
            raise TokenError("token has an unknown role") from exc
        site_id = claims.get("site")
        self._check_site(role, site_id)
        return Identity(role, site_id, site_id or role.value, claims["jti"], float(claims["exp"]))

    def ended(self, identity: Identity, now: float | None = None) -> str | None:
        """Why a verified session may no longer act: "revoked", "expired", or None."""
        if self._revoked is not None and self._revoked.contains(identity.token_id):
            return "revoked"
        if (time.time() if now is None else now) >= identity.expires_at:
            return "expired"
        return None

    def _check_site(self, role: Role, site_id: object) -> None:
        if role.needs_site:
            site = self._roster.get(site_id) if isinstance(site_id, str) else None
            if site is None:
                raise TokenError(f"role {role.value} needs a site of this roster")
            if site.is_hall != (role is Role.HALL):
                raise TokenError("the hall role and the hall site go together")
        elif site_id is not None:
            raise TokenError(f"role {role.value} carries no site")


def token_id(token: str) -> str:
    """The id (jti) of a token, read without checking it (for revocation)."""
    try:
        jti = jwt.decode(token, options={"verify_signature": False}).get("jti")
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    if not isinstance(jti, str) or not jti or "\n" in jti:
        raise TokenError("the token has no id (jti): no server would accept it")
    return jti


class RevocationList:
    """Token ids that may no longer join, from a file read again whenever it changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: float | None = None
        self._ids: frozenset[str] = frozenset()

    def contains(self, jti: str) -> bool:
        try:
            stamp = self._path.stat().st_mtime
        except FileNotFoundError:
            return False
        if stamp != self._stamp:
            lines = self._path.read_text(encoding="utf-8").split()
            self._ids, self._stamp = frozenset(lines), stamp
        return jti in self._ids

    def add(self, jti: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(jti + "\n")


def load_secret(env_name: str, path: Path) -> bytes:
    """The secret from the environment, else from a file created on first use (mode 0600)."""
    value = os.environ.get(env_name)
    if value:
        return value.encode()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
