"""The session's states and every legal transition between them, in one place (as h11 keeps its own).

Two machines run side by side. :class:`SessionState` is the session's life, as users see it
(``Session.state``); :class:`MovePhase` is how far a move to a new connection has come. Each
transition is a row of a table; :func:`next_state` looks it up, and an event the table does not
list for the current state raises :class:`~livemesh.errors.LocalProtocolError` naming both (the
actor drove the core wrongly: a bug, never the server's fault, which the core reports as errors
of its own).

The diagram of both is in the package docstring (:mod:`livemesh.session.core`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from livemesh.errors import LocalProtocolError

__all__ = [
    "MOVE_TRANSITIONS",
    "SESSION_TRANSITIONS",
    "MoveEvent",
    "MovePhase",
    "SessionEvent",
    "SessionState",
    "next_state",
]


class SessionState(enum.Enum):
    """The session's life (``Session.state`` is the value)."""

    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    MOVING = "moving"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


class SessionEvent(enum.Enum):
    START = "start"  # Session.run began
    OPENED = "opened"  # setupComplete on a connection
    LOST = "lost"  # the connection ended without the session asking
    MOVE = "move"  # a move began (it holds and leaves later)
    CLOSE = "close"  # the user (or the pool) closes
    FINISH = "finish"  # every task is done
    FAIL = "fail"  # a fatal error


class MovePhase(enum.Enum):
    """How far a move to a fresh connection has come (see the module docstring)."""

    IDLE = "idle"
    SEEKING = "seeking"  # waiting for a quiet point; input flows
    HOLDING_EARLY = "holding_early"  # the model is answering: input held so its handle covers all
    HOLDING = "holding"  # input held at a quiet point; waiting for a handle that fits
    RELEASED = "released"  # no handle can come while input is held: let through until one can
    LEAVING = "leaving"  # handle and replay decided; the connection closes at a frame boundary
    FLUSHING = "flushing"  # closing: queued input goes out, then a handle covering it is awaited


class MoveEvent(enum.Enum):
    WANT = "want"
    HOLD_EARLY = "hold_early"
    HOLD = "hold"
    RELEASE = "release"
    LEAVE = "leave"
    ARRIVE = "arrive"  # setupComplete on the next connection
    CLOSE = "close"


def _session_table() -> dict[SessionState, dict[SessionEvent, SessionState]]:
    table: dict[SessionState, dict[SessionEvent, SessionState]] = {
        SessionState.NEW: {
            SessionEvent.START: SessionState.CONNECTING,
            SessionEvent.CLOSE: SessionState.CLOSED,
            SessionEvent.FAIL: SessionState.FAILED,
        },
        SessionState.CONNECTING: {
            SessionEvent.OPENED: SessionState.OPEN,
            SessionEvent.LOST: SessionState.CONNECTING,
            SessionEvent.MOVE: SessionState.CONNECTING,
        },
        SessionState.OPEN: {
            SessionEvent.MOVE: SessionState.MOVING,
            SessionEvent.LOST: SessionState.CONNECTING,
        },
        SessionState.MOVING: {
            SessionEvent.OPENED: SessionState.OPEN,
            SessionEvent.MOVE: SessionState.MOVING,
            SessionEvent.LOST: SessionState.CONNECTING,
        },
        SessionState.CLOSING: {
            SessionEvent.OPENED: SessionState.CLOSING,
            SessionEvent.LOST: SessionState.CLOSING,
            SessionEvent.MOVE: SessionState.CLOSING,
        },
        SessionState.CLOSED: {},
        SessionState.FAILED: {},
    }
    for state in (SessionState.CONNECTING, SessionState.OPEN, SessionState.MOVING, SessionState.CLOSING):
        # Every live state may close, fail, or end (every task done).
        table[state][SessionEvent.CLOSE] = SessionState.CLOSING
        table[state][SessionEvent.FAIL] = SessionState.FAILED
        table[state][SessionEvent.FINISH] = SessionState.CLOSED
    return table


SESSION_TRANSITIONS: Mapping[SessionState, Mapping[SessionEvent, SessionState]] = _session_table()

_ANY_LEAVE = {
    MoveEvent.LEAVE: MovePhase.LEAVING,
    MoveEvent.CLOSE: MovePhase.FLUSHING,
    MoveEvent.ARRIVE: MovePhase.IDLE,
}

MOVE_TRANSITIONS: Mapping[MovePhase, Mapping[MoveEvent, MovePhase]] = {
    MovePhase.IDLE: {
        MoveEvent.WANT: MovePhase.SEEKING,
        MoveEvent.CLOSE: MovePhase.FLUSHING,
        MoveEvent.ARRIVE: MovePhase.IDLE,
    },
    MovePhase.SEEKING: {
        MoveEvent.HOLD_EARLY: MovePhase.HOLDING_EARLY,
        MoveEvent.HOLD: MovePhase.HOLDING,
        **_ANY_LEAVE,
    },
    MovePhase.HOLDING_EARLY: {
        MoveEvent.HOLD: MovePhase.HOLDING,
        MoveEvent.RELEASE: MovePhase.RELEASED,
        **_ANY_LEAVE,
    },
    MovePhase.HOLDING: {
        MoveEvent.RELEASE: MovePhase.RELEASED,
        **_ANY_LEAVE,
    },
    MovePhase.RELEASED: {
        MoveEvent.HOLD_EARLY: MovePhase.HOLDING_EARLY,
        MoveEvent.HOLD: MovePhase.HOLDING,
        **_ANY_LEAVE,
    },
    MovePhase.LEAVING: {
        MoveEvent.CLOSE: MovePhase.FLUSHING,
        MoveEvent.ARRIVE: MovePhase.IDLE,
        MoveEvent.LEAVE: MovePhase.LEAVING,
    },
    MovePhase.FLUSHING: {
        MoveEvent.CLOSE: MovePhase.FLUSHING,
        MoveEvent.ARRIVE: MovePhase.FLUSHING,
        MoveEvent.LEAVE: MovePhase.FLUSHING,
    },
}

S = TypeVar("S", SessionState, MovePhase)
E = TypeVar("E", SessionEvent, MoveEvent)


def next_state(table: Mapping[S, Mapping[E, S]], state: S, event: E) -> S:
    """The state after ``event`` in ``state``; LocalProtocolError if the table has no such row."""
    try:
        return table[state][event]
    except KeyError:
        raise LocalProtocolError(
            f"{type(event).__name__}.{event.name} is not legal in {type(state).__name__}.{state.name}"
        ) from None
