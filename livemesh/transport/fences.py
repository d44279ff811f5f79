"""Fence pings: which messages arrived after the server answered a ping (both engines).

``send_fenced`` sends messages and then a ping with a fresh token; when its pong is parsed, the
engine records how many data messages had arrived before it. The session reads the count back
(``fence_result``): a message numbered at or past it came after the pong.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_FENCES", "Fences"]

MAX_FENCES: Final = 64
"""Unanswered fences kept per connection; the oldest is forgotten beyond (a peer that ignores pings)."""


class Fences:
    """The fences of one connection: tokens out, and the counts of those answered."""

    __slots__ = ("_made", "_pending")

    def __init__(self) -> None:
        self._made = 0
        self._pending: dict[bytes, int] = {}  # token -> messages before its pong (-1: unanswered)

    def __repr__(self) -> str:
        return f"<Fences pending={len(self._pending)}>"

    def open(self) -> bytes:
        """A new fence's token (the ping's payload), now awaited.

        Returns:
            The token, unique on this connection.
        """
        self._made += 1
        token = b"livemesh-fence-%d" % self._made
        pending = self._pending
        if len(pending) >= MAX_FENCES:
            del pending[next(iter(pending))]
        pending[token] = -1
        return token

    def answered(self, token: bytes, count: int) -> bool:
        """The pong for ``token`` was parsed after ``count`` data messages.

        Args:
            token: The pong's payload.
            count: Data messages that arrived before it (or more: never fewer).

        Returns:
            True if ``token`` was an awaited fence (any other pong: False).
        """
        if self._pending.get(token) != -1:
            return False
        self._pending[token] = count
        return True

    def result(self, token: bytes) -> int | None:
        """The count for an answered fence, given once (then forgotten); ``None`` while unanswered.

        Args:
            token: A token from :meth:`open`.

        Returns:
            Data messages that arrived before the fence's pong, or ``None``.
        """
        count = self._pending.get(token, -1)
        if count < 0:
            return None
        del self._pending[token]
        return count
