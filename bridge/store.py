"""Where the conference state lives between restarts: the `StateStore` interface and its
in-memory implementation (the embedded default). The Redis one is in signaling/redis_store.py.

A commit names the version it was built on; it succeeds only if the store still holds that
version (compare-and-set), so two processes can never both apply a change to the same state.
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
    audit: list[dict[str, Any]]


class StateStore(Protocol):
    @property
    def ready(self) -> bool: ...

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        """Connect, and call `on_change(version)` when another process commits."""

    async def load(self) -> Stored | None: ...

    async def commit(self, base_version: int, document: dict[str, Any],
                     audit: list[dict[str, Any]]) -> None:
        """Write the state built on `base_version` and append audit entries, atomically."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class MemoryStore:
    """Keeps the last committed state in this process (lost when it exits)."""

    document: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return True

    async def start(self, on_change: Callable[[int], Awaitable[None]]) -> None:
        return None

    async def load(self) -> Stored | None:
        return None if self.document is None else Stored(self.document, list(self.audit))

    async def commit(self, base_version: int, document: dict[str, Any],
                     audit: list[dict[str, Any]]) -> None:
        current = 0 if self.document is None else int(self.document["version"])
        if current != base_version:
            raise VersionConflict(f"store has version {current}, not {base_version}")
        self.document = document
        self.audit.extend(audit)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
