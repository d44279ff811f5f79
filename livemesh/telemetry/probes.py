"""The hooks the session and the pool call at their decision points, and the no-op that answers
them when telemetry is off.

A session gets one :class:`SessionProbe` when it starts and calls it where its core decides
something (a connection set up, a move begun, a replay planned, a turn ended); a pool gets one
:class:`PoolProbe`. Each call site is one line: ``probe.move_started("go_away")``. With telemetry
off (OpenTelemetry not installed, or :func:`livemesh.telemetry.disable`) the probe is the shared
instance of these classes, whose methods do nothing: the cost is one method call, with no
``try``, no lookup and no allocation.

Hooks take only numbers and names from closed sets: never a message, a handle, a key or text the
user or the model produced. Durations are measured on the caller's clock: ``now`` is any
monotonic time in seconds (the session passes ``trio.current_time()``), so tests on a fake clock
get exact durations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from livemesh import wire

__all__ = ["NOOP_POOL", "NOOP_SESSION", "PoolProbe", "SessionProbe", "TrafficCounters"]


class TrafficCounters(Protocol):
    """What a session already counts per message; read only when metrics are collected, so
    traffic costs telemetry nothing per message."""

    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def messages_in(self) -> int: ...
    @property
    def messages_out(self) -> int: ...


class SessionProbe:
    """One logical session's hooks (across all its connections). This base class does nothing."""

    __slots__ = ()

    enabled = False
    """True for a probe that records (an OpenTelemetry one)."""

    def opened(self) -> None:
        """The session started (before its first connection)."""

    def closed(self, error: BaseException | None = None) -> None:
        """The session ended; ends every span still open.

        Args:
            error: what it failed with (only its class name is recorded), None if it closed cleanly.
        """

    def connection_opened(self, server_session_id: str | None = None, *, resumed: bool = False) -> None:
        """A connection was set up (``setupComplete`` arrived).

        Args:
            server_session_id: the id the server gave this connection, if any; else livemesh makes
                one per connection (``<session id>/<connection number>``).
            resumed: the setup resumed a context from a handle.
        """

    def connection_closed(self, code: int | None = None) -> None:
        """The current connection ended (a planned move, a drop or a close).

        Args:
            code: the WebSocket close code, None if the connection ended without one.
        """

    def go_away(self, time_left_s: float | None) -> None:
        """The server announced the end of the current connection.

        Args:
            time_left_s: the notice it gave, in seconds (None if it gave none).
        """

    def move_started(self, reason: str) -> None:
        """The session decided to move to a fresh connection.

        Args:
            reason: why (``"go_away"``, ``"timer"``, ``"session_budget"``, ``"drop"``, ...; anything
                else counts as ``"requested"``).
        """

    def move_done(self, reason: str, stall_s: float) -> None:
        """A move finished: the new connection is set up and input flows again.

        Args:
            reason: why it moved (as for :meth:`move_started`).
            stall_s: how long input was held for it, in seconds.
        """

    def replay(self, *, replayed: int = 0, restored: int = 0, ambiguous: int = 0, skipped: int = 0) -> None:
        """What a resumed connection resends of the input no handle was proven to cover.

        Args:
            replayed: messages resent.
            restored: user turns resent as history with the answer already seen.
            ambiguous: messages resent that the resumed context may hold already.
            skipped: media chunks left out as most likely covered.
        """

    def reconnect(self) -> None:
        """A connection is being opened after the session's first (a move, or a retry: every
        attempt counts, failed ones too)."""

    def turn_started(self, now: float) -> None:
        """A user turn was sent: the model owes an answer (a turn the server's voice detection
        starts has no such moment: it begins at :meth:`first_chunk`).

        Args:
            now: the caller's clock, in seconds.
        """

    def first_chunk(self, now: float) -> None:
        """The first content of a model turn arrived.

        Args:
            now: the caller's clock, in seconds.
        """

    def interrupted(self) -> None:
        """The user barged in: the model's turn in progress is cut short (its ``turnComplete``
        follows)."""

    def turn_complete(self, now: float, *, interrupted: bool = False) -> None:
        """The model's turn ended (``turnComplete``).

        Args:
            now: the caller's clock, in seconds.
            interrupted: the user barged in and the turn was cut short (also implied by an
                :meth:`interrupted` since the turn began).
        """

    def usage(self, usage: wire.UsageMetadata) -> None:
        """The server reported token usage (it rides on a server message, usually the
        ``turnComplete``).

        Args:
            usage: the report; only its counts are read.
        """

    def tool_started(self, call_id: str, name: str, now: float) -> None:
        """The session started running a tool call.

        Args:
            call_id: the server's id for the call.
            name: the function's name.
            now: the caller's clock, in seconds.
        """

    def tool_done(self, call_id: str, outcome: str, now: float) -> None:
        """A tool call ended.

        Args:
            call_id: the server's id for the call.
            outcome: ``"ok"``, ``"error"`` or ``"cancelled"``.
            now: the caller's clock, in seconds.
        """


class PoolProbe:
    """A pool's hooks. This base class does nothing.

    How many sessions wait for admission is observed, not counted: the pool hands
    :func:`livemesh.telemetry.pool_probe` a function that says (its admission queue's length),
    read when a reader collects."""

    __slots__ = ()

    enabled = False
    """True for a probe that records (an OpenTelemetry one)."""

    def close(self) -> None:
        """The pool closed: stop observing its queue (``contextlib.closing`` works)."""

    def quota_backoff(self, delay_s: float) -> None:
        """The pool backs off after the service refused for quota.

        Args:
            delay_s: how long it waits before trying again, in seconds.
        """


NOOP_SESSION = SessionProbe()
"""The probe every session gets while telemetry is off."""

NOOP_POOL = PoolProbe()
"""The probe every pool gets while telemetry is off."""
