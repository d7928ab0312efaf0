"""The Redis state store (redis-py asyncio): one document, one version, one audit list.

Keys (all under `store.key_prefix` + the conference id):
  KEY_VERSION  "<prefix><conference>:version"  the state version (integer)
  KEY_STATE    "<prefix><conference>:state"    the state document (JSON)
  KEY_AUDIT    "<prefix><conference>:audit"    the audit log (list of JSON entries, append-only;
                                               entry n is at index n - 1, its length the last n)
  CHANNEL      "<prefix><conference>:changes"  pub/sub: "<version> <process>" after each commit
A commit is one Lua script: compare the version and the audit length, write the document and
version (unless only audit entries are added), append the audit entries, publish — atomic in
Redis, so two processes can never both build on one version or give out one audit number twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bridge.store import AUDIT_PAGE, Stored, StoreUnavailable, VersionConflict

log = logging.getLogger(__name__)
KEY_VERSION, KEY_STATE, KEY_AUDIT, CHANNEL = "version", "state", "audit", "changes"
TIMEOUT_S = 2.0
COMMIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = redis.call('LLEN', KEYS[3])
if current ~= tonumber(ARGV[1]) or seq ~= tonumber(ARGV[2]) then return {0, current, seq} end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[4])
end
for i = 6, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
if ARGV[4] ~= '' then redis.call('PUBLISH', KEYS[4], ARGV[3] .. ' ' .. ARGV[5]) end
return {1, current, seq}
"""


class RedisStore:
    def __init__(self, url: str, prefix: str, conference_id: str) -> None:
        base = f"{prefix}{conference_id}:"
        self.keys = [base + KEY_VERSION, base + KEY_STATE, base + KEY_AUDIT, base + CHANNEL]
        self._redis = aioredis.from_url(url, socket_timeout=TIMEOUT_S,
                                        socket_connect_timeout=TIMEOUT_S)
        # notices arrive whenever others commit: no read timeout on the subscriber
        self._subscriber = aioredis.from_url(url, socket_connect_timeout=TIMEOUT_S)
        self._commit = self._redis.register_script(COMMIT)
        self._origin = secrets.token_hex(6)  # this process, to skip its own notices
        self._ready = False
        self._listener: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        await self.ping()
        self._listener = asyncio.create_task(self._listen(on_change), name="redis-changes")

    async def load(self) -> Stored | None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self.keys[1])
                pipe.llen(self.keys[2])
                state, seq = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._ready = False
            raise StoreUnavailable(str(exc)) from None
        if state is None:
            return None
        return Stored(json.loads(state), int(seq))

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]]) -> None:
        version = base_version if document is None else document["version"]
        body = "" if document is None else json.dumps(document, ensure_ascii=False)
        args = [base_version, base_audit_seq, version, body, self._origin,
                *(json.dumps(row, ensure_ascii=False) for row in audit)]
        try:
            ok, current, seq = await self._commit(keys=self.keys, args=args)
        except (RedisError, OSError) as exc:
            self._ready = False
            raise StoreUnavailable(str(exc)) from None
        self._ready = True
        if not ok:
            raise VersionConflict(f"store has version {current} and audit {seq}, "
                                  f"not {base_version} and {base_audit_seq}")

    async def audit(self, since: int, limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
        try:
            rows = await self._redis.lrange(self.keys[2], since, since + limit - 1)
        except (RedisError, OSError) as exc:
            self._ready = False
            raise StoreUnavailable(str(exc)) from None
        return [json.loads(row) for row in rows]

    async def ping(self) -> bool:
        try:
            await self._redis.ping()
            self._ready = True
        except (RedisError, OSError):
            self._ready = False
        return self._ready

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._redis.aclose()
        await self._subscriber.aclose()

    async def _listen(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        while True:  # survives outages: subscribe again once Redis answers
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.subscribe(self.keys[3])
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    version, _, origin = message["data"].decode().partition(" ")
                    if origin != self._origin:
                        await on_change(int(version))
            except (RedisError, OSError, ValueError):
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
