from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from bridge.roles import Role
from bridge.roster import load_roster
from signaling.settings import DEFAULT_CONFIG
from signaling.tokens import TokenAuthority, TokenError, token_id

SECRET = b"s" * 48
ROSTER = load_roster(DEFAULT_CONFIG.parent / "sites.toml")


def authority(conference: str = "hop-a") -> TokenAuthority:
    return TokenAuthority(SECRET, conference, ROSTER)


def test_round_trip_carries_role_site_and_conference() -> None:
    ident = authority().verify(authority().issue(Role.SITE, "stttt-ha-noi"))
    assert ident.role is Role.SITE and ident.site_id == "stttt-ha-noi"
    hall = authority().verify(authority().issue(Role.HALL))
    assert hall.role is Role.HALL and hall.site_id == "hall"
    tech = authority().verify(authority().issue(Role.TECHNICIAN))
    assert tech.site_id is None


def test_expired_token_is_refused() -> None:
    token = authority().issue(Role.SITE, "stttt-ha-noi", ttl_s=-5)
    with pytest.raises(TokenError, match="expired"):
        authority().verify(token)


def test_tampered_token_is_refused() -> None:
    token = authority().issue(Role.SITE, "stttt-ha-noi")
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["role"] = "moderator"
    claims.pop("site")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        authority().verify(f"{head}.{forged}.{sig}")


def test_wrong_conference_is_refused() -> None:
    with pytest.raises(TokenError, match="another conference"):
        authority("hop-b").verify(authority("hop-a").issue(Role.MODERATOR))


def test_alg_none_is_refused() -> None:
    now = int(time.time())
    claims = {"iss": "hallbridge", "conf": "hop-a", "role": "moderator", "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(TokenError):
        authority().verify(unsigned)


def test_other_secret_is_refused() -> None:
    other = TokenAuthority(b"x" * 48, "hop-a", ROSTER).issue(Role.TECHNICIAN)
    with pytest.raises(TokenError):
        authority().verify(other)


@pytest.mark.parametrize("claims", [
    {"role": "site"},  # a site token without a site
    {"role": "site", "site": "stttt-atlantis"},  # a site that is not in the roster
    {"role": "moderator", "site": "stttt-ha-noi"},  # a role that carries no site
    {"role": "site", "site": "hall"},  # the hall site needs the hall role
    {"role": "admin"},
])
def test_inconsistent_claims_are_refused(claims: dict[str, str]) -> None:
    now = int(time.time())
    base = {"iss": "hallbridge", "conf": "hop-a", "iat": now, "exp": now + 60, "jti": "t1"}
    with pytest.raises(TokenError):
        authority().verify(jwt.encode({**base, **claims}, SECRET, algorithm="HS256"))


def test_a_token_without_an_id_is_refused_as_it_could_not_be_revoked() -> None:
    now = int(time.time())
    claims = {"iss": "hallbridge", "conf": "hop-a", "role": "moderator", "iat": now, "exp": now + 60}
    assert authority().verify(jwt.encode({**claims, "jti": "t1"}, SECRET, algorithm="HS256"))
    for jti in ({}, {"jti": ""}, {"jti": 7}):
        token = jwt.encode({**claims, **jti}, SECRET, algorithm="HS256")
        with pytest.raises(TokenError):
            authority().verify(token)
        with pytest.raises(TokenError, match="no id"):
            token_id(token)


@pytest.mark.parametrize("token", [None, "", 42, "a.b.c", "x" * 5000])
def test_garbage_is_refused(token: object) -> None:
    with pytest.raises(TokenError):
        authority().verify(token)


def test_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError):
        TokenAuthority(b"short", "hop-a", ROSTER)
