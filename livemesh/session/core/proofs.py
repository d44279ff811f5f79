"""Which sent messages a handle is proven to cover (Gemini API), by pings the writer sends.

Where the server answers a ping only once it has consumed what came before it (the emulator
does; ``RotationPolicy.prove_by_ping``), a handle read after the pong of a ping covers every
message sent before that ping, however long the server took to read them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["BurstProofs"]

_MAX_FENCES: Final = 64
"""Unanswered fence pings (and unused proofs) kept per connection, as the engine keeps (a peer
that answers no pings must not grow them; a later ping covers everything an older one did)."""


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
        "_fenced_at",
        "_fenced_through",
        "_in_flight",
        "_proofs",
        "_proven_through",
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
        self._fenced_at = -1.0  # when the newest ping went out
        self._in_flight: list[tuple[bytes, int]] = []  # (ping token, covered through), oldest first
        self._proofs: list[tuple[int, int]] = []  # (frames received before the pong, covered through)
        self._proven_through = -1  # what every handle read from now on is proven to cover

    def reset(self) -> None:
        """A new connection: its indices start again at 0 (the engine's fences are per connection)."""
        self.unproven_from = None
        self._burst_end = self._fence_wanted = self._sent_through = self._fenced_through = -1
        self._fenced_at = -1.0
        self._proven_through = -1
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

    def due(self, through: int, now: float, every: float) -> bool:
        """A ping may follow messages up to ``through`` (none follows them yet) because the
        newest one went out ``every`` seconds ago or more: the pings that keep the replay log
        proven (and short) while input streams, one per ``every`` at most."""
        return self.enabled and through > self._fenced_through and now - self._fenced_at >= every

    def fence_sent(self, token: bytes, through: int, now: float = 0.0) -> None:
        """A ping (``token``) was written after messages up to ``through`` at ``now``."""
        self._fenced_through = through
        self._fenced_at = now
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
        is proven to cover (-1 if none), and the bursts up to it stop blocking timing. A proof
        holds for every later handle too (each one follows the same pong)."""
        through = self._proven_through
        kept = []
        for pong_index, covered in self._proofs:
            if received_index >= pong_index:
                through = max(through, covered)
            else:
                kept.append((pong_index, covered))
        self._proofs = kept
        self._proven_through = through
        if through >= 0 and self.unproven_from is not None and self.unproven_from <= through:
            self.unproven_from = None if self._burst_end <= through else through + 1
        return through
