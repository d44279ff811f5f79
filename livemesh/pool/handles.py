"""Where resumption handles live between connections: a small async store keyed by conversation.

The pool saves every resumable handle a session receives and loads the newest one when it
restarts the session after a failure (or in another process, once the store is shared). The
interface is deliberately three async methods so a Redis or SQL implementation is a page of code:

* ``save`` is **monotonic**: each handle carries a ``seq`` (increasing per conversation); a save
  whose ``seq`` is lower than the stored one is refused (returns False). Two machines racing, or a
  late write from a task being cancelled, can never roll a conversation back to an older handle.
  Saving the same ``seq`` again refreshes its time to live.
* ``load`` returns ``None`` for unknown or expired conversations.
* entries expire ``ttl_s`` after their last save: the service honours a handle for 2 hours after
  the session's last connection ends (``ServiceLimits.handle_validity_s``), and the pool saves again
  when a session ends, so the TTL runs from there.

Handles are bearer credentials for a conversation's context: :class:`StoredHandle` keeps the value
out of its repr, and nothing here logs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from livemesh.errors import ConfigError
from livemesh.limits import DEFAULT_LIMITS

__all__ = ["HandleStore", "MemoryHandleStore", "StoredHandle"]


@attrs.frozen
class StoredHandle:
    """A resumable handle, its order within the conversation, and when it was saved (epoch s)."""

    handle: str = attrs.field(repr=False)
    seq: int
    saved_at: float = 0.0


@runtime_checkable
class HandleStore(Protocol):
    """The storage the pool needs for resumption handles (implement it for a shared database)."""

    async def save(self, conversation_id: str, handle: StoredHandle) -> bool:
        """Store ``handle`` unless a newer one (higher ``seq``) is stored; True if stored."""
        ...

    async def load(self, conversation_id: str) -> StoredHandle | None:
        """The newest unexpired handle of the conversation, or None."""
        ...

    async def delete(self, conversation_id: str) -> None:
        """Forget the conversation (it ended for good)."""
        ...


class MemoryHandleStore:
    """The default :class:`HandleStore`: a dict in this process, with expiry.

    Entries are kept in save order, so expired ones are swept from the front in amortised O(1)
    on every save; memory stays bounded by the number of conversations saved within one TTL.
    """

    def __init__(
        self, *, ttl_s: float = DEFAULT_LIMITS.handle_validity_s, clock: Callable[[], float] = time.time
    ) -> None:
        if not ttl_s > 0:
            raise ConfigError(f"ttl_s must be positive, not {ttl_s!r}")
        self._ttl = ttl_s
        self._clock = clock
        self._entries: dict[str, StoredHandle] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _sweep(self, now: float) -> None:
        entries = self._entries
        while entries:  # oldest first; stops at the first live one (O(1) when nothing expired)
            key = next(iter(entries))
            if entries[key].saved_at + self._ttl > now:
                break
            del entries[key]

    def save_nowait(self, conversation_id: str, handle: StoredHandle) -> bool:
        now = self._clock()
        current = self._entries.get(conversation_id)
        if current is not None and current.saved_at + self._ttl > now:
            if handle.seq < current.seq:
                return False
            if handle.seq == current.seq and handle.handle != current.handle:
                return False  # same position, different value: keep the first writer's
        self._entries.pop(conversation_id, None)
        self._entries[conversation_id] = attrs.evolve(handle, saved_at=now)
        self._sweep(now)
        return True

    def load_nowait(self, conversation_id: str) -> StoredHandle | None:
        entry = self._entries.get(conversation_id)
        if entry is None:
            return None
        if entry.saved_at + self._ttl <= self._clock():
            del self._entries[conversation_id]
            return None
        return entry

    async def save(self, conversation_id: str, handle: StoredHandle) -> bool:
        return self.save_nowait(conversation_id, handle)

    async def load(self, conversation_id: str) -> StoredHandle | None:
        return self.load_nowait(conversation_id)

    async def delete(self, conversation_id: str) -> None:
        self._entries.pop(conversation_id, None)
