"""The state keeper: every change to the conference, in order, committed before it is told.

One worker task (owned here) takes changes from one bounded queue: it applies a change to the
in-memory conference, commits the new document to the store against the version it was built on,
and only then reports the patch. A change someone waits for (a command) runs in the caller's task
when nothing is queued or being applied: the same order, without two hops through the event loop
(under a keyframe burst each hop waits for a turn of the fan-out). A conflict (another process was
first) reloads and applies the change again; an unreachable store puts the state back as it was
and refuses the change clearly.

No answer contradicts the store:
- a commit whose answer was lost (sent, then a timeout) is *in doubt*: it is settled with the
  store before the caller hears anything (applied: acknowledged; fenced off: refused); when the
  store stays silent the answer is `in_doubt`, and a retry with the same command id applies once;
- a store found empty (restarted without persistence, flushed, an empty replica) is re-seeded
  from this process's memory before anything else is committed, and every client is told.
Changes that nobody waits for (presence, timers, the dominant speaker) are kept while the store is
away and applied when it returns. A health loop beats every second: it notices an outage, an
emptied store and server processes that died (the sites they held go offline after a grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from bridge.conference import Conference
from bridge.control import Refused
from bridge.state_codec import audit_to_wire, load_document, to_document
from bridge.store import AlreadyApplied, StateStore, StoreLost, StoreUnavailable, VersionConflict
from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)
Change = Callable[[Conference, float], dict[str, Any] | None]
Job = tuple[Change | None, "asyncio.Future[Any] | None", str | None]  # (None: reload), waiter, command id
QUEUE_LIMIT = 1000  # changes waiting for the worker; beyond it commands are refused as busy
DEFERRED_LIMIT = 1000  # background changes kept through a store outage
UNSETTLED_LIMIT = 1000  # in-doubt commits waiting for the store to settle them
HEALTH_S = 1.0
RETRIES = 5
SETTLE_S = 2.0  # how long an in-doubt commit is settled with the store before the answer says so
SETTLE_STEP_S = 0.2
HOST_GRACE_S = 10.0  # a process silent this long is gone (its pages had time to come back)


class StateKeeper:
    def __init__(self, conference: Conference, store: StateStore,
                 on_commit: Callable[[dict[str, Any] | None], None],
                 on_reload: Callable[[str | None], None], clock: Callable[[], float] = time.time,
                 host_grace_s: float = HOST_GRACE_S) -> None:
        """`on_commit(patch)` after every committed change (None: nothing to broadcast, e.g. a
        listen-in); `on_reload(reason)` after the state was read from (or re-seeded into) the
        store: None quietly (another process's commit), else why every client must be told:
        "start", "outage", "reseeded" (this process refilled an emptied store), "replaced"
        (another process did)."""
        self.conference = conference
        self.store = store
        self._on_commit = on_commit
        self._on_reload = on_reload
        self._announce: str | None = None  # the next queued reload follows an outage: tell everyone
        self._clock = clock
        self._host_grace_s = host_grace_s
        self._queue: asyncio.Queue[Job] = asyncio.Queue(QUEUE_LIMIT)
        self._deferred: list[Change] = []
        self._unsettled: list[tuple[str, str | None]] = []  # in-doubt (attempt, command) left open
        self._unseen: dict[str, float] = {}  # hosts holding sites that never beat: first seen
        self._tasks: list[asyncio.Task[None]] = []
        self._applying = asyncio.Lock()  # one change at a time, queued or inline
        self._was_ready = True
        self._lost = False  # the store was found empty and is not re-seeded yet
        self.store_errors = 0
        self.audit_unstored = 0  # audit entries of refusals made while the store was away
        self.reseeds = 0  # times this process refilled an emptied store
        self.lost_detected_s: float | None = None  # last emptied store: seconds from beat to seed
        # commits whose answer was lost: settled before answering (applied / not_applied), or
        # answered in_doubt (unsettled) and settled when the store was back; retries made once
        self.in_doubt = {"applied": 0, "not_applied": 0, "unsettled": 0, "settled_applied": 0,
                         "settled_not_applied": 0, "repeated": 0}

    @property
    def ready(self) -> bool:
        return self.store.ready and not self._lost

    @property
    def host(self) -> str:
        """This process among those sharing the store."""
        return self.store.origin

    async def start(self) -> None:
        """Load the stored state (or store the fresh one), then start the worker and health loop."""
        await self.store.start(self._remote_change)
        try:
            await self._reload("start")
            if self.conference.version > 0:  # a stored meeting goes on after a restart
                self.conference.restarted_at = self._clock()
            elif not await self.store.seed(to_document(self.conference), []):
                await self._reload("start")  # another process stored it first
        except (StoreUnavailable, VersionConflict) as exc:
            log.warning("state store not ready at start: %s", exc)
        # a first heartbeat before this process serves a page: one killed within its first
        # second (before the health loop's first beat) still leaves its last sign of life, and
        # the others end its sites' attendance there, not when they first noticed it
        with contextlib.suppress(StoreUnavailable, StoreLost):
            await self.store.beat(self._clock())
        self._tasks = [asyncio.create_task(self._work(), name="state-keeper"),
                       asyncio.create_task(self._watch(), name="state-health")]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self.store.close()

    async def change(self, fn: Change, command: str | None = None) -> dict[str, Any] | None:
        """Apply and commit a change; its patch once the store has it (or Refused).
        `command`: the client's id for it; a second change with the same id is not applied again
        (`AlreadyApplied` names the version the first one made)."""
        if self._tasks and self._queue.empty() and not self._applying.locked():
            async with self._applying:  # nothing before it: apply here, in order
                return await self._commit(fn, command)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((fn, future, command))
        except asyncio.QueueFull:
            raise Refused("busy", "the server is busy: try again") from None
        result: dict[str, Any] | None = await future
        return result

    async def sync(self) -> None:
        """Catch up with the store (another process may have committed a moment ago), quietly:
        the caller reads the state itself."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((None, future, None))
        except asyncio.QueueFull:
            return
        with contextlib.suppress(StoreUnavailable):
            await future

    def submit(self, fn: Change) -> None:
        """A background change nobody waits for (kept through a store outage)."""
        try:
            self._queue.put_nowait((fn, None, None))
        except asyncio.QueueFull:
            self._defer(fn)

    # -- the worker ------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            fn, future, command = await self._queue.get()
            try:
                async with self._applying:
                    if fn is not None:
                        result = await self._commit(fn, command)
                    else:
                        announce, self._announce = self._announce, None
                        result = None
                        try:
                            await self._reload(announce)
                        except BaseException:
                            self._announce = self._announce or announce  # still owed
                            raise
            except Exception as exc:
                if future is not None and not future.done():
                    future.set_exception(exc)
                elif fn is not None and isinstance(exc, Refused) and exc.code == "store_unavailable":
                    self._defer(fn)
                elif not isinstance(exc, Refused | StoreUnavailable):
                    log.exception("state change failed")
            else:
                if future is not None and not future.done():
                    future.set_result(result)

    async def _commit(self, fn: Change, command: str | None) -> dict[str, Any] | None:
        conference = self.conference
        for _ in range(RETRIES):
            before = to_document(conference)
            base_version, base_seq = conference.version, conference.audit.last_seq
            refusal: Refused | None = None
            try:
                patch = fn(conference, self._clock())
            except Refused as exc:  # nothing changed, but the refusal is an audited action
                refusal, patch = exc, None
            rows = audit_to_wire(conference.audit.since(base_seq))
            changed = conference.version != base_version
            if not changed and not rows:
                if refusal is not None:
                    raise refusal
                return None
            attempt = secrets.token_hex(8)
            try:
                await self.store.commit(base_version, base_seq,
                                        to_document(conference) if changed else None, rows,
                                        attempt, command if changed else None)
            except VersionConflict:
                self._roll_back(before, base_seq)
                await self._reload(None)  # another process was first: on its state, again
                continue
            except StoreLost:
                self._roll_back(before, base_seq)
                try:
                    await self._reseed()
                except StoreUnavailable:
                    raise Refused("store_unavailable", "the state store lost its data and cannot "
                                  "be refilled yet: nothing was changed, try again") from None
                continue  # on the refilled store, again
            except AlreadyApplied as done:  # a retry of a command the store holds already
                self._roll_back(before, base_seq)
                self.in_doubt["repeated"] += 1
                await self._reload(None)
                raise done from None
            except StoreUnavailable as exc:
                self.store_errors += 1
                if exc.in_doubt and changed:
                    return await self._in_doubt(patch, before, base_seq, attempt, command)
                self._roll_back(before, base_seq)
                if refusal is not None:  # its answer stands; its audit entry could not be kept
                    self.audit_unstored += len(rows)
                    log.warning("store away: %d audit entries not kept", len(rows))
                    raise refusal from None
                raise Refused("store_unavailable",
                              "the state store is unreachable: nothing was changed, try again") from None
            except asyncio.CancelledError:
                # the caller went away mid-write (shutdown): whether the store took it is unknown,
                # so the memory goes back and the store's word is read again, in order
                self._roll_back(before, base_seq)
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait((None, None, None))
                raise
            if refusal is not None:
                raise refusal
            self._on_commit(patch)
            return patch
        raise Refused("busy", "the state kept changing under this command: try again")

    async def _in_doubt(self, patch: dict[str, Any] | None, before: dict[str, Any], base_seq: int,
                        attempt: str, command: str | None) -> dict[str, Any] | None:
        """The commit was sent and its answer lost: ask the store what became of it (the memory
        holds the change meanwhile; nothing else is applied in between)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            try:
                applied = await self.store.resolve(attempt, command)
                break
            except AlreadyApplied:  # a retry of the same command on another process made it
                self._roll_back(before, base_seq)
                self.in_doubt["repeated"] += 1
                raise
            except StoreUnavailable:
                if time.monotonic() + SETTLE_STEP_S >= deadline:
                    applied = None
                    break
                await asyncio.sleep(SETTLE_STEP_S)
        if applied:
            self.in_doubt["applied"] += 1
            log.warning("an in-doubt commit was applied: acknowledged")
            self._on_commit(patch)
            return patch
        self._roll_back(before, base_seq)
        if applied is False:
            self.in_doubt["not_applied"] += 1
            raise Refused("store_unavailable",
                          "the state store did not answer: nothing was changed, try again")
        self.in_doubt["unsettled"] += 1
        if len(self._unsettled) < UNSETTLED_LIMIT:
            self._unsettled.append((attempt, command))  # settled (fenced) when the store is back
        raise Refused("in_doubt", "the state store did not confirm this change: it may have been "
                      "made; send it again with the same id and it is made once")

    def _roll_back(self, before: dict[str, Any], audit_seq: int) -> None:
        load_document(self.conference, before)
        self.conference.audit.forget_after(audit_seq)

    async def _reload(self, announce: str | None) -> None:
        """Read the store's state. `announce`: tell every client (a snapshot) — only after an
        outage or when taking over a stored meeting; another process's commits reached the
        clients already (their patches go through the shared Socket.IO manager)."""
        try:
            stored = await self.store.load()
        except StoreLost:
            await self._reseed()
            return
        if stored is None:
            return
        if stored.reseeded:  # another process refilled an emptied store: its word stands
            announce = "replaced"
            self._lost = False
        elif stored.document["version"] < self.conference.version:
            return
        load_document(self.conference, stored.document)
        self.conference.audit.resume(stored.audit_seq)
        self._on_reload(announce)

    async def _reseed(self) -> None:
        """The store lost the state: put this process's back (the document and the audit
        entries still in memory), unless another process did first."""
        self._lost = True
        noticed = time.monotonic()
        conference = self.conference
        if await self.store.seed(to_document(conference), audit_to_wire(list(conference.audit.entries))):
            self._lost = False
            self.reseeds += 1
            self.lost_detected_s = time.monotonic() - noticed
            log.error("the state store had lost the meeting: refilled at version %d",
                      conference.version)
            self._on_reload("reseeded")
        else:
            await self._reload("replaced")

    async def audit(self, since: int, limit: int) -> list[dict[str, Any]]:
        """Audit entries after `since` from the store (every process's, however old)."""
        return await self.store.audit(since, limit)

    # -- other processes, outages ------------------------------------------------------------

    async def _remote_change(self, version: int) -> None:
        if version > self.conference.version:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait((None, None, None))  # reload, in order with local changes

    def _defer(self, fn: Change) -> None:
        if len(self._deferred) < DEFERRED_LIMIT:
            self._deferred.append(fn)
        else:
            log.error("state change dropped: store away too long")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_S)
            now = self._clock()
            beats: dict[str, float] | None = None
            try:
                beats = await self.store.beat(now)
                ready = True
            except StoreLost:
                log.error("the state store lost its data: refilling it from this process")
                self._lost = ready = True
                await self._queue.put((None, None, None))  # load, find it empty, re-seed: in order
            except StoreUnavailable:
                ready = False
            if ready and not self._was_ready:
                log.warning("state store is back: reloading")
                await self._settle_unsettled()
                self._announce = "outage"
                await self._queue.put((None, None, None))
                deferred, self._deferred = self._deferred, []
                for fn in deferred:
                    await self._queue.put((fn, None, None))
            elif not ready and self._was_ready:
                log.error("state store unreachable: commands are refused until it returns")
            self._was_ready = ready
            if beats is not None:
                await self._hosts(beats, now)

    async def _settle_unsettled(self) -> None:
        """In-doubt commits answered as such: settle each for good (applied, or fenced off) before
        the state is read again."""
        unsettled, self._unsettled = self._unsettled, []
        for attempt, command in unsettled:
            try:
                applied = await self.store.resolve(attempt, command)
                self.in_doubt["settled_applied" if applied else "settled_not_applied"] += 1
            except AlreadyApplied:
                self.in_doubt["settled_applied"] += 1
            except StoreUnavailable:
                self._unsettled.append((attempt, command))

    async def _hosts(self, beats: dict[str, float], now: float) -> None:
        """Server processes that stopped beating: after the grace, the sites they held go
        offline from their last beat (a page that came back through another process is held
        there and stays)."""
        held = self.conference.hosts() - {self.host}
        gone: dict[str, float] = {}
        for host in held:
            last = beats.get(host) or self._unseen.setdefault(host, now)
            if now - last > self._host_grace_s:
                gone[host] = last
        self._unseen = {h: t for h, t in self._unseen.items() if h in held}
        if gone:
            log.warning("server processes gone: %s; the sites they held go offline", sorted(gone))
            self.submit(lambda c, at: c.hosts_gone(gone, at))
        stale = {h for h, last in beats.items()
                 if h != self.host and h not in held and now - last > self._host_grace_s}
        with contextlib.suppress(StoreUnavailable):
            await self.store.forget(stale)
