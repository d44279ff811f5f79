"""A :class:`~livemesh.transport.sockets.SocketIO` as a ``trio.abc.Stream``, for code written
against trio's stream interface: trio-websocket's connection (the second client engine) and the
emulator's HTTP side (h11) before a WebSocket upgrade.

Two additions to the plain interface, both for the trio-websocket engine:

* corking (:meth:`SocketIOStream.cork` / :meth:`~SocketIOStream.uncork`): writes made meanwhile are
  kept and leave as one write, so several messages and a ping cost one syscall and one TLS batch;
* a read observer (:class:`ReadObserver`): told when every read the library makes starts and
  ends, so the engine can date the messages it hands out (trio-websocket reads ahead in its own
  task) and notice an end of stream during the upgrade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from livemesh.transport.sockets import SocketIO

__all__ = ["ReadObserver", "SocketIOStream"]


class ReadObserver(Protocol):
    """What a :class:`SocketIOStream` tells about its reads."""

    def read_started(self) -> None:
        """A read is about to start."""

    def read_finished(self, data: bytes | None, stamp: float) -> None:
        """The read ended with ``data`` (``b""``: end of stream; ``None``: it failed); ``stamp``
        is a time no later than the arrival of its bytes."""


class SocketIOStream(trio.abc.Stream):
    """``trio.abc.Stream`` over a :class:`SocketIO` (plain or TLS).

    A write cut by a cancellation or a failure closes the socket at once: the peer never sees
    bytes after a partial frame or record (it sees the connection drop, as for a network failure).

    Args:
        io: The socket (this stream closes it).
        observer: Told about every read (see :class:`ReadObserver`).
    """

    __slots__ = ("_corked", "_write_hook", "io", "observer")

    def __init__(self, io: SocketIO, *, observer: ReadObserver | None = None) -> None:
        self.io = io
        self.observer = observer
        self._corked: bytearray | None = None
        self._write_hook: tuple[trio.lowlevel.Task, Callable[[], object]] | None = None

    def __repr__(self) -> str:
        return f"<SocketIOStream {self.io!r}>"

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next bytes from the peer (``b""`` at the end of the stream).

        Args:
            max_bytes: Ignored beyond being a hint: a read returns what the socket (or one TLS
                batch) holds, up to the socket's read size.

        Returns:
            Plaintext; ``b""`` at the end of the stream.

        Raises:
            trio.BrokenResourceError: The connection failed.
            trio.ClosedResourceError: The stream was closed.
        """
        io = self.io
        await io.yield_if_eager()
        observer = self.observer
        if observer is None:
            data = await io.receive()
            assert data is not None  # no deadline
            return data
        observer.read_started()
        data = None
        try:
            data = await io.receive()
            assert data is not None
            return data
        finally:
            observer.read_finished(data, io.stamp)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` whole (kept for the one write of :meth:`uncork` while corked).

        Args:
            data: The bytes to send.

        Raises:
            trio.BrokenResourceError: The connection failed (the socket is then closed).
            trio.ClosedResourceError: The stream was closed.
        """
        io = self.io
        if self._corked is not None:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._corked += data
            self._wrote()
            return
        if io.closed:
            raise trio.ClosedResourceError("the stream was closed")
        await io.lock()  # cancelled while waiting: nothing written
        try:
            await io.yield_if_eager()
            await self._write_locked(bytes(data))
        finally:
            io.unlock()
        self._wrote()

    def _wrote(self) -> None:
        hook = self._write_hook
        if hook is not None and hook[0] is trio.lowlevel.current_task():
            self._write_hook = None
            hook[1]()

    async def _write_locked(self, data: bytes) -> None:
        try:
            await self.io.send_locked(data)
        except BaseException:
            # Cancelled or failed with bytes possibly on the wire: the frame boundary is lost.
            self.io.close()
            raise

    def cork(self) -> None:
        """Keep the writes that follow, until :meth:`uncork` sends them as one."""
        if self._corked is None:
            self._corked = bytearray()

    def on_write(self, callback: Callable[[], object] | None) -> None:
        """Call ``callback`` once, when the current task's next :meth:`send_all` has handed its
        bytes over (kept by the cork, or written): for a library call that goes on waiting after
        its write (a ping awaiting its pong), which the caller can then stop. ``None`` withdraws
        it.

        Args:
            callback: What to call, with no arguments.
        """
        self._write_hook = None if callback is None else (trio.lowlevel.current_task(), callback)

    async def uncork(self) -> None:
        """Send what was kept since :meth:`cork` in one write.

        Raises:
            trio.BrokenResourceError: The connection failed (the socket is then closed).
            trio.ClosedResourceError: The stream was closed.
        """
        data, self._corked = self._corked, None
        if data:
            io = self.io
            if io.closed:
                raise trio.ClosedResourceError("the stream was closed")
            try:
                await io.lock()
            except trio.Cancelled:
                io.close()  # these bytes were accepted as sent: losing them must end the stream
                raise
            try:
                await self._write_locked(bytes(data))
            finally:
                io.unlock()

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the socket's send buffer has room."""
        await self.io.wait_writable()

    async def aclose(self) -> None:
        """Close the socket (TLS: with a close_notify if it goes at once)."""
        await self.io.aclose()
