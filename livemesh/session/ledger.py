"""The session's books: which tool calls are owed an answer, and which sent messages may need replay.

Both are plain synchronous state machines (no trio I/O) so they are tested without a server and
the actor can "decide synchronously, then await" (the sans-I/O habit of h11 and wsproto).

:class:`ToolLedger` guarantees exactly one response per call id. The real service blocks a turn
until every call it emitted is answered and never times out, so a lost
answer mutes the session; a second answer for the same id is a protocol error. Calls received after
the handle a session resumes from are *void* on the new connection (the resumed context never
issued them): their tools are cancelled and their answers dropped.

:class:`ReplayLog` keeps client messages the newest resumable handle may not cover:

* Vertex ``transparent``: the server says which message it consumed last
  (``lastConsumedClientMessageIndex``); everything after it is replayed, exactly.
* Gemini API: a handle names the context as it was when issued, and the client only knows when it
  *received* it. A message sent more than ``settle`` seconds (about one round trip) before the
  handle arrived is taken as covered; later ones are replayed. Messages in that window are
  counted as *ambiguous* (maybe doubled on replay) so the session can report it honestly.

  Timing assumes the server reads what arrives about when it arrives. A *burst* (the replay after
  a move, or a backlog the writer sends at once) breaks that: the server may issue a handle while
  still reading it, and under load one arriving half a second after the burst covered only part
  of it (the rest, trimmed, was lost on the next move). :class:`BurstProofs` keeps bursts out of
  the timing rule until a ping sent after them comes back and a handle follows its pong.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

import attrs
import trio

from livemesh import wire

__all__ = ["BurstProofs", "PendingCall", "ReplayEntry", "ReplayLog", "ReplayPlan", "ToolLedger"]

_MAX_FENCES: Final = 64
"""Unanswered fence pings (and unused proofs) kept per connection, as the engine keeps (a peer
that answers no pings must not grow them; a later ping covers everything an older one did)."""


# ----------------------------------------------------------------------------- tool calls


@attrs.define(eq=False)
class PendingCall:
    """One call the session owes an answer to."""

    call: wire.FunctionCall
    blocking: bool
    received_at: float
    handle_epoch: int
    """How many resumable handles had arrived when the call did (for voiding on resume)."""
    turn: int
    """The turn number the call belongs to (interruptions cancel calls of their turn)."""
    scope: trio.CancelScope | None = None
    answered: bool = False
    cancelled: bool = False
    interrupted: bool = False
    """Its turn was interrupted: the tool was cancelled, an error answer is owed once the turn ends
    (unless the server cancels the call first, which it does right after ``interrupted``)."""

    @property
    def id(self) -> str:
        return self.call.id or ""


class ToolLedger:
    """Calls owed an answer, keyed by id; closed ids remembered (bounded) to refuse duplicates."""

    def __init__(self, *, remember: int = 4096) -> None:
        self._pending: dict[str, PendingCall] = {}
        self._closed: dict[str, str] = {}  # id -> "answered" | "cancelled" | "void", oldest first
        self._remember = remember

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending(self) -> list[PendingCall]:
        return list(self._pending.values())

    @property
    def blocking_pending(self) -> bool:
        """True while a BLOCKING call waits for its answer (hold realtime input meanwhile)."""
        return any(p.blocking for p in self._pending.values())

    def get(self, call_id: str) -> PendingCall | None:
        return self._pending.get(call_id)

    def state(self, call_id: str) -> str:
        """``"pending"``, ``"answered"``, ``"cancelled"``, ``"void"`` or ``"unknown"``."""
        if call_id in self._pending:
            return "pending"
        return self._closed.get(call_id, "unknown")

    def open(
        self, call: wire.FunctionCall, *, blocking: bool, now: float, handle_epoch: int, turn: int
    ) -> PendingCall | None:
        """Record a call from a ``toolCall``; ``None`` if its id was already seen (a repeat)."""
        call_id = call.id or ""
        if call_id in self._pending or call_id in self._closed:
            return None
        pending = PendingCall(
            call=call, blocking=blocking, received_at=now, handle_epoch=handle_epoch, turn=turn
        )
        self._pending[call_id] = pending
        return pending

    def _close(self, call_id: str, how: str) -> PendingCall | None:
        pending = self._pending.pop(call_id, None)
        if pending is None:
            return None
        self._closed[call_id] = how
        while len(self._closed) > self._remember:
            del self._closed[next(iter(self._closed))]
        return pending

    def answer(self, call_id: str) -> PendingCall | None:
        """Claim the one answer for ``call_id``: the call if this is it, ``None`` if not owed."""
        pending = self._close(call_id, "answered")
        if pending is not None:
            pending.answered = True
            if pending.scope is not None:
                pending.scope.cancel()  # a user answered first: stop the tool, its result is moot
        return pending

    def cancel(self, ids: Iterable[str]) -> list[PendingCall]:
        """The server cancelled these calls (``toolCallCancellation``): no answer is owed."""
        out = []
        for call_id in ids:
            pending = self._close(call_id, "cancelled")
            if pending is not None:
                pending.cancelled = True
                if pending.scope is not None:
                    pending.scope.cancel()
                out.append(pending)
        return out

    def of_turn(self, turn: int) -> list[PendingCall]:
        return [p for p in self._pending.values() if p.turn == turn]

    def void_after(self, handle_epoch: int) -> list[PendingCall]:
        """Calls that arrived after the ``handle_epoch``-th handle: unknown to a resumed context."""
        out = []
        for pending in [p for p in self._pending.values() if p.handle_epoch >= handle_epoch]:
            self._close(pending.id, "void")
            if pending.scope is not None:
                pending.scope.cancel()
            out.append(pending)
        return out


# ----------------------------------------------------------------------------- replay


@attrs.define(eq=False, slots=True)
class ReplayEntry:
    message: wire.ClientMessage
    index: int
    """Index on its connection, as the server counts for ``lastConsumedClientMessageIndex``."""
    sent_at: float
    size: int
    answer: wire.Content | None = None
    """A user turn whose answer the user already saw: that answer (see :meth:`ReplayLog.answered`)."""


@attrs.frozen
class ReplayPlan:
    """What to resend on the next connection, and how sure we are about it."""

    messages: tuple[wire.ClientMessage, ...]
    ambiguous: int
    """Replayed messages the handle may already cover (may be doubled)."""
    dropped_void: int
    """Tool responses not replayed because their calls are void after the resume."""
    skipped: int = 0
    """Media chunks not replayed because they were most likely covered (may be lost)."""
    restored: int = 0
    """User turns the user had already seen answered, replayed as history with that answer and
    ``turnComplete: false``, so the model does not answer them a second time."""


class ReplayLog:
    """Sent client messages not yet known to be covered by a resumable handle (bounded by bytes)."""

    def __init__(self, *, limit_bytes: int) -> None:
        self._entries: deque[ReplayEntry] = deque()
        self._bytes = 0
        self._limit = limit_bytes
        self.overflow = 0
        """Entries forgotten because the log was full (may be lost after a drop)."""
        self._handle_received_at: float | None = None
        self._handle_arrived_at: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, message: wire.ClientMessage, *, index: int, sent_at: float, size: int) -> None:
        self._entries.append(ReplayEntry(message, index, sent_at, size))
        self._bytes += size
        while self._bytes > self._limit and len(self._entries) > 1:
            old = self._entries.popleft()
            self._bytes -= old.size
            self.overflow += 1

    def answered(self, index: int, answer: wire.Content) -> None:
        """The user turn logged at ``index`` was answered with ``answer``, delivered to the user.
        If no handle covers it before a move, it is replayed as history (turn + answer, no
        ``turnComplete``): the resumed context gets both and the model does not answer it again
        (after a drop right behind a ``turnComplete`` the handle that follows it is lost)."""
        for entry in reversed(self._entries):
            if entry.index == index:
                entry.answer = answer
                return
            if entry.index < index:
                return

    def covered_through_index(self, index: int) -> None:
        """Vertex transparent: the server consumed every message up to ``index``."""
        entries = self._entries
        while entries and entries[0].index <= index:
            self._bytes -= entries.popleft().size

    def covered_before(
        self,
        handle_arrived_at: float,
        settle: float,
        *,
        received_at: float | None = None,
        stop_index: int | None = None,
    ) -> None:
        """Gemini API: a resumable handle arrived; messages sent ``settle`` s before it are covered.

        Two times bound when the server issued the handle: ``handle_arrived_at``, no later than
        its arrival (the engine's, wake-up latency aside), and ``received_at``, when the session
        read it (default: the same). Messages sent ``settle`` before the first are covered, those
        sent after the second surely not; in between they are ambiguous (:meth:`ambiguous`).
        Dating by the read alone lost audio sent while the reader was busy; by the arrival alone,
        messages sent between the two looked surely not covered and were replayed (doubled).

        Timing never trims at or past ``stop_index``: a user turn whose ``turnComplete`` has not
        arrived is not known consumed (a handle issued before the server read it may arrive long
        after it was sent when the server is backlogged), and trimming it would lose the turn."""
        self._handle_arrived_at = handle_arrived_at
        self._handle_received_at = handle_arrived_at if received_at is None else received_at
        horizon = handle_arrived_at - settle
        entries = self._entries
        while entries and entries[0].sent_at < horizon:
            if stop_index is not None and entries[0].index >= stop_index:
                break
            self._bytes -= entries.popleft().size

    def ambiguous(self, handle_received_at: float) -> int:
        """How many logged messages were sent before the newest handle arrived (maybe covered)."""
        count = 0
        for entry in self._entries:
            if entry.sent_at >= handle_received_at:
                break
            count += 1
        return count

    def newest_sent_at(self) -> float:
        """When the newest logged message was sent (-1 if none): for logs."""
        return self._entries[-1].sent_at if self._entries else -1.0

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def plan(
        self,
        *,
        void_call_ids: set[str],
        exact: bool,
        likely_lag: float = 0.0,
        unproven_from: int | None = None,
    ) -> ReplayPlan:
        """Everything to resend, oldest first, and empty the log (entries are re-logged when resent).

        ``exact`` (Vertex transparent) means the log was trimmed by the server's index, so nothing
        is ambiguous. Otherwise messages sent before the newest handle arrived are ambiguous: an
        audio/video chunk sent more than ``likely_lag`` (the best round-trip estimate) before it
        is most likely covered and is skipped (counted: may be lost, a 100 ms glitch at worst);
        anything else ambiguous is resent (counted: may be doubled), because a lost turn or tool
        answer is worse than a repeated one (an unanswered call stalls the service forever).
        Nothing at or past ``unproven_from`` (an unproven burst, see :class:`BurstProofs`) is
        judged by timing, so none of it is skipped.
        """
        keep: list[wire.ClientMessage] = []
        ambiguous = 0
        skipped = 0
        dropped = 0
        restored = 0
        received = self._handle_received_at
        arrived = self._handle_arrived_at
        for entry in self._entries:
            message = entry.message
            if message.tool_response is not None and void_call_ids:
                responses = [
                    r for r in message.tool_response.function_responses or () if r.id not in void_call_ids
                ]
                if not responses:
                    dropped += 1
                    continue
                if len(responses) != len(message.tool_response.function_responses or ()):
                    message = wire.ClientMessage(
                        tool_response=wire.ToolResponse(function_responses=responses)
                    )
            if not exact and received is not None and entry.sent_at < received:
                assert arrived is not None
                timed = unproven_from is None or entry.index < unproven_from
                if timed and _is_media(message) and entry.sent_at < arrived - likely_lag:
                    skipped += 1
                    continue
                ambiguous += 1
            if entry.answer is not None:
                history = _as_history(message, entry.answer)
                if history is not None:
                    message = history
                    restored += 1
            keep.append(message)
        self.clear()
        return ReplayPlan(
            messages=tuple(keep),
            ambiguous=ambiguous,
            dropped_void=dropped,
            skipped=skipped,
            restored=restored,
        )


def _as_history(message: wire.ClientMessage, answer: wire.Content) -> wire.ClientMessage | None:
    """A user turn (``clientContent``, or ``realtimeInput.text``) and the answer the user saw, as
    history appended with ``turnComplete: false``: no turn is generated. None for anything else."""
    if message.client_content is not None:
        turns = list(message.client_content.turns or ())
    elif message.realtime_input is not None and message.realtime_input.text is not None:
        turns = [wire.Content(role="user", parts=[wire.Part(text=message.realtime_input.text)])]
    else:
        return None
    turns.extend([answer] if answer.parts else [])
    return wire.ClientMessage(client_content=wire.ClientContent(turns=turns, turn_complete=False))


def _is_media(message: wire.ClientMessage) -> bool:
    rt = message.realtime_input
    return rt is not None and (rt.audio is not None or rt.video is not None or bool(rt.media_chunks))


class BurstProofs:
    """Which messages are proven consumed by a handle (Gemini API; one connection's indices).

    A message is in a burst when the writer sent it with more waiting behind it. Timing must not
    trim a burst (or anything after it, which queued behind it at the server): ``unproven_from``
    is the first index it must stop at. The writer sends a ping after a burst once it has caught
    up, after a user turn (``writing(prove=True)``: timing leaves a turn to be replayed, and
    answered twice, on a move), and when a move holding input asks (:meth:`request_fence`); the
    ping goes in the same write as the last messages it follows (:meth:`fence_sent`). Where the
    server answers a ping in order with consuming what came before it (the emulator does), a
    handle read after that ping's pong covers every message sent before the ping
    (:meth:`on_handle`, after :meth:`poll` has collected the pongs the connection read). An
    engine that cannot fence (no ``send_fenced``) turns this off (:meth:`disable`): timing alone.
    """

    __slots__ = (
        "_burst_end",
        "_fence_wanted",
        "_fenced_through",
        "_in_flight",
        "_proofs",
        "_sent_through",
        "enabled",
        "unproven_from",
    )

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.unproven_from: int | None = None
        """The first index timing must not trim at (``None``: no unproven burst)."""
        self._burst_end = -1
        self._fence_wanted = -1  # the newest message a ping should follow (a burst's end, a user turn)
        self._sent_through = -1
        self._fenced_through = -1
        self._in_flight: list[tuple[bytes, int]] = []  # (ping token, covered through), oldest first
        self._proofs: list[tuple[int, int]] = []  # (frames received before the pong, covered through)

    def reset(self) -> None:
        """A new connection: its indices start again at 0 (the engine's fences are per connection)."""
        self.unproven_from = None
        self._burst_end = self._fence_wanted = self._sent_through = self._fenced_through = -1
        self._in_flight.clear()
        self._proofs.clear()

    def disable(self) -> None:
        """The engine cannot fence: timing alone decides, as before bursts were told apart."""
        self.enabled = False
        self.reset()

    def writing(self, first: int, last: int, *, burst: bool, prove: bool = False) -> None:
        """Messages ``first..last`` are about to be written (before the write: a handle read during
        a long write must already see them as a burst). ``prove``: they include a user turn,
        which a proof trims exactly (timing leaves it to be replayed, and answered twice, on a
        move: a turn's end cannot be told from the end of a turn the server's VAD made)."""
        if not self.enabled:
            return
        if burst:
            if self.unproven_from is None:
                self.unproven_from = first
            self._burst_end = last
        if burst or prove:
            self._fence_wanted = last

    def written(self, last: int) -> None:
        self._sent_through = last

    def request_fence(self) -> None:
        """Everything written so far should be proven (a move holding input: a handle after this
        ping's pong makes the move exact, where timing cannot judge a reader far behind)."""
        self._fence_wanted = max(self._fence_wanted, self._sent_through)

    def wants_fence(self) -> bool:
        """A ping is owed after the newest messages (a burst's end, a user turn, a move's request)."""
        return self.enabled and self._fence_wanted > self._fenced_through

    def fence_sent(self, token: bytes, through: int) -> None:
        """A ping (``token``) was written after messages up to ``through``."""
        self._fenced_through = through
        flight = self._in_flight
        flight.append((token, through))
        if len(flight) > _MAX_FENCES:  # a peer that answers no pings (the engine forgets them too)
            del flight[0]

    def poll(self, result: Callable[[bytes], int | None]) -> None:
        """Collect the pongs read so far: ``result(token)`` is the number of frames received
        before that ping's pong (the connection's ``fence_result``), ``None`` while unanswered."""
        flight = self._in_flight
        if not flight:
            return
        newest = -1
        for position, (token, through) in enumerate(flight):
            index = result(token)
            if index is not None:
                self._proofs.append((index, through))
                newest = position
        if newest >= 0:
            # Pongs come in order: an older ping still unanswered never will be (forgotten).
            del flight[: newest + 1]
            if len(self._proofs) > _MAX_FENCES:
                del self._proofs[: len(self._proofs) - _MAX_FENCES]

    def on_handle(self, received_index: int) -> int:
        """A resumable handle was read as frame ``received_index``: the highest message index it
        is proven to cover (-1 if none), and the bursts up to it stop blocking timing."""
        through = -1
        kept = []
        for pong_index, covered in self._proofs:
            if received_index >= pong_index:
                through = max(through, covered)
            else:
                kept.append((pong_index, covered))
        self._proofs = kept
        if through >= 0 and self.unproven_from is not None and self.unproven_from <= through:
            self.unproven_from = None if self._burst_end <= through else through + 1
        return through
