"""TURN credentials that expire: the TURN REST scheme coturn implements (`use-auth-secret`).

Each client gets its own in `welcome`: username `<expiry unix seconds>:<who>`, password
base64(HMAC-SHA1(secret, username)). coturn, configured with the same `static-auth-secret`,
recomputes the password and refuses an expired or tampered one; the secret never leaves the
server. Sites behind firewalls that pass only TCP 443 reach the bridge through TURN over TCP/TLS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any


def credentials(secret: bytes, who: str, now: float, ttl_s: int, urls: list[str]) -> dict[str, Any]:
    """One RTCIceServer entry (as a browser's RTCPeerConnection takes it) valid for `ttl_s`."""
    username = f"{int(now) + ttl_s}:{who}"
    password = base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest()).decode()
    return {"urls": list(urls), "username": username, "credential": password}
