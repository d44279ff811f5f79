"""The session's inbox: a bounded FIFO from its reader task to whoever receives messages.

Why not a trio memory channel pair: an idle session carried one (two channel objects, a state
object, two ordered dicts of waiting tasks and a deque: ~1.8 KB), and every hand-over cost two
scheduling rounds (trio's ``send`` and ``receive`` each yield even when they do not wait). Here
the buffer exists only while messages wait, waiting tasks park only when they must, and
``send``/``receive`` are cancellation points that yield to the scheduler only when they wait (or
every few hand-overs in a row, so a task that always finds a message still lets others run).

Same semantics the session relied on: bounded (``send`` waits for room, ``send_nowait`` raises
``trio.WouldBlock``), FIFO, ``close()`` wakes every waiter; after it, ``send`` raises
``trio.ClosedResourceError`` and ``receive`` drains what is left, then raises ``trio.EndOfChannel``.
A ``send`` cancelled while it waits has queued nothing.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, TypeVar

import trio

__all__ = ["Inbox"]

T = TypeVar("T")

_EAGER_HANDOVERS: Final = 16


class Inbox(Generic[T]):
    """A bounded FIFO with the memory channel methods the session uses (one object for both ends)."""

    __slots__ = ("_closed", "_eager", "_items", "_limit", "_receivers", "_senders")

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._items: deque[T] | None = None  # only while messages wait: an empty deque is ~770 B
        self._receivers: trio.lowlevel.ParkingLot | None = None
        self._senders: trio.lowlevel.ParkingLot | None = None
        self._closed = False
        self._eager = 0

    def __repr__(self) -> str:
        return f"<Inbox {len(self)}/{self._limit}{' closed' if self._closed else ''}>"

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    async def _checkpoint(self) -> None:
        if self._eager >= _EAGER_HANDOVERS:
            self._eager = 0
            await trio.lowlevel.checkpoint()
        else:
            self._eager += 1
            await trio.lowlevel.checkpoint_if_cancelled()

    def send_nowait(self, item: T) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the inbox is closed")
        items = self._items
        if items is None:
            items = self._items = deque()
        elif len(items) >= self._limit:
            raise trio.WouldBlock
        items.append(item)
        if self._receivers:
            self._receivers.unpark()

    async def send(self, item: T) -> None:
        await self._checkpoint()
        while not self._closed and len(self) >= self._limit:
            if self._senders is None:
                self._senders = trio.lowlevel.ParkingLot()
            self._eager = 0
            await self._senders.park()
        self.send_nowait(item)

    async def receive(self) -> T:
        await self._checkpoint()
        while not self._items:
            if self._closed:
                raise trio.EndOfChannel
            if self._receivers is None:
                self._receivers = trio.lowlevel.ParkingLot()
            self._eager = 0
            await self._receivers.park()
        items = self._items
        item = items.popleft()
        if not items:
            self._items = None
        if self._senders:
            self._senders.unpark()  # room for the next message
        return item

    def close(self) -> None:
        self._closed = True
        if self._receivers:
            self._receivers.unpark_all()
        if self._senders:
            self._senders.unpark_all()
