"""A session's traffic across the two libraries: :class:`Mailbox` (server messages, trio to
asyncio) and :class:`Outbox` (sends, asyncio to trio).

Receiving costs no crossing: the pump, a trio task in the session's block, moves each message
into an ``asyncio.Queue`` as it arrives (it runs on the loop's thread, so it puts directly). The
queue is bounded (:data:`MAILBOX_LIMIT`): past it the pump waits, and the session's own bounded
inbox and reader wait behind it, as they would for a slow trio receiver. Sending is a call into
trio that keeps the trio semantics exactly (checked at the call, backpressure, the same
exceptions); one sender task per session runs the sends in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import outcome
import trio

from livemesh import wire
from livemesh.errors import LivemeshError, SessionClosedError
from livemesh.session import Session as TrioSession

__all__ = ["MAILBOX_LIMIT", "Mailbox", "Outbox"]

MAILBOX_LIMIT: Final = 64
"""Server messages queued on the asyncio side of a session before its pump waits for room."""


class _End:
    """The last item of a mailbox: why the stream ended (``None``: closed normally)."""

    __slots__ = ("error",)

    def __init__(self, error: LivemeshError | None) -> None:
        self.error = error


class Mailbox:
    """The asyncio end of one session's server messages, filled by :meth:`pump` (a trio task)."""

    __slots__ = ("_queue", "_room", "error_delivered")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[wire.ServerMessage | _End] = asyncio.Queue()
        self._room: trio.Event | None = None
        self.error_delivered = False
        """Whether the session's failure was raised to asyncio code (the trio session counts its
        error as seen once the pump met it; this says whether a person did)."""

    async def pump(self, session: TrioSession) -> None:
        """(trio) Move every message of ``session`` into the queue, then the end of the stream."""
        end = _End(None)
        try:
            async for message in session:
                self._queue.put_nowait(message)
                if self._queue.qsize() >= MAILBOX_LIMIT:
                    self._room = trio.Event()
                    await self._room.wait()
        except LivemeshError as exc:
            end = _End(exc)
        finally:
            self._queue.put_nowait(end)

    async def next(self) -> wire.ServerMessage | None:
        """(asyncio) The next message; ``None`` once the session closed normally; raises its
        error once it failed (every time, as the trio session does)."""
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # every later receive ends the same way
            if item.error is not None:
                self.error_delivered = True
                raise item.error
            return None
        room = self._room
        if room is not None and self._queue.qsize() <= MAILBOX_LIMIT // 2:
            self._room = None
            room.set()  # a synchronous trio call from the host: allowed in guest mode
        return item


class _Send:
    """One send waiting for the session's sender: ``queued``, then ``running``, then ``done``."""

    __slots__ = ("args", "future", "kwargs", "method", "outcome", "scope", "state")

    def __init__(self, future: asyncio.Future[None], method: Any, args: Any, kwargs: Any) -> None:
        self.future = future
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.state = "queued"
        self.scope: trio.CancelScope | None = None
        self.outcome: outcome.Outcome[None] | None = None

    def finish(self, result: outcome.Outcome[None]) -> None:
        self.outcome = result
        self.state = "done"
        if not self.future.done():
            self.future.set_result(None)


class Outbox:
    """The sends of one session, in order, run by one trio task (:meth:`run`) in the session's
    block: a send costs a queue append and a wake-up instead of a trio task of its own.

    Cancelling an asyncio send that is still queued removes it (nothing is sent); one that is
    running (waiting for room in the session's outbox) is cancelled in trio and waited for.
    """

    __slots__ = ("_closed", "_queue", "_wake")

    def __init__(self) -> None:
        self._queue: deque[_Send] = deque()
        self._wake: trio.Event | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """The sender has stopped (the session's block ended)."""
        return self._closed

    async def send(self, method: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        """(asyncio) Run ``await method(*args, **kwargs)`` in the sender, in turn."""
        if self._closed:
            raise SessionClosedError("the session is closed")
        request = _Send(asyncio.get_running_loop().create_future(), method, args, kwargs)
        self._queue.append(request)
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()  # a synchronous trio call from the host: allowed in guest mode
        try:
            await request.future
        except asyncio.CancelledError:
            if request.state == "queued":
                self._queue.remove(request)
                raise
            if request.scope is not None:
                request.scope.cancel()
            while request.state != "done":
                request.future = asyncio.get_running_loop().create_future()
                with contextlib.suppress(asyncio.CancelledError):
                    await request.future
            raise
        assert request.outcome is not None
        request.outcome.unwrap()

    async def run(self) -> None:
        """(trio) Run queued sends one by one until cancelled (the session's block ends)."""
        try:
            while True:
                while not self._queue:
                    self._wake = trio.Event()
                    await self._wake.wait()
                request = self._queue.popleft()
                request.state = "running"
                request.scope = trio.CancelScope()
                with request.scope:
                    result = await outcome.acapture(request.method, *request.args, **request.kwargs)
                if isinstance(result, outcome.Error) and isinstance(result.error, trio.Cancelled):
                    # its asyncio caller's cancellation (which ignores the result), or the block
                    # ending: asyncio code must not see trio's Cancelled
                    result = outcome.Error(SessionClosedError("the session is closed"))
                request.finish(result)
        finally:
            self._closed = True
            while self._queue:
                self._queue.popleft().finish(outcome.Error(SessionClosedError("the session is closed")))
