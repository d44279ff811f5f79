"""How a session leaves one connection for the next: the move logic of :class:`~livemesh.session.Session`.

A *move* ends one connection and resumes on the next with the newest resumable handle:

* planned (goAway, the connection's age, ``rotate()``): wait for a quiet point (no generation, no
  pending call, a resumable handle), hold new input, then wait for a handle that *fits*: received
  after the newest ``turnComplete`` (a resumed context is the snapshot of the handle used, so a
  turn the user saw answered must be in it: replaying its trigger answers it twice, dropping it
  loses it) and, on the Gemini API, leaving no logged message ambiguous (by timing, or proven by a
  handle that follows the pong of a ping the writer sends once input is held: ``BurstProofs``). Waits past
  ``handle_timeout_s`` (up to the connection's own deadline) while a turn is in flight or its
  handle is owed. Then close with 1000, resume, replay what the handle does not cover, release the
  held input;
* unplanned (drop, 1011, keepalive): the connection manager in ``actor.py`` resumes with bounded,
  jittered retries and replays what the handle may not cover (exact on Vertex ``transparent``; on
  the Gemini API what may be covered is counted in ``metrics.replay_ambiguous``).

:class:`Moves` is a mixin of :class:`~livemesh.session.Session`: it keeps this decision logic, about
a quarter of the actor, in a module of its own; the state it reads lives on the session (declared
below for the type checker). The replay books it judges by are in ``ledger.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from livemesh.errors import LivemeshError

if TYPE_CHECKING:
    from livemesh.session.config import SessionConfig
    from livemesh.session.ledger import BurstProofs, ReplayLog, ToolLedger
    from livemesh.session.metrics import SessionCounters

__all__ = ["Epoch", "Moves"]


@attrs.define(eq=False)
class Epoch:
    """One connection's lifetime: how it ended (a planned outcome or an error)."""

    scope: trio.CancelScope
    outcome: str | None = None
    error: LivemeshError | None = None

    def finish(self, outcome: str) -> None:
        if self.outcome is None and self.error is None:
            self.outcome = outcome
        self.scope.cancel()

    def fail(self, error: LivemeshError) -> None:
        if self.outcome is None and self.error is None:
            self.error = error
        self.scope.cancel()


class Moves:
    """The move half of the session actor (see the module docstring)."""

    if TYPE_CHECKING:  # the session's state this logic reads and writes (set in Session.__init__)
        config: SessionConfig
        _log: logging.LoggerAdapter[Any]
        _ledger: ToolLedger
        _replay: ReplayLog
        _counters: SessionCounters
        _handle: str | None
        _handle_received_at: float
        _handle_arrived_at: float
        _handle_seq: int
        _handle_index: int
        _unresumable_seq: int
        _effect_seq: int
        _resumable: bool
        _generating: bool
        _turn_no: int
        _awaiting_reply_since: float | None
        _sure_triggers: list[int]
        _hold_planned: bool
        _early_hold_for: int | None
        _connect_s: float
        _state: str
        _closing: bool
        _move_reason: str | None
        _move_deadline: float | None
        _move_started: float | None
        _move_wanted: trio.Event
        _changed: trio.Event
        _conn_deadline: float
        _final_scope: tuple[trio.CancelScope, float] | None
        _proofs: BurstProofs
        _leaving: bool

        @property
        def is_quiet(self) -> bool: ...
        def _notify(self) -> None: ...
        async def _wait_for(self, predicate: Callable[[], bool]) -> None: ...
        async def _wait_writer_idle(self) -> None: ...
        async def _flush_for_close(self) -> None: ...
        def _settle(self) -> float: ...

    def _request_move(self, reason: str, deadline: float | None) -> None:
        if self._move_reason is None or reason == "go_away":
            self._move_reason = reason
        if deadline is not None:
            self._move_deadline = (
                deadline if self._move_deadline is None else min(self._move_deadline, deadline)
            )
        scope = self._final_scope
        if scope is not None:
            scope[0].deadline = min(scope[0].deadline, self._final_at(scope[1]))
        self._move_wanted.set()
        self._notify()

    async def _mover(self, epoch: Epoch, connected_at: float) -> None:
        """Wait for a reason to leave this connection (a request, or the connection's age: the
        lifetime timer lives here rather than in a task of its own, ~2-3 KB per idle session),
        then leave at the right moment."""
        # Its own event, not _changed: an idle mover must not wake for every message sent.
        if self.config.rotation.timer:
            lifetime_end = connected_at + self.config.limits.connection_lifetime_s
            with trio.move_on_at(lifetime_end - self.config.rotation.margin_s):
                await self._move_wanted.wait()
            if not self._move_wanted.is_set():
                self._log.info("connection age limit: rotating")
                self._request_move("timer", lifetime_end)
        else:
            await self._move_wanted.wait()
        hold_at = -1.0
        forced = False
        start = trio.current_time()
        reason = self._move_reason or "requested"
        if not self._closing:
            self._early_hold_for = None
            self._state = "moving"
            self._move_started = start
            # Past this the move leaves with whatever it has; a goAway arriving meanwhile brings
            # it forward (_request_move moves the scope's deadline).
            with trio.CancelScope(deadline=self._final_at(start)) as final:
                self._final_scope = (final, start)
                try:
                    # Hold input at a quiet point and wait for a handle that makes the move exact.
                    hold_at = await self._hold_until_ready(start)
                    # Decided: from here no handle may replace the one judged (see _leaving).
                    self._leaving = not self._closing
                finally:
                    self._final_scope = None
            forced = final.cancelled_caught
            if forced:
                self._log.debug("the connection's end is near: moving with the newest handle as it is")
                self._hold_planned = True
                self._notify()
        if self._closing:
            await self._flush_for_close()
            epoch.finish("close")
            return
        self._leaving = True  # the handle and the replay log are decided (_on_resumption_update)
        # Leave at a frame boundary: cancelling a send mid-frame would put garbage before our close.
        await self._wait_writer_idle()
        self._counters.rotations += 1
        self._log.debug(
            "hold at %.4f, newest handle received at %.4f (arrived %.4f, frame %d), "
            "%d logged (newest sent at %.4f), forced: %s",
            hold_at,
            self._handle_received_at,
            self._handle_arrived_at,
            self._handle_index,
            len(self._replay),
            self._replay.newest_sent_at(),
            forced,
        )
        self._log.info("moving to a new connection (%s) after %.3f s", reason, trio.current_time() - start)
        epoch.finish("move")

    async def _hold_until_ready(self, start: float) -> float:
        """Hold input at a quiet point and wait for a handle that makes the move exact; return
        when the move can leave (or the session closes) with the time input was last held.
        The caller bounds this by the connection's end (see :meth:`_final_at`)."""
        policy = self.config.rotation
        deadline = self._move_deadline
        reserve = 0.0 if deadline is None else self._reserve(deadline, start)
        limit = start + policy.quiet_timeout_s
        if deadline is not None:
            # At most half the usable window for a quiet point: the rest is for a fresh handle.
            limit = min(limit, start + max(0.0, deadline - reserve - start) / 2)
        while True:
            await self._wait_quiet(limit)
            if self._closing:
                return start
            self._hold_planned = True
            hold_at = trio.current_time()
            self._notify()
            if self._handle_fits_move():
                return hold_at
            # A ping after everything sent so far (the writer, now idle, sends it; none if one
            # already follows it all): a handle read after its pong covers all of it, exactly,
            # where timing cannot judge a reader far behind a busy socket. The service's pongs
            # can take seconds; the move does not wait for this.
            self._proofs.request_fence()
            self._notify()
            # Gemini API: no handle can clear the last message sent before ``settle`` has passed,
            # so handle_timeout_s counts from then (a backlog-sized settle ate the whole timeout).
            settle = 0.0 if self.config.transparent else self._settle()
            handle_limit = hold_at + policy.handle_timeout_s + settle
            deadline = self._move_deadline
            if deadline is not None:
                handle_limit = min(handle_limit, deadline - self._reserve(deadline, start))
            with trio.move_on_at(handle_limit):
                await self._wait_for(
                    lambda: self._handle_fits_move() or self._closing or self._user_speaking()
                )
            if self._closing or self._handle_fits_move():
                return hold_at
            if self._user_speaking():
                # The user started speaking as input was held: the utterance ends only with more
                # input, and no handle comes until it has. Let it through, wait for its end (the
                # model then answers, with input held, and a handle follows the turn), look again.
                self._log.debug("the user is speaking: held input let through until the utterance ends")
                self._hold_planned = False
                self._notify()
                self._counters.holds_released += 1
                await self._wait_for(lambda: not self._user_speaking() or self._closing)
                limit = max(limit, trio.current_time() + policy.quiet_timeout_s)
                continue
            if self._in_turn() or self._effect_seq >= self._handle_seq:
                # Input is held, so the turn in progress will end and the server issues a handle
                # right after each turn. Leaving without it would cut the turn (its output so far
                # was delivered and the replayed trigger answers it again from the start) or
                # resume from a snapshot without a turn the user saw answered (replaying it
                # answers it twice, not replaying it loses it). A slow (backlogged) server is no
                # reason for either: only the connection's own end (goAway deadline, else its
                # lifetime) is, and the caller's scope enforces that.
                await self._wait_for(lambda: self._handle_fits_move() or self._closing)
            self._log.debug(
                "no handle covers all held input by %.4f (deadline %s): leaving with the newest",
                handle_limit,
                deadline,
            )
            return hold_at

    def _final_at(self, start: float) -> float:
        """When a move started at ``start`` must leave: the connection's end (the goAway deadline,
        else its lifetime) less the reserve for reconnecting."""
        deadline = self._move_deadline
        hard = min(deadline if deadline is not None else self._conn_deadline, self._conn_deadline)
        return hard - self._reserve(hard, start)

    def _user_speaking(self) -> bool:
        """The server withdrew resumability after its newest handle and turn, and no model turn or
        call followed: the user is speaking (no handle comes until the utterance ends)."""
        return (
            self._unresumable_seq > max(self._handle_seq, self._effect_seq)
            and not self._generating
            and not len(self._ledger)
            and self._awaiting_reply_since is None
        )

    def _reserve(self, deadline: float, start: float) -> float:
        """Time kept before ``deadline`` to reconnect in: two measured set-ups (TCP, TLS, upgrade,
        setup), at least 0.2 s and at most 1 s, and never more than a third of the window. A fixed
        third left a turn 30 ms from its end to be cut (and its input replayed) on short limits."""
        need = min(1.0, max(0.2, 2.0 * self._connect_s))
        return min(need, max(0.0, (deadline - start) / 3))

    async def _wait_quiet(self, limit: float) -> None:
        """Wait until ``limit`` for a quiet point (see :attr:`is_quiet`).

        On the Gemini API input is held as soon as the model is answering or a call is pending
        (``RotationPolicy.hold_during_turn``): the handle the server issues right after the turn
        then covers everything sent, so the move leaves at once instead of waiting for a later
        handle (there may be none before the deadline, and input sent just before a handle is
        ambiguous: replayed, it may be doubled). Input keeps flowing while the user speaks, so an
        utterance always ends."""
        with trio.move_on_at(limit):
            while not (self.is_quiet or self._closing):
                in_turn = self._generating or bool(len(self._ledger))
                if in_turn:
                    self._hold_early()
                elif self._early_hold_for is not None and self._hold_planned and not self._resumable:
                    # The turn ended but no handle followed it: the server is not resumable for
                    # another reason, the user speaking (held audio can never end that utterance,
                    # and the move waited for the connection's end).
                    with trio.move_on_after(max(self._settle(), 0.1)):
                        await self._wait_for(lambda: self._resumable or self._closing)
                    if not self._resumable and not self._closing:
                        self._log.debug("no handle after the turn: held input let through")
                        self._hold_planned = False
                        self._counters.holds_released += 1
                        self._notify()
                    continue
                await self._changed.wait()

    def _hold_early(self) -> None:
        """A move is pending and the model is answering (or a call is pending): hold input now.

        Called by the mover and by the reader the moment a turn's first content or call arrives:
        a short answer can begin and end within one batch of frames the reader handles before the
        mover runs, and the user's next utterance, sent at its ``turnComplete``, then beat the
        hold (the server stopped issuing handles for it, and the move was forced)."""
        if (
            self._state == "moving"
            and not self._hold_planned
            and not self._leaving
            and not self._closing
            and self._early_hold_for != self._turn_no
            and not self.config.transparent
            and self.config.rotation.hold_during_turn
        ):
            self._log.debug("holding input for the move while the model answers")
            self._early_hold_for = self._turn_no
            self._hold_planned = True
            # A ping after everything sent: any handle read after its pong (the one after the
            # turn, or a periodic one meanwhile) covers it all, even if the connection's end
            # comes before the turn's and the move must leave with what it has.
            self._proofs.request_fence()
            self._notify()

    def _in_turn(self) -> bool:
        """A turn is in flight: generating, an answer owed to a user turn, or a tool call pending."""
        return self._generating or bool(self._sure_triggers) or bool(len(self._ledger))

    def _handle_fits_move(self) -> bool:
        """True if resuming from the newest handle and replaying the log is exact (input is held).

        A resumed context is the snapshot of the handle used, not everything consumed: a turn
        whose ``turnComplete`` the user already saw must be in that snapshot, or replaying its
        trigger answers it twice (and not replaying it loses it). So the handle must have been
        received after the newest ``turnComplete`` (the server issues one right after each turn;
        with it the turn's trigger and everything before it are covered). Then on Vertex
        ``transparent`` the index makes the rest exact; on the Gemini API no logged message may
        be ambiguous (sent within the settle window before the handle arrived): a later handle
        (periodic) is awaited for those rather than guessing.
        """
        if not (self._resumable and self._handle is not None and self._handle_seq > self._effect_seq):
            return False
        if self._in_turn() or self._awaiting_reply_since is not None:
            return False  # no handle covers a turn still in flight (its turnComplete comes first)
        if self.config.transparent:
            return True
        # (a handle read after the pong of the ping sent once input was held has trimmed the log
        # of everything sent before it: see BurstProofs.request_fence)
        return self._replay.ambiguous(self._handle_received_at) == 0
