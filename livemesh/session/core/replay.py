"""Sent client messages a resumable handle may not cover, and what to resend after a move.

* Vertex ``transparent``: the server says which message it consumed last
  (``lastConsumedClientMessageIndex``); everything after it is replayed, exactly.
* Gemini API: a handle names the context as it was when issued, and the client only knows when it
  *received* it. What a handle surely covers is proven (``BurstProofs``: a ping after the messages
  whose pong came before the handle) or evidenced (the turn that answered a user turn ended before
  it); the rest stays logged. Without proofs (``RotationPolicy.prove_by_ping`` off) timing judges:
  a message sent more than ``settle`` seconds (about one round trip) before the handle arrived is
  taken as covered. Messages sent before the handle arrived that nothing proves covered are
  *ambiguous*: replayed, they may be doubled, and are counted so the session reports it honestly.
"""

from __future__ import annotations

from collections import deque

import attrs

from livemesh import wire

__all__ = ["ReplayEntry", "ReplayLog", "ReplayPlan"]

_NO_ENTRIES: deque[ReplayEntry] = deque(maxlen=0)
"""Shared by every log while it is empty (an idle session's empty deque would cost more than the
rest of the log); only :meth:`ReplayLog.append` appends, after replacing it."""


@attrs.define(eq=False, slots=True)
class ReplayEntry:
    message: wire.ClientMessage
    index: int
    """Index on its connection, as the server counts for ``lastConsumedClientMessageIndex``."""
    sent_at: float
    size: int
    seq: int = 0
    """How many server frames the session had read when it sent this one: a handle read as a
    later frame may cover it; one read before it was sent cannot."""
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
        self._entries: deque[ReplayEntry] = _NO_ENTRIES  # a deque of its own from the first entry
        self._bytes = 0
        self._limit = limit_bytes
        self.overflow = 0
        """Entries forgotten because the log was full (may be lost after a drop)."""
        self._handle_received_at: float | None = None
        self._handle_arrived_at: float | None = None
        self._handle_seq: int | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(
        self, message: wire.ClientMessage, *, index: int, sent_at: float, size: int, seq: int = 0
    ) -> None:
        entries = self._entries
        if entries is _NO_ENTRIES:
            self._entries = entries = deque()
        entries.append(ReplayEntry(message, index, sent_at, size, seq=seq))
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

    def handle_read(self, seq: int) -> None:
        """The newest resumable handle was read as server frame number ``seq``: the logged
        messages sent before that (and not trimmed) are the ambiguous ones now."""
        self._handle_seq = seq

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

    def ambiguous(self, handle_seq: int | None = None) -> int:
        """How many logged messages were sent before the newest handle was read (maybe covered)."""
        handle_seq = self._handle_seq if handle_seq is None else handle_seq
        if handle_seq is None:
            return 0
        count = 0
        for entry in self._entries:
            if entry.seq >= handle_seq:
                break
            count += 1
        return count

    def newest_sent_at(self) -> float:
        """When the newest logged message was sent (-1 if none): for logs."""
        return self._entries[-1].sent_at if self._entries else -1.0

    def clear(self) -> None:
        self._entries = _NO_ENTRIES
        self._bytes = 0
        self._handle_seq = None

    def plan(
        self,
        *,
        void_call_ids: set[str],
        exact: bool,
        likely_lag: float = 0.0,
        unproven_from: int | None = None,
        skip_media: bool = True,
    ) -> ReplayPlan:
        """Everything to resend, oldest first, and empty the log (entries are re-logged when resent).

        ``exact`` (Vertex transparent) means the log was trimmed by the server's index, so nothing
        is ambiguous. Otherwise messages sent before the newest handle arrived are ambiguous: an
        audio/video chunk sent more than ``likely_lag`` (the best round-trip estimate) before it
        is most likely covered and is skipped (counted: may be lost, a 100 ms glitch at worst);
        anything else ambiguous is resent (counted: may be doubled), because a lost turn or tool
        answer is worse than a repeated one (an unanswered call stalls the service forever).
        Nothing at or past ``unproven_from`` (an unproven burst, see :class:`BurstProofs`) is
        judged by timing, so none of it is skipped; with ``skip_media`` off (proofs judge, not
        timing) nothing is skipped at all: what nothing proves covered is resent, never dropped.
        """
        keep: list[wire.ClientMessage] = []
        ambiguous = 0
        skipped = 0
        dropped = 0
        restored = 0
        handle_seq = self._handle_seq
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
            if not exact and handle_seq is not None and entry.seq < handle_seq:
                timed = skip_media and (unproven_from is None or entry.index < unproven_from)
                likely = arrived is not None and entry.sent_at < arrived - likely_lag
                if timed and likely and _is_media(message):
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
