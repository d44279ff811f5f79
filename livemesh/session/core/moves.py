"""How a session leaves one connection for the next: the move's own state and its timers.

A *move* ends one connection and resumes on the next with the newest resumable handle. Planned
(goAway, the connection's age, ``rotate()``), it waits for a quiet point (no generation, no
pending call, a resumable handle), holds new input, then waits for a handle that *fits*: received
after the newest ``turnComplete`` (a resumed context is the snapshot of the handle used, so a turn
the user saw answered must be in it) and leaving no logged message ambiguous. On the Gemini API
input is held as soon as the model answers (the handle right after the turn then covers
everything), and let through again while the user speaks (no handle comes mid-utterance, and held
audio can never end it). Past its deadline (the connection's end, less the time to reconnect) a
move leaves with what it has.

:class:`Move` keeps the move's phase and times; :class:`Facts` is what the core tells it about the
session at each step. It decides, the core acts: nothing here reads a clock or touches I/O.
"""

from __future__ import annotations

import enum
import math

import attrs

from livemesh.session.core.state import MOVE_TRANSITIONS, MoveEvent, MovePhase, next_state

__all__ = ["Action", "Facts", "Move", "reserve"]


def reserve(deadline: float, start: float, connect_s: float) -> float:
    """Time kept before ``deadline`` to reconnect in: two measured set-ups (TCP, TLS, upgrade,
    setup), at least 0.2 s and at most 1 s, and never more than a third of the window. A fixed
    third left a turn 30 ms from its end to be cut (and its input replayed) on short limits."""
    need = min(1.0, max(0.2, 2.0 * connect_s))
    return min(need, max(0.0, (deadline - start) / 3))


class Action(enum.Enum):
    """What the core must do after a step of the move."""

    NONE = "none"
    HOLD = "hold"  # hold input and ping after everything sent (a handle after its pong fits)
    RELEASE = "release"  # let held input through (counted in holds_released)
    LEAVE = "leave"  # decided: leave with the newest handle and the replay log as they are


@attrs.define(slots=True)
class Facts:
    """The session as the move sees it at one step (computed by the core)."""

    quiet: bool
    """Connected, a resumable handle, nothing generating, no answer awaited, no call pending."""
    fits: bool
    """Resuming from the newest handle and replaying the log is exact (input is held)."""
    in_turn: bool
    """Generating, a user turn's answer owed, or a call pending."""
    generating_or_calls: bool
    resumable: bool
    speaking: bool
    """The server withdrew resumability after its newest handle and turn, and nothing else explains
    it: the user is speaking (no handle comes until the utterance ends)."""
    settle: float
    early_hold_allowed: bool
    """Gemini API with ``hold_during_turn``: input may be held while the model answers."""
    turn_no: int
    handle_seq: int
    """Which frame brought the newest resumable handle (a later one has a larger number)."""
    effect_at: float
    """When the newest ``turnComplete`` was read (-1: none yet)."""


_HOLDING_PHASES = (MovePhase.HOLDING_EARLY, MovePhase.HOLDING, MovePhase.LEAVING)


@attrs.define(slots=True)
class Move:
    """One move in progress (phase :class:`MovePhase`), or none (``IDLE``)."""

    phase: MovePhase = MovePhase.IDLE
    reason: str | None = None
    deadline: float | None = None
    """When the service cuts the connection (a goAway's), if known."""
    started_at: float = -1.0
    limit: float = math.inf  # the end of the wait for a quiet point (without early holds)
    hold_at: float = -1.0
    handle_limit: float = math.inf
    release_at: float | None = None  # held with no handle possible: input is let through then
    early_hold_for: int | None = None  # the turn an early hold was taken for
    released_seq: int | None = None  # the newest handle when input was let through last
    forced: bool = False
    holding: bool = attrs.field(default=False, init=False)
    """Input is held (``HOLDING_EARLY``, ``HOLDING``, ``LEAVING``): kept with every transition,
    as the writer asks for every message it takes."""

    # ------------------------------------------------------------------ transitions

    def _go(self, event: MoveEvent) -> None:
        self.phase = phase = next_state(MOVE_TRANSITIONS, self.phase, event)
        self.holding = phase in _HOLDING_PHASES

    @property
    def active(self) -> bool:
        return self.phase not in (MovePhase.IDLE, MovePhase.FLUSHING)

    @property
    def leaving(self) -> bool:
        return self.phase is MovePhase.LEAVING

    def want(self, reason: str, deadline: float | None) -> bool:
        """A move is asked for (again); True if this starts one."""
        if self.reason is None or reason == "go_away":
            self.reason = reason
        if deadline is not None:
            self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)
        return self.phase is MovePhase.IDLE

    def begin(self, now: float, connect_s: float, quiet_timeout: float) -> None:
        self._go(MoveEvent.WANT)
        self.started_at = now
        self.early_hold_for = None
        self.release_at = None
        self.released_seq = None
        self.forced = False
        self.limit = now + quiet_timeout
        if self.deadline is not None:
            # At most half the usable window for a quiet point: the rest is for a fresh handle.
            window = self.deadline - reserve(self.deadline, now, connect_s) - now
            self.limit = min(self.limit, now + max(0.0, window) / 2)

    def final_at(self, conn_deadline: float, connect_s: float) -> float:
        """When the move must leave: the connection's end (the goAway deadline, else its
        lifetime) less the reserve for reconnecting."""
        hard = min(self.deadline if self.deadline is not None else conn_deadline, conn_deadline)
        return hard - reserve(hard, self.started_at, connect_s)

    def close(self) -> None:
        self._go(MoveEvent.CLOSE)

    def arrived(self) -> None:
        """The next connection is set up: the move (or the reconnect after a drop) is done."""
        self._go(MoveEvent.ARRIVE)
        if self.phase is MovePhase.IDLE:
            self.reason = None
            self.deadline = None
            self.release_at = None

    # ------------------------------------------------------------------ the early hold

    def hold_early(self, facts: Facts) -> bool:
        """The model is answering (or a call is pending) while a move is pending: hold input now,
        so the handle after the turn covers everything sent. Called at each step and by the reader
        the moment a turn's first content or call arrives (a short answer can begin and end within
        one read, before the move's next step)."""
        if (
            self.phase in (MovePhase.SEEKING, MovePhase.RELEASED)
            and facts.early_hold_allowed
            and self.early_hold_for != facts.turn_no
        ):
            self.early_hold_for = facts.turn_no
            self.release_at = None
            self._go(MoveEvent.HOLD_EARLY)
            return True
        return False

    # ------------------------------------------------------------------ one step

    def step(self, facts: Facts, now: float, final: float, handle_timeout: float, connect_s: float,
             transparent: bool) -> Action:
        """Advance the move as far as the facts allow at ``now``; the action the core must take.

        Input is held only while a handle can come: while the model answers (the server issues
        one right after the turn) or at a quiet point (resumable: periodic handles). When it
        cannot (no turn in flight and the server not resumable: the user is mid-utterance, and
        held audio can never end it), input is let through until the utterance ends and the
        model answers it; a slow server that issues no handle within ``handle_timeout`` also gets
        its input back. Only the deadline (``final``) makes the move leave without a handle that
        fits."""
        if not self.active or self.phase is MovePhase.LEAVING:
            return Action.NONE
        if now >= final:
            self.forced = True
            self._go(MoveEvent.LEAVE)
            return Action.LEAVE
        phase = self.phase
        if phase in (MovePhase.SEEKING, MovePhase.RELEASED):
            fresh = self.released_seq is None or facts.handle_seq > self.released_seq
            if facts.quiet and fresh:
                return self._hold(facts, now, handle_timeout, connect_s, transparent)
            if facts.generating_or_calls:
                if self.hold_early(facts):
                    return Action.HOLD
                if not facts.early_hold_allowed and now >= self.limit:
                    # Input held, the turn in progress ends and a handle follows it.
                    return self._hold(facts, now, handle_timeout, connect_s, transparent)
            return Action.NONE
        if phase is MovePhase.HOLDING_EARLY:
            if facts.quiet:
                return self._hold(facts, now, handle_timeout, connect_s, transparent)
            return self._release(facts) if self._stalled(facts, now) else Action.NONE
        # HOLDING
        if facts.fits:
            self._go(MoveEvent.LEAVE)
            return Action.LEAVE
        if self._stalled(facts, now) or (now >= self.handle_limit and not facts.generating_or_calls):
            return self._release(facts)
        return Action.NONE

    def _stalled(self, facts: Facts, now: float) -> bool:
        """Input is held, the model is not answering, no call is pending and the server is not
        resumable: no handle can come while input is held. Said outright (``resumable: false``
        after the newest handle and turn: the user speaks), or seen: a turn ended (or input was
        held) and no handle followed within ``settle``. A user turn still owed its answer does
        not count: its answer may never come (the user's speech cut it), and if it does, input is
        held again from its first frame."""
        if facts.generating_or_calls or facts.resumable:
            self.release_at = None
            return False
        if facts.speaking:
            return True
        self.release_at = max(facts.effect_at, self.hold_at) + max(facts.settle, 0.1)
        return now >= self.release_at

    def _release(self, facts: Facts) -> Action:
        self.release_at = None
        self.released_seq = facts.handle_seq
        self._go(MoveEvent.RELEASE)
        return Action.RELEASE

    def _hold(self, facts: Facts, now: float, handle_timeout: float, connect_s: float,
              transparent: bool) -> Action:
        self._go(MoveEvent.HOLD)
        self.hold_at = now
        self.release_at = None
        if facts.fits:
            self._go(MoveEvent.LEAVE)
            return Action.LEAVE
        # Gemini API: no handle can clear the last message sent before ``settle`` has passed, so
        # the handle timeout counts from then (a backlog-sized settle ate the whole timeout).
        settle = 0.0 if transparent else facts.settle
        self.handle_limit = now + handle_timeout + settle
        return Action.HOLD

    def next_wake(self, now: float, final: float) -> float:
        """The next time after ``now`` a step may decide something without any new event."""
        if not self.active or self.phase is MovePhase.LEAVING:
            return math.inf
        timers = [final]
        if self.phase in (MovePhase.SEEKING, MovePhase.RELEASED):
            timers.append(self.limit)
        elif self.phase is MovePhase.HOLDING:
            timers.append(self.handle_limit)
        if self.release_at is not None:
            timers.append(self.release_at)
        return min((t for t in timers if t > now), default=final)
