"""Where the conference state lives between restarts: the `StateStore` interface and its
in-memory implementation (the embedded default). The Redis one is in signaling/redis_store.py.

A commit names the version and the last audit number it was built on; it succeeds only if the
store still holds both (compare-and-set), so two processes can never both apply a change to the
same state nor give out one audit number twice. Audit entries are numbered 1, 2, … without gaps:
the store's count of entries is the last number.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class StoreUnavailable(Exception):
    """The store cannot be reached: nothing was written."""


class VersionConflict(Exception):
    """Another process changed the state first: reload and try again."""


@dataclass(slots=True)
class Stored:
    document: dict[str, Any]
    audit_seq: int  # the number of the last audit entry


AUDIT_PAGE = 1000  # audit entries one read returns at most


class StateStore(Protocol):
    @property
    def ready(self) -> bool: ...

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        """Connect, and call `on_change(version)` when another process commits."""

    async def load(self) -> Stored | None: ...

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]]) -> None:
        """Write the state built on `base_version` (None: the state did not change, only audit
        entries are added) and append audit entries numbered from `base_audit_seq + 1`,
        atomically; `VersionConflict` when the store holds another version or audit number."""

    async def audit(self, since: int, limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
        """The audit entries numbered after `since`, oldest first, at most `limit`."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


MEMORY_AUDIT_KEPT = 100_000  # a long meeting writes a few thousand; beyond this the oldest go


@dataclass(slots=True)
class MemoryStore:
    """Keeps the last committed state in this process (lost when it exits)."""

    document: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    trimmed: int = 0  # entries dropped from the front (memory bound)

    @property
    def ready(self) -> bool:
        return True

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        return None

    @property
    def audit_seq(self) -> int:
        return self.trimmed + len(self.rows)

    async def load(self) -> Stored | None:
        return None if self.document is None else Stored(self.document, self.audit_seq)

    async def commit(self, base_version: int, base_audit_seq: int, document: dict[str, Any] | None,
                     audit: list[dict[str, Any]]) -> None:
        current = 0 if self.document is None else int(self.document["version"])
        if (current, self.audit_seq) != (base_version, base_audit_seq):
            raise VersionConflict(f"store has version {current} and audit {self.audit_seq}, "
                                  f"not {base_version} and {base_audit_seq}")
        if document is not None:
            self.document = document
        self.rows.extend(audit)
        if len(self.rows) > MEMORY_AUDIT_KEPT:
            cut = len(self.rows) - MEMORY_AUDIT_KEPT
            del self.rows[:cut]
            self.trimmed += cut

    async def audit(self, since: int, limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
        start = max(0, since - self.trimmed)
        return self.rows[start : start + limit]

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
