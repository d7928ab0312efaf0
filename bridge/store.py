"""Where the conference state lives between restarts: the `StateStore` interface and its
in-memory implementation (the embedded default). The Redis one is in signaling/redis_store.py.

A commit names the version and the last audit number it was built on; it succeeds only if the
store still holds both (compare-and-set), so two processes can never both apply a change to the
same state nor give out one audit number twice. Audit entries are numbered 1, 2, … without gaps:
the store's count of entries (plus the entries a re-seed could not restore) is the last number.

The store's *generation* (an epoch written with the first document) tells a store that lost its
state (restarted without persistence, flushed, failed over to an empty replica) from one that
holds it: every commit and every heartbeat checks it, and a store found empty is re-seeded from
the memory of the process that noticed (`StoreLost`, then `seed`).

A commit whose answer never came (sent, then a timeout) is *in doubt*: `resolve` settles it for
good (it was applied, or it is fenced off so it never will be). A command may carry an id of the
client's: the store remembers it with the commit, and a second commit with the same id is
refused as `AlreadyApplied` (a retry applies once).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached. `in_doubt`: the write was sent and no answer came, so it may
    have been applied (settle it with `resolve`); otherwise nothing was written."""

    def __init__(self, message: str, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.in_doubt = in_doubt


class StoreLost(Exception):
    """The store no longer holds the state this process knew (it was emptied): nothing was
    written; re-seed it."""


class VersionConflict(Exception):
    """Another process changed the state first: reload and try again."""


class AlreadyApplied(Exception):
    """A command with this id was committed before (this is a retry): the version it made."""

    def __init__(self, version: int) -> None:
        super().__init__(f"already applied at version {version}")
        self.version = version


@dataclass(slots=True)
class Stored:
    document: dict[str, Any]
    audit_seq: int  # the number of the last audit entry
    reseeded: bool = False  # another process re-seeded the store since this one last read it


AUDIT_PAGE = 1000  # audit entries one read returns at most
COMMAND_IDS_KEPT_S = 3600.0  # how long a command id is remembered (a retry comes within seconds)


class StateStore(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def origin(self) -> str:
        """This process among those sharing the store (a new one at every start)."""

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        """Connect, and call `on_change(version)` when another process commits."""

    async def load(self) -> Stored | None:
        """The stored state (None: the store holds none yet); `StoreLost` when it held one."""

    async def seed(self, document: dict[str, Any], audit: list[dict[str, Any]]) -> bool:
        """Store a state in an empty store, with a new generation: `document` and the recent
        audit entries this process still has (numbered up to the document's `audit_seq`; older
        ones are gone). False when the store holds a state already (another process was first):
        load it."""

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]], attempt: str, command: str | None = None) -> None:
        """Write the state built on `base_version` (None: the state did not change, only audit
        entries are added) and append audit entries numbered from `base_audit_seq + 1`,
        atomically. `attempt`: this try's id (for `resolve`); `command`: the client's command id.
        Raises `VersionConflict`, `StoreLost`, `AlreadyApplied` or `StoreUnavailable`."""

    async def resolve(self, attempt: str, command: str | None = None) -> bool:
        """Settle an in-doubt commit: True if this attempt was applied, else False, and then it
        never will be (fenced); `AlreadyApplied` when another attempt of the same command was.
        `StoreUnavailable` while the store does not answer."""

    async def audit(self, since: int, limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
        """The audit entries numbered after `since`, oldest first, at most `limit` (entries a
        re-seed could not restore are skipped)."""

    async def beat(self, now: float) -> dict[str, float]:
        """This process is alive at `now`; every process's last beat. Raises `StoreUnavailable`,
        or `StoreLost` when the store was emptied."""

    async def forget(self, origins: set[str]) -> None:
        """Processes that are gone and hold nothing any more."""

    async def close(self) -> None: ...


MEMORY_AUDIT_KEPT = 100_000  # a long meeting writes a few thousand; beyond this the oldest go
MEMORY_COMMANDS_KEPT = 10_000  # command ids remembered (a retry comes within seconds)


@dataclass(slots=True)
class MemoryStore:
    """Keeps the last committed state in this process (lost when it exits; never in doubt)."""

    document: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    trimmed: int = 0  # entries dropped from the front (memory bound)
    commands: OrderedDict[str, int] = field(default_factory=OrderedDict)  # command id -> version

    @property
    def ready(self) -> bool:
        return True

    @property
    def origin(self) -> str:
        return "local"

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        return None

    @property
    def audit_seq(self) -> int:
        return self.trimmed + len(self.rows)

    async def load(self) -> Stored | None:
        return None if self.document is None else Stored(self.document, self.audit_seq)

    async def seed(self, document: dict[str, Any], audit: list[dict[str, Any]]) -> bool:
        if self.document is not None:
            return False
        self.document, self.rows = document, list(audit)
        self.trimmed = int(document["audit_seq"]) - len(audit)
        return True

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]], attempt: str, command: str | None = None) -> None:
        current = 0 if self.document is None else int(self.document["version"])
        if command is not None and command in self.commands:
            raise AlreadyApplied(self.commands[command])
        if (current, self.audit_seq) != (base_version, base_audit_seq):
            raise VersionConflict(f"store has version {current} and audit {self.audit_seq}, "
                                  f"not {base_version} and {base_audit_seq}")
        if document is not None:
            self.document = document
            if command is not None:
                self.commands[command] = int(document["version"])
                while len(self.commands) > MEMORY_COMMANDS_KEPT:
                    self.commands.popitem(last=False)
        self.rows.extend(audit)
        if len(self.rows) > MEMORY_AUDIT_KEPT:
            cut = len(self.rows) - MEMORY_AUDIT_KEPT
            del self.rows[:cut]
            self.trimmed += cut

    async def resolve(self, attempt: str, command: str | None = None) -> bool:
        return False  # a commit here is answered at once: none is ever in doubt

    async def audit(self, since: int, limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
        start = max(0, since - self.trimmed)
        return self.rows[start : start + limit]

    async def beat(self, now: float) -> dict[str, float]:
        return {self.origin: now}

    async def forget(self, origins: set[str]) -> None:
        return None

    async def close(self) -> None:
        return None
