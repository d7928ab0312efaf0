"""The state keeper applies changes one at a time in the order they arrive, whether a command runs
in its caller's task (nothing before it) or waits behind queued work."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.conference import Conference
from bridge.roster import load_roster
from bridge.store import MemoryStore
from signaling.persistence import StateKeeper
from signaling.settings import DEFAULT_CONFIG, load_settings

ROSTER = load_roster(DEFAULT_CONFIG.parent / "sites.toml")
SITES = [s.id for s in ROSTER.remote_sites()]


class GatedStore(MemoryStore):
    """A store whose commits wait until the test opens the gate (a slow Redis, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]], attempt: str, command: str | None = None) -> None:
        await self.gate.wait()
        await super().commit(base_version, base_audit_seq, document, audit, attempt, command)


async def started(store: MemoryStore) -> tuple[StateKeeper, Conference, list[dict[str, Any]]]:
    conference = Conference(load_settings(env={}).conference.id, "t", ROSTER)
    patches: list[dict[str, Any]] = []
    keeper = StateKeeper(conference, store, patches.append, lambda announce: None)
    await keeper.start()
    return keeper, conference, patches


async def test_a_command_sees_every_change_queued_before_it() -> None:
    keeper, conference, patches = await started(MemoryStore())
    try:
        seen: list[str | None] = []
        keeper.submit(lambda c, now: c.set_program(SITES[0], now))  # nobody waits for it
        await keeper.change(lambda c, now: seen.append(c.pinned) or c.set_program(SITES[1], now))
        assert seen == [SITES[0]]
        assert [p.get("program") for p in patches][-2:] == [SITES[0], SITES[1]]
        assert conference.pinned == SITES[1]
    finally:
        await keeper.stop()


async def test_commands_wait_for_the_change_being_committed() -> None:
    store = GatedStore()
    keeper, conference, patches = await started(store)
    try:
        version = conference.version
        store.gate.clear()
        first = asyncio.create_task(keeper.change(lambda c, now: c.set_program(SITES[0], now)))
        await asyncio.sleep(0.05)  # the first is now inside the store's commit
        second = asyncio.create_task(keeper.change(lambda c, now: c.set_program(SITES[1], now)))
        await asyncio.sleep(0.05)
        assert not first.done() and not second.done()
        assert store.document is not None and store.document["version"] == version
        store.gate.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert [p["version"] for p in patches][-2:] == [version + 1, version + 2]
        assert [p["program"] for p in patches][-2:] == [SITES[0], SITES[1]]
        assert store.document["version"] == version + 2 and conference.pinned == SITES[1]
    finally:
        await keeper.stop()


async def test_a_command_cancelled_mid_write_changes_nothing_and_the_next_one_commits() -> None:
    store = GatedStore()
    keeper, conference, patches = await started(store)
    try:
        version, pinned = conference.version, conference.pinned
        store.gate.clear()
        doomed = asyncio.create_task(keeper.change(lambda c, now: c.set_program(SITES[0], now)))
        await asyncio.sleep(0.05)  # inside the store's write
        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        assert (conference.version, conference.pinned) == (version, pinned), "memory went back"
        store.gate.set()
        await asyncio.wait_for(keeper.change(lambda c, now: c.set_program(SITES[1], now)), 5)
        assert conference.version == version + 1 and conference.pinned == SITES[1]
        assert store.document is not None and store.document["version"] == version + 1
        assert patches[-1]["program"] == SITES[1]
    finally:
        await keeper.stop()
