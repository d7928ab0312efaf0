"""The store's faults, with a real Redis and real server processes: a Redis that comes back empty,
a frozen Redis, a server process killed with its pages (issue 15, defects 1-3).

Each answer a client gets must agree with what the store holds: no acknowledgement for a change
the store does not have, no refusal for a change it does."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench.sim.simulate import SimulatedParticipant
from bridge.roles import Role
from tests.media.helpers import wait_until
from tests.store.conftest import REDIS_URL, ServerProcess, start_redis
from tests.store.test_stores import CONF, CT, DN, HN, Client, tokens_for

QN = "stttt-quang-ninh"


class Watcher(Client):
    """A page that also hears `store:recovered`."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token)
        self.recovered: list[dict[str, Any]] = []
        self.sio.on("store:recovered", self._recovered)

    async def _recovered(self, data: dict[str, Any]) -> None:
        self.recovered.append(data)

    async def __aenter__(self) -> Watcher:
        await super().__aenter__()
        return self


def key(prefix: str, name: str) -> str:
    return f"{prefix}{CONF}:{name}"


async def stored_version(client: aioredis.Redis, prefix: str) -> int | None:
    try:
        value = await client.get(key(prefix, "version"))
    except (aioredis.RedisError, OSError):  # (the first call after a restart meets a dead link)
        return None
    return None if value is None else int(value)


async def test_an_emptied_store_is_refilled_and_no_ack_outruns_it(
        tmp_path: Path, private_redis: tuple[str, Path, int]) -> None:
    """Redis restarts empty (no persistence survived) in the middle of a stream of commands: every
    acknowledged version is in the store when the client hears it, the server refills the store
    from its memory within two beats and tells every client, and a kill -9 right after loses
    nothing that was acknowledged."""
    binary, folder, port = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(binary, folder, port)
    direct = aioredis.from_url(url, socket_timeout=1)
    tokens = tokens_for(tmp_path)
    server = ServerProcess(tmp_path, "hb:", redis_url=url)
    await server.start()
    acked: list[tuple[int, int | None]] = []  # (acknowledged version, store's version right after)
    codes: list[str] = []
    try:
        async with Watcher(server.url, tokens.issue(Role.MODERATOR)) as mod, \
                Watcher(server.url, tokens.issue(Role.SITE, HN)) as hn:
            assert (await hn.call("floor:request", {"topic": "trước sự cố"}))["ok"]
            assert (await mod.call("floor:grant", {"site": HN}))["ok"]
            before_audit = (await mod.call("audit:get", {}))["entries"]

            done = asyncio.Event()

            async def stream() -> None:  # ~15 a second: under the rate limit (20/s)
                muted = False
                for _ in range(600):
                    if done.is_set():
                        return
                    muted = not muted
                    reply = await mod.call("mute:set", {"site": CT, "muted": muted})
                    if reply["ok"]:
                        acked.append((reply["version"], await stored_version(direct, "hb:")))
                    else:
                        codes.append(reply["error"]["code"])
                    await asyncio.sleep(0.06)

            streaming = asyncio.create_task(stream())
            await asyncio.sleep(1.0)
            redis_proc.terminate()  # Redis goes away and comes back with nothing
            redis_proc.wait(10)
            shutil.rmtree(folder)
            folder.mkdir()
            redis_proc = start_redis(binary, folder, port)
            back = time.monotonic()
            assert await wait_until(lambda: bool(mod.recovered and hn.recovered), 9), \
                "every client is told the store was refilled"
            refilled = time.monotonic() - back
            print(f"\nemptied store refilled {refilled:.2f} s after Redis came back")
            seeded = await stored_version(direct, "hb:") or await stored_version(direct, "hb:")
            assert seeded is not None and seeded >= mod.recovered[0]["version"]
            await asyncio.sleep(2.0)  # commands go on, on the refilled store
            done.set()
            await streaming
            assert acked, "commands were acknowledged"
            # (None: Redis went away between the answer and the check: nothing to compare)
            late = [(v, s) for v, s in acked if s is not None and s < v]
            assert not late, f"acknowledged before the store held it: {late[:5]}"
            assert sum(s is not None and v > seeded for v, s in acked) >= 5, \
                "commands were acknowledged and checked on the refilled store"
            assert set(codes) <= {"store_unavailable", "in_doubt"}, codes
            assert await server.ready() == 200
            state = (await mod.call("state:get", {}))["state"]
            assert state["floor"]["holders"][0]["site"] == HN, "the meeting survived the empty store"
            assert state["version"] >= max(v for v, _ in acked)
            assert hn.snapshots and hn.snapshots[-1]["version"] >= mod.recovered[0]["version"]
            audit = (await mod.call("audit:get", {}))["entries"]
            seqs = [e["seq"] for e in audit]
            assert seqs == list(range(1, len(seqs) + 1)), "the audit kept its numbering"
            assert audit[: len(before_audit)] == before_audit, "entries from before are back"
            # flushed while nobody commands: the heartbeat notices within a beat (1 s)
            await direct.flushdb()
            flushed = time.monotonic()
            assert await wait_until(lambda: len(mod.recovered) == 2, 3 * 2.0)
            print(f"flushed store noticed and refilled in {time.monotonic() - flushed:.2f} s")
            assert (await stored_version(direct, "hb:")) == state["version"]
            assert await server.ready() == 200
            last = max(v for v, _ in acked)
        server.kill()  # and the process dies right after: the refilled store holds the meeting
        await server.start()
        async with Client(server.url, tokens.issue(Role.MODERATOR)) as moderator:
            state = (await moderator.call("state:get", {}))["state"]
            assert state["version"] >= last
            assert state["floor"]["holders"][0]["site"] == HN
    finally:
        server.stop()
        await direct.aclose()
        redis_proc.terminate()
        redis_proc.wait(10)


async def test_a_frozen_store_answers_in_doubt_and_a_retry_applies_once(
        tmp_path: Path, private_redis: tuple[str, Path, int]) -> None:
    """Redis frozen (SIGSTOP) under a command: the answer is `in_doubt` (not a refusal: the write
    may land), and once Redis runs again, retries with the same ids apply exactly once, even the
    non-idempotent `floor:next`."""
    binary, folder, port = private_redis
    redis_proc = start_redis(binary, folder, port)
    tokens = tokens_for(tmp_path)
    server = ServerProcess(tmp_path, "hb:", redis_url=f"redis://127.0.0.1:{port}/0")
    await server.start()
    try:
        async with Client(server.url, tokens.issue(Role.MODERATOR)) as mod, \
                Client(server.url, tokens.issue(Role.SITE, HN)) as hn, \
                Client(server.url, tokens.issue(Role.SITE, DN)) as dn:
            assert (await hn.call("floor:request", {}))["ok"]
            assert (await dn.call("floor:request", {}))["ok"]
            redis_proc.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                frozen = await asyncio.gather(
                    mod.call("floor:next", {"id": "next-1"}),
                    mod.call("mute:set", {"site": CT, "muted": True, "hard": True, "id": "mute-ct"}))
                answered = time.monotonic() - started
            finally:
                redis_proc.send_signal(signal.SIGCONT)
            print(f"\nfrozen store: answered in {answered:.1f} s: {[r.get('error', r) for r in frozen]}")
            for reply in frozen:
                assert reply["ok"] is False and reply["error"]["code"] == "in_doubt", reply
            assert await wait_until_ready(server, 15)
            # the retries, with the ids the client used: each is made once
            for payload in ({"id": "next-1"}, {"id": "next-1"}):
                again = await mod.call("floor:next", payload)
                assert again["ok"], again
            replies = [await mod.call("mute:set", {"site": CT, "muted": True, "hard": True, "id": "mute-ct"})
                       for _ in range(2)]
            assert all(r["ok"] for r in replies), replies
            assert replies[1].get("repeated") is True and replies[1]["version"] == replies[0]["version"]
            state = (await mod.call("state:get", {}))["state"]
            assert [h["site"] for h in state["floor"]["holders"]] == [HN], "floor:next made once"
            assert [q["site"] for q in state["floor"]["queue"]] == [DN]
            assert state["mutes"][CT]["hard"] is True
            audit = (await mod.call("audit:get", {}))["entries"]
            assert sum(e["action"] == "floor:next" and e["result"] == "ok" for e in audit) == 1
            assert sum(e["action"] == "mute:set" and e["result"] == "ok" for e in audit) == 1
            # an id is the client's: another link's same id is another command
            other = await mod.call("floor:next", {"id": "bad id!"})
            assert other["ok"] is False and other["error"]["code"] == "bad_request"
            async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as r:
                metrics = await r.text()
            assert 'hallbridge_in_doubt_commits_total{outcome="unsettled"} 2.0' in metrics, metrics
            print([line for line in metrics.splitlines() if line.startswith("hallbridge_in_doubt")])
    finally:
        server.stop()
        redis_proc.terminate()
        redis_proc.wait(10)


async def wait_until_ready(server: ServerProcess, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await server.ready() == 200:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_sites_of_a_killed_process_go_offline_after_the_grace(tmp_path: Path, prefix: str) -> None:
    """Two processes on one Redis; one is killed with its pages and restarted. After the grace the
    sites it held are offline from its last beat (the attendance gap starts there); the floor
    holder among them is away at once and loses the floor by the floor's grace; a page that came
    back through the other process stays; the other process's own sites are untouched."""
    tokens = tokens_for(tmp_path)
    grace = 3.0
    a, b = ServerProcess(tmp_path, prefix), ServerProcess(tmp_path, prefix)
    for server in (a, b):
        server.env.update(HALLBRIDGE__STORE__HOST_GRACE_S=str(grace), HALLBRIDGE__CONTROL__GRACE_S="2")
    await a.start()
    await b.start()
    hn = SimulatedParticipant(a.url, tokens.issue(Role.SITE, HN), "Hà Nội", 2, width=160, height=90, fps=10)
    direct = aioredis.from_url(REDIS_URL)
    try:
        async with Client(a.url, tokens.issue(Role.SITE, DN)) as dn_on_a, \
                Client(b.url, tokens.issue(Role.SITE, QN)), \
                Client(b.url, tokens.issue(Role.MODERATOR)) as mod:
            await hn.connect()
            await hn.join_media()

            async def state() -> dict[str, Any]:
                reply: dict[str, Any] = (await mod.call("state:get", {}))["state"]
                return reply

            assert await poll(lambda s: s["sites"][HN]["presence"] == "live", state, 20)
            assert (await hn.call("floor:request", {}))["ok"]
            assert (await mod.call("floor:grant", {"site": HN}))["ok"]
            assert await poll(lambda s: s["program"] == HN and s["sites"][DN]["presence"] == "signaling"
                              and s["sites"][QN]["presence"] == "signaling", state, 10)
            del dn_on_a
            a.kill()  # kill -9: its pages die with it and never come back
            killed = time.time()
            await hn.close()
            await a.start()  # and it is restarted on the same Redis (a new process)
            async with Client(b.url, tokens.issue(Role.SITE, CT)), \
                    Client(b.url, tokens.issue(Role.SITE, DN)):  # DN's page came back, through b
                assert await poll(lambda s: s["sites"][HN]["presence"] == "offline", state, 3 * (grace + 2))
                offline_after = time.time() - killed
                print(f"\nsites of the killed process offline {offline_after:.1f} s after kill -9")
                now = await state()
                assert now["sites"][DN]["presence"] == "signaling", "the page that came back stays"
                assert now["sites"][QN]["presence"] == "signaling", "the other process's site stays"
                assert now["sites"][CT]["presence"] == "signaling"
                assert now["program"] != HN, "no frozen picture of a dead site on the program"
                assert HN in now["floor"]["away"] or not now["floor"]["holders"]
                assert await poll(lambda s: not s["floor"]["holders"], state, 3 * 3)
                document = json.loads(await direct.get(key(prefix, "state")) or "{}")
                _, end = document["attendance"][HN]["intervals"][-1]
                audit = (await mod.call("audit:get", {}))["entries"]
                assert end is not None and killed - 2.5 <= end <= killed + 0.5, \
                    json.dumps({"end_after_kill": end - killed, "killed": killed,
                                "why": "the gap starts at the dead process's last beat",
                                "attendance": document["attendance"][HN], "site": document["sites"][HN],
                                "audit": [e for e in audit if e.get("target") == HN][-4:]},
                               ensure_ascii=False)
                assert any(e["action"] == "floor:revoked" and e["target"] == HN for e in audit)
    finally:
        await hn.close()
        a.stop()
        b.stop()
        await direct.aclose()


async def poll(predicate: Any, read: Any, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate(await read()):
            return True
        await asyncio.sleep(0.2)
    return bool(predicate(await read()))
