"""The Redis state store (redis-py asyncio): one document, one version, one audit list.

Keys (all under `store.key_prefix` + the conference id + ":"):
  version      the state version (integer)
  state        the state document (JSON)
  audit        the audit log (list of JSON entries, append-only; entry n is at index
               n - 1 - base, and base + its length is the last number)
  meta         hash: `epoch` (the store's generation, written with the first document) and
               `base` (audit entries a re-seed could not restore)
  hosts        hash: process origin -> its last heartbeat (unix seconds)
  done:<id>    "<version> <attempt>" for a committed attempt or client command id (expires)
  fence:<id>   an in-doubt attempt settled as not applied (expires)
  changes      pub/sub: "<version> <process>" after each commit
A commit is one Lua script: check the generation, the fence and the command id, compare the
version and the audit length, write the document and version (unless only audit entries are
added), append the audit entries, remember the command, publish — atomic in Redis, so two
processes can never both build on one version or give out one audit number twice, and a
retried command applies once.
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
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bridge.store import (
    AUDIT_PAGE,
    COMMAND_IDS_KEPT_S,
    AlreadyApplied,
    Stored,
    StoreLost,
    StoreUnavailable,
    VersionConflict,
)

log = logging.getLogger(__name__)
NAMES = ("version", "state", "audit", "changes", "meta", "hosts")
TIMEOUT_S = 2.0
COMMIT = """
if redis.call('HGET', KEYS[5], 'epoch') ~= ARGV[6] then return {2, 0, ''} end
if redis.call('EXISTS', KEYS[7]) == 1 then return {3, 0, ''} end
local done = redis.call('GET', KEYS[8])
if done then
  local at = string.find(done, ' ')
  return {4, tonumber(string.sub(done, 1, at - 1)), string.sub(done, at + 1)}
end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(redis.call('HGET', KEYS[5], 'base') or '0') + redis.call('LLEN', KEYS[3])
if current ~= tonumber(ARGV[1]) or seq ~= tonumber(ARGV[2]) then
  return {0, current, tostring(seq)}
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[4])
end
for i = 9, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('SET', KEYS[8], ARGV[3] .. ' ' .. ARGV[8], 'EX', ARGV[7])
if ARGV[4] ~= '' then redis.call('PUBLISH', KEYS[4], ARGV[3] .. ' ' .. ARGV[5]) end
return {1, current, tostring(seq)}
"""
SEED = """
if redis.call('HEXISTS', KEYS[5], 'epoch') == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[5], 'epoch', ARGV[3])
  return 0
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[5], 'epoch', ARGV[3], 'base', ARGV[4])
for i = 6, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('PUBLISH', KEYS[4], ARGV[1] .. ' ' .. ARGV[5])
return 1
"""
RESOLVE = """
local done = redis.call('GET', KEYS[2])
if not done then redis.call('SET', KEYS[1], '1', 'EX', ARGV[1]) end
return done
"""
AUDIT = """
local base = tonumber(redis.call('HGET', KEYS[2], 'base') or '0')
local start = math.max(0, tonumber(ARGV[1]) - base)
return redis.call('LRANGE', KEYS[1], start, start + tonumber(ARGV[2]) - 1)
"""


def _unavailable(exc: BaseException, sent: bool) -> StoreUnavailable:
    """A write that was sent and got no answer may have been applied; one that never connected
    was not (redis-py names the failed connect in its message)."""
    return StoreUnavailable(str(exc), in_doubt=sent and "connecting" not in str(exc).lower())


class RedisStore:
    def __init__(self, url: str, prefix: str, conference_id: str) -> None:
        self._base = f"{prefix}{conference_id}:"
        self.keys = [self._base + name for name in NAMES]
        # no silent resend: a command whose answer is lost is settled by the keeper (resolve)
        self._redis = aioredis.from_url(url, socket_timeout=TIMEOUT_S,
                                        socket_connect_timeout=TIMEOUT_S,
                                        retry=Retry(NoBackoff(), 0))
        # notices arrive whenever others commit: no read timeout on the subscriber
        self._subscriber = aioredis.from_url(url, socket_connect_timeout=TIMEOUT_S)
        self._commit = self._redis.register_script(COMMIT)
        self._seed = self._redis.register_script(SEED)
        self._resolve = self._redis.register_script(RESOLVE)
        self._audit = self._redis.register_script(AUDIT)
        self._origin = secrets.token_hex(6)  # this process, to skip its own notices
        self._epoch: str | None = None  # the store's generation as this process last saw it
        self._ready = False
        self._listener: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def origin(self) -> str:
        return self._origin

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self._call(self._redis.ping())
        self._listener = asyncio.create_task(self._listen(on_change), name="redis-changes")

    async def _call(self, work: Awaitable[Any], sent: bool = False) -> Any:
        try:
            result = await work
        except (RedisError, OSError) as exc:
            self._ready = False
            raise _unavailable(exc, sent) from None
        self._ready = True
        return result

    async def load(self) -> Stored | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self.keys[1])
            pipe.llen(self.keys[2])
            pipe.hmget(self.keys[4], ["epoch", "base"])
            state, length, (epoch, base) = await self._call(pipe.execute())
        if state is None:
            if self._epoch is not None:
                raise StoreLost("the store holds no state any more")
            return None
        if epoch is None:  # stored before generations were kept: give it one
            await self._call(self._redis.hsetnx(self.keys[4], "epoch", secrets.token_hex(8)))
            epoch = await self._call(self._redis.hget(self.keys[4], "epoch"))
        epoch = epoch.decode()
        reseeded = self._epoch is not None and epoch != self._epoch
        self._epoch = epoch
        return Stored(json.loads(state), int(base or 0) + int(length), reseeded)

    async def seed(self, document: dict[str, Any], audit: list[dict[str, Any]]) -> bool:
        epoch = secrets.token_hex(8)
        base = int(document["audit_seq"]) - len(audit)
        args = [document["version"], json.dumps(document, ensure_ascii=False), epoch, base,
                self._origin, *(json.dumps(row, ensure_ascii=False) for row in audit)]
        wrote = await self._call(self._seed(keys=self.keys, args=args))
        if wrote:
            self._epoch = epoch
            log.warning("state store seeded: version %s, audit from %d", document["version"], base + 1)
        return bool(wrote)

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]], attempt: str, command: str | None = None) -> None:
        version = base_version if document is None else document["version"]
        body = "" if document is None else json.dumps(document, ensure_ascii=False)
        keys = [*self.keys, self._base + f"fence:{attempt}", self._base + f"done:{command or attempt}"]
        args = [base_version, base_audit_seq, version, body, self._origin, self._epoch or "",
                int(COMMAND_IDS_KEPT_S), attempt,
                *(json.dumps(row, ensure_ascii=False) for row in audit)]
        outcome, current, detail = await self._call(self._commit(keys=keys, args=args), sent=True)
        if outcome == 1:
            return
        if outcome == 2:
            raise StoreLost("the store's generation changed: it was emptied or replaced")
        if outcome == 3:  # settled as not applied while its answer was lost: it never will be
            raise StoreUnavailable("this attempt was fenced off")
        if outcome == 4:
            if detail.decode() == attempt:  # its own answer was lost and it is being sent again
                return
            raise AlreadyApplied(int(current))
        raise VersionConflict(f"store has version {current} and audit {detail.decode()}, "
                              f"not {base_version} and {base_audit_seq}")

    async def resolve(self, attempt: str, command: str | None = None) -> bool:
        keys = [self._base + f"fence:{attempt}", self._base + f"done:{command or attempt}"]
        done = await self._call(self._resolve(keys=keys, args=[int(COMMAND_IDS_KEPT_S)]))
        if done is None:
            return False
        version, _, by = done.decode().partition(" ")
        if by == attempt:
            return True
        raise AlreadyApplied(int(version))  # another attempt of the same command made it

    async def audit(self, since: int, limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
        rows = await self._call(self._audit(keys=[self.keys[2], self.keys[4]], args=[since, limit]))
        return [json.loads(row) for row in rows]

    async def beat(self, now: float) -> dict[str, float]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys[5], self._origin, repr(now))
            pipe.hgetall(self.keys[5])
            pipe.hget(self.keys[4], "epoch")
            _, hosts, epoch = await self._call(pipe.execute())
        if self._epoch is not None and (epoch is None or epoch.decode() != self._epoch):
            raise StoreLost("the store's generation changed: it was emptied or replaced")
        return {k.decode(): float(v) for k, v in hosts.items()}

    async def forget(self, origins: set[str]) -> None:
        if origins:
            await self._call(self._redis.hdel(self.keys[5], *origins))

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
