"""When to ping an idle connection and when to give it up: the keepalive rule, once for both engines.

Only parsed frames count as life (a message, a pong, a ping, a close), never raw bytes: a frame
cut short while the peer keeps answering pings absorbs the pongs' bytes as its own payload, so
counting bytes kept such a connection "alive" forever. The service's pongs were seen taking
8-30 s (a GitHub report: sip-to-ai#14), so the caller's
``pong_timeout`` should be generous.

The engines consult :class:`Keepalive` inside a waiting ``receive``: no task of its own. Or the
caller drives it (``by_caller``): a waiting ``receive`` then needs no deadline (a cancel scope per
wait, a tenth of a busy reader's CPU), and a task the caller already has (the session's mover)
calls the connection's ``keepalive()`` at ``keepalive_deadline()``.
"""

from __future__ import annotations

import logging
import math

import trio

from livemesh.transport.errors import ConnectionLostError

__all__ = ["Keepalive"]

log = logging.getLogger("livemesh.transport")


class Keepalive:
    """The keepalive state of one connection: when a frame was last parsed, whether a ping is out."""

    __slots__ = ("by_caller", "interval", "last_heard", "pinged_at", "pong_timeout")

    def __init__(self) -> None:
        self.interval: float | None = None
        self.pong_timeout = math.inf
        self.last_heard = 0.0
        """When a frame was last parsed (from :meth:`configure` on)."""
        self.pinged_at: float | None = None
        """When the keepalive ping now waiting for any frame went out."""
        self.by_caller = False
        """The caller runs the rule (:meth:`check`); a waiting receive has no deadline."""

    def __repr__(self) -> str:
        return f"<Keepalive interval={self.interval} pinged={self.pinged_at is not None}>"

    def configure(self, interval: float | None, pong_timeout: float, *, by_caller: bool = False) -> None:
        """Set the rule (``interval=None``: off); the silence so far starts counting now."""
        self.interval = interval
        self.pong_timeout = pong_timeout
        self.by_caller = by_caller
        self.heard()

    def heard(self, now: float | None = None) -> None:
        """A frame was parsed: the connection is alive."""
        self.last_heard = trio.current_time() if now is None else now
        self.pinged_at = None

    def deadline(self) -> float:
        """When a waiting receive must act (ping, or give up); ``inf`` when the keepalive is off."""
        if self.interval is None:
            return math.inf
        if self.pinged_at is not None:
            return self.pinged_at + self.pong_timeout
        return self.last_heard + self.interval

    def receive_deadline(self) -> float:
        """The deadline of a waiting receive: :meth:`deadline`, or ``inf`` when the caller drives
        the keepalive."""
        return math.inf if self.by_caller else self.deadline()

    def check(self, reading: bool) -> bool:
        """The caller's turn (``by_caller``): True if a ping is to be sent now.

        Args:
            reading: Whether a receive is reading the connection now. When none is (a slow
                consumer), unread frames may be waiting: the silence starts counting again
                instead (as a receive-run keepalive, which runs only while a receive waits).

        Raises:
            ConnectionLostError: No frame came within ``pong_timeout`` of the ping (code 1011).
        """
        if not reading:
            if trio.current_time() >= self.deadline():
                self.heard()
            return False
        return self.due()

    def due(self) -> bool:
        """The deadline passed: True if a ping is to be sent now (it is then counted as out).

        Raises:
            ConnectionLostError: No frame came within ``pong_timeout`` of the ping (code 1011).
        """
        now = trio.current_time()
        if now < self.deadline():
            return False  # a frame came meanwhile
        if self.pinged_at is None:
            self.pinged_at = now
            return True
        log.warning("keepalive: no frame within %.1f s of a ping", self.pong_timeout)
        raise ConnectionLostError(f"keepalive: no pong within {self.pong_timeout:g} s", code=1011)
