"""Which tool calls the session owes an answer: exactly one response per call id.

The real service blocks a turn until every call it emitted is answered and never times out, so
a lost answer mutes the session; a second answer for the same id is a
protocol error. Calls received after the handle a session resumes from are *void* on the new
connection (the resumed context never issued them): their tools are cancelled and their answers
dropped, whether or not an answer was already on its way (a service issues no handle while a call
waits, so every call still open at a move, or answered after the newest handle, is one of them).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from livemesh import wire

__all__ = ["PendingCall", "ToolLedger"]


@attrs.define(eq=False, slots=True)
class PendingCall:
    """One call the session owes an answer to."""

    call: wire.FunctionCall
    blocking: bool
    received_at: float
    handle_epoch: int
    """How many resumable handles had arrived when the call did (for voiding on resume)."""
    turn: int
    """The turn number the call belongs to (interruptions cancel calls of their turn)."""
    interrupted: bool = False
    """Its turn was interrupted: the tool was cancelled, an error answer is owed once the turn ends
    (unless the server cancels the call first, which it does right after ``interrupted``)."""

    @property
    def id(self) -> str:
        return self.call.id or ""


class ToolLedger:
    """Calls owed an answer, keyed by id; closed ids remembered (bounded) to refuse duplicates."""

    __slots__ = ("_closed", "_pending", "_remember")

    def __init__(self, *, remember: int = 4096) -> None:
        self._pending: dict[str, PendingCall] = {}
        # id -> (how, handle epoch): "answered" | "cancelled" | "void", oldest first
        self._closed: dict[str, tuple[str, int]] = {}
        self._remember = remember

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending(self) -> list[PendingCall]:
        return list(self._pending.values())

    @property
    def blocking_pending(self) -> bool:
        """True while a BLOCKING call waits for its answer (hold realtime input meanwhile)."""
        pending = self._pending
        return bool(pending) and any(p.blocking for p in pending.values())

    def get(self, call_id: str) -> PendingCall | None:
        return self._pending.get(call_id)

    def state(self, call_id: str) -> str:
        """``"pending"``, ``"answered"``, ``"cancelled"``, ``"void"`` or ``"unknown"``."""
        if call_id in self._pending:
            return "pending"
        closed = self._closed.get(call_id)
        return closed[0] if closed is not None else "unknown"

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
        self._closed[call_id] = (how, pending.handle_epoch)
        while len(self._closed) > self._remember:
            del self._closed[next(iter(self._closed))]
        return pending

    def answer(self, call_id: str) -> PendingCall | None:
        """Claim the one answer for ``call_id``: the call if this is it, ``None`` if not owed."""
        return self._close(call_id, "answered")

    def cancel(self, ids: Iterable[str]) -> list[PendingCall]:
        """The server cancelled these calls (``toolCallCancellation``): no answer is owed, and an
        answer already on its way (or logged for replay) is moot: it must not be sent again."""
        out = []
        for call_id in ids:
            pending = self._close(call_id, "cancelled")
            if pending is not None:
                out.append(pending)
            elif call_id in self._closed:
                self._closed[call_id] = ("cancelled", self._closed[call_id][1])
        return out

    def moot(self, call_id: str) -> bool:
        """An answer to ``call_id`` must not be sent (the call was cancelled or is void)."""
        closed = self._closed.get(call_id)
        return closed is not None and closed[0] in ("cancelled", "void")

    def moot_ids(self) -> set[str]:
        return {call_id for call_id, (how, _) in self._closed.items() if how in ("cancelled", "void")}

    def of_turn(self, turn: int) -> list[PendingCall]:
        return [p for p in self._pending.values() if p.turn == turn]

    def void_after(self, handle_epoch: int) -> tuple[list[PendingCall], set[str]]:
        """Calls that arrived after the ``handle_epoch``-th handle: unknown to a resumed context.

        Returns the calls still owed an answer (now void: their tools are to be cancelled) and
        every void id, answered or not (answers on their way for them must not be sent)."""
        void = [p for p in self._pending.values() if p.handle_epoch >= handle_epoch]
        for pending in void:
            self._close(pending.id, "void")
        ids = {p.id for p in void}
        for call_id, (how, epoch) in self._closed.items():
            if how in ("answered", "cancelled") and epoch >= handle_epoch:
                ids.add(call_id)
        for call_id in ids:
            how, epoch = self._closed[call_id]
            self._closed[call_id] = ("void", epoch)
        return void, ids
