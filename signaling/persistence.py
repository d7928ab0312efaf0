"""The state keeper: every change to the conference, in order, committed before it is told.

One worker task (owned here) takes changes from one bounded queue: it applies a change to the
in-memory conference, commits the new document to the store against the version it was built on,
and only then reports the patch. A change someone waits for (a command) runs in the caller's task
when nothing is queued or being applied: the same order, without two hops through the event loop
(under a keyframe burst each hop waits for a turn of the fan-out). A conflict (another process was
first) reloads and applies the change again; an unreachable store puts the state back as it was
and refuses the change clearly.
Changes that nobody waits for (presence, timers, the dominant speaker) are kept while the store is
away and applied when it returns. A health loop watches the store and reloads after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from bridge.conference import Conference
from bridge.control import Refused
from bridge.state_codec import audit_to_wire, load_document, to_document
from bridge.store import StateStore, StoreUnavailable, VersionConflict
from bridge.tasks import cancel_and_wait

log = logging.getLogger(__name__)
Change = Callable[[Conference, float], dict[str, Any] | None]
QUEUE_LIMIT = 1000  # changes waiting for the worker; beyond it commands are refused as busy
DEFERRED_LIMIT = 1000  # background changes kept through a store outage
HEALTH_S = 1.0
RETRIES = 5


class StateKeeper:
    def __init__(self, conference: Conference, store: StateStore,
                 on_commit: Callable[[dict[str, Any] | None], None],
                 on_reload: Callable[[bool], None], clock: Callable[[], float] = time.time) -> None:
        """`on_commit(patch)` after every committed change (None: nothing to broadcast, e.g. a
        listen-in); `on_reload(announce)` after the state was read from the store."""
        self.conference = conference
        self.store = store
        self._on_commit = on_commit
        self._on_reload = on_reload
        self._announce = False  # the next queued reload follows an outage: tell everyone
        self._clock = clock
        self._queue: asyncio.Queue[tuple[Change | None, asyncio.Future[Any] | None]] = asyncio.Queue(
            QUEUE_LIMIT)
        self._deferred: list[Change] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._applying = asyncio.Lock()  # one change at a time, queued or inline
        self._was_ready = True
        self.store_errors = 0
        self.audit_unstored = 0  # audit entries of refusals made while the store was away

    @property
    def ready(self) -> bool:
        return self.store.ready

    async def start(self) -> None:
        """Load the stored state (or store the fresh one), then start the worker and health loop."""
        await self.store.start(self._remote_change)
        try:
            await self._reload(announce=True)
            if self.conference.version > 0:  # a stored meeting goes on after a restart
                self.conference.restarted_at = self._clock()
            if self.conference.version == 0:
                await self.store.commit(0, 0, to_document(self.conference), [])
        except (StoreUnavailable, VersionConflict) as exc:
            log.warning("state store not ready at start: %s", exc)
        self._tasks = [asyncio.create_task(self._work(), name="state-keeper"),
                       asyncio.create_task(self._watch(), name="state-health")]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self.store.close()

    async def change(self, fn: Change) -> dict[str, Any] | None:
        """Apply and commit a change; its patch once the store has it (or Refused)."""
        if self._tasks and self._queue.empty() and not self._applying.locked():
            async with self._applying:  # nothing before it: apply here, in order
                return await self._commit(fn)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((fn, future))
        except asyncio.QueueFull:
            raise Refused("busy", "the server is busy: try again") from None
        result: dict[str, Any] | None = await future
        return result

    async def sync(self) -> None:
        """Catch up with the store (another process may have committed a moment ago), quietly:
        the caller reads the state itself."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((None, future))
        except asyncio.QueueFull:
            return
        with contextlib.suppress(StoreUnavailable):
            await future

    def submit(self, fn: Change) -> None:
        """A background change nobody waits for (kept through a store outage)."""
        try:
            self._queue.put_nowait((fn, None))
        except asyncio.QueueFull:
            self._defer(fn)

    # -- the worker ------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            fn, future = await self._queue.get()
            try:
                async with self._applying:
                    if fn is not None:
                        result = await self._commit(fn)
                    else:
                        announce, self._announce = self._announce, False
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
                elif not isinstance(exc, Refused):
                    log.exception("state change failed")
            else:
                if future is not None and not future.done():
                    future.set_result(result)

    async def _commit(self, fn: Change) -> dict[str, Any] | None:
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
            try:
                await self.store.commit(base_version, base_seq,
                                        to_document(conference) if changed else None, rows)
            except VersionConflict:
                self._roll_back(before, base_seq)
                await self._reload(announce=False)  # another process was first: on its state, again
                continue
            except StoreUnavailable:
                self.store_errors += 1
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
                    self._queue.put_nowait((None, None))
                raise
            if refusal is not None:
                raise refusal
            self._on_commit(patch)
            return patch
        raise Refused("busy", "the state kept changing under this command: try again")

    def _roll_back(self, before: dict[str, Any], audit_seq: int) -> None:
        load_document(self.conference, before)
        self.conference.audit.forget_after(audit_seq)

    async def _reload(self, announce: bool) -> None:
        """Read the store's state. `announce`: tell every client (a snapshot) — only after an
        outage or when taking over a stored meeting; another process's commits reached the
        clients already (their patches go through the shared Socket.IO manager)."""
        stored = await self.store.load()
        if stored is None or stored.document["version"] < self.conference.version:
            return
        load_document(self.conference, stored.document)
        self.conference.audit.resume(stored.audit_seq)
        self._on_reload(announce)

    async def audit(self, since: int, limit: int) -> list[dict[str, Any]]:
        """Audit entries after `since` from the store (every process's, however old)."""
        return await self.store.audit(since, limit)

    # -- other processes, outages ------------------------------------------------------------

    async def _remote_change(self, version: int) -> None:
        if version > self.conference.version:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait((None, None))  # reload, in order with local changes

    def _defer(self, fn: Change) -> None:
        if len(self._deferred) < DEFERRED_LIMIT:
            self._deferred.append(fn)
        else:
            log.error("state change dropped: store away too long")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_S)
            ready = await self.store.ping()
            if ready and not self._was_ready:
                log.warning("state store is back: reloading")
                self._announce = True
                await self._queue.put((None, None))
                deferred, self._deferred = self._deferred, []
                for fn in deferred:
                    await self._queue.put((fn, None))
            elif not ready and self._was_ready:
                log.error("state store unreachable: commands are refused until it returns")
            self._was_ready = ready
