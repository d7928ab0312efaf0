"""The Redis state store (redis-py asyncio): one document, one version, one audit list.

Keys (all under `store.key_prefix` + the conference id):
  KEY_VERSION  "<prefix><conference>:version"  the state version (integer)
  KEY_STATE    "<prefix><conference>:state"    the state document (JSON)
  KEY_AUDIT    "<prefix><conference>:audit"    the audit log (list of JSON entries, append-only)
  CHANNEL      "<prefix><conference>:changes"  pub/sub: "<version> <process>" after each commit
A commit is one Lua script: compare the version, write the document and version, append the
audit entries, publish — atomic in Redis, so two processes can never both build on one version.
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

from bridge.store import Stored, StoreUnavailable, VersionConflict

log = logging.getLogger(__name__)
KEY_VERSION, KEY_STATE, KEY_AUDIT, CHANNEL = "version", "state", "audit", "changes"
TIMEOUT_S = 2.0
COMMIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
for i = 5, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('PUBLISH', KEYS[4], ARGV[2] .. ' ' .. ARGV[4])
return {1, tonumber(ARGV[2])}
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
            state, audit = await asyncio.gather(self._redis.get(self.keys[1]),
                                                self._redis.lrange(self.keys[2], 0, -1))
        except (RedisError, OSError) as exc:
            self._ready = False
            raise StoreUnavailable(str(exc)) from None
        if state is None:
            return None
        return Stored(json.loads(state), [json.loads(row) for row in audit])

    async def commit(self, base_version: int, document: dict[str, Any],
                     audit: list[dict[str, Any]]) -> None:
        args = [base_version, document["version"], json.dumps(document, ensure_ascii=False),
                self._origin, *(json.dumps(row, ensure_ascii=False) for row in audit)]
        try:
            ok, current = await self._commit(keys=self.keys, args=args)
        except (RedisError, OSError) as exc:
            self._ready = False
            raise StoreUnavailable(str(exc)) from None
        self._ready = True
        if not ok:
            raise VersionConflict(f"store has version {current}, not {base_version}")

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
