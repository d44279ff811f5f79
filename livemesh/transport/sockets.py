"""One connected socket, read and written directly, with TLS over it when asked: :class:`SocketIO`.

Shared by both client engines and by the emulator's server. It uses trio's public API only: the
socket comes from ``trio.open_tcp_stream`` (or a listener) and is taken over with the trio
socket's own ``detach()``; then it is a non-blocking standard-library socket, and the task parks in
``trio.lowlevel.wait_readable`` / ``wait_writable`` only when the kernel says so. TLS is a
:class:`~livemesh.transport.tls.TlsState` (``ssl.SSLObject`` over memory BIOs) driven here.

Why own the socket (measured in ``bench/ws_transport_micro.py``): an operation the kernel
completes at once costs no scheduling round (``trio.SocketStream`` spends one on each, and
``trio.SSLStream`` a pass through its retry machinery per TLS record), and a read decrypts every
complete record it brought at once. A task that always finds data ready still yields every
:data:`EAGER_OPS` operations (:meth:`SocketIO.yield_if_eager`), so others run and deadlines fire.

Arrival dating (:attr:`SocketIO.stamp`): for the bytes a read returned, a time no later than
their arrival, give or take the scheduler's wake-up latency. A read that had to wait dates them by
its wake-up (woken by the first new bytes: the rest of that burst came with or after them, TCP
being in order); a read that found bytes ready dates them by the last moment the socket was seen
drained (a read shorter than asked drained it). The session dates resumption handles with it.

Writes are ordered by a FIFO lock (:meth:`SocketIO.lock`): a writer holds it from taking its
bytes to writing the last one, so frames never interleave. Under TLS, what the SSLObject writes
while a read decrypts (a KeyUpdate answer, a post-handshake certificate) is sent by the reader if
the lock is free, else by the lock's holder after its own write, before the lock is released.

Failures are trio's: ``trio.BrokenResourceError`` (the peer reset, TLS broke, a whole write timed
out) and ``trio.ClosedResourceError`` (closed here). The engines map them to livemesh errors.
"""

from __future__ import annotations

import errno
import math
import socket
from collections.abc import Sequence
from typing import Final

import trio

from livemesh.transport.options import RECEIVE_BUFFER_SIZE
from livemesh.transport.tls import TlsState

__all__ = ["EAGER_OPS", "NEVER", "SocketIO"]

EAGER_OPS: Final = 16
"""Socket operations in a row that may complete without a schedule point (see yield_if_eager)."""
NEVER: Final = math.inf
"""A deadline that never passes."""
_HAS_SENDMSG: Final = hasattr(socket.socket, "sendmsg")


def _failure(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    if exc.errno == errno.EBADF:
        return trio.ClosedResourceError("the socket was closed")
    return trio.BrokenResourceError(f"socket error: {type(exc).__name__}")


class SocketIO:
    """A connected socket, non-blocking, driven from trio; TLS over it when :attr:`tls` is set.

    Made from a trio socket stream with :meth:`adopt`. One task reads at a time; writers take
    :meth:`lock` first.

    Args:
        sock: A connected stream socket (made non-blocking here); this object owns it.
        read_size: Bytes asked of the kernel per read.
        write_timeout: Seconds a ``whole`` write may wait for a stuck peer before failing.
        tls: The TLS state to drive over the socket, if any.
    """

    __slots__ = (
        "_closed",
        "_send_busy",
        "_send_waiters",
        "caught_up_at",
        "eager",
        "read_size",
        "sock",
        "stamp",
        "tls",
        "waited",
        "write_timeout",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        read_size: int = RECEIVE_BUFFER_SIZE,
        write_timeout: float = 5.0,
        tls: TlsState | None = None,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.tls = tls
        self.read_size = read_size
        self.write_timeout = write_timeout
        self.eager = 0
        """Operations in a row that completed without waiting (see :meth:`yield_if_eager`)."""
        self.caught_up_at = trio.current_time()
        """The last moment everything the peer had sent was known to be read."""
        self.stamp = self.caught_up_at
        """For the bytes the last :meth:`receive` returned: a time no later than their arrival."""
        self.waited = False
        """Whether the last socket read had to wait for its bytes."""
        self._closed = False
        # The write lock: a flag, and a FIFO of waiters made on first contention (one writer per
        # connection: almost never), rather than a StrictFIFOLock per connection.
        self._send_busy = False
        self._send_waiters: trio.lowlevel.ParkingLot | None = None

    @classmethod
    def adopt(
        cls,
        stream: trio.SocketStream,
        *,
        read_size: int = RECEIVE_BUFFER_SIZE,
        write_timeout: float = 5.0,
        tls: TlsState | None = None,
    ) -> SocketIO:
        """Take over the socket of a connected ``trio.SocketStream``.

        The trio socket's public ``detach()`` hands the file descriptor over; the stream is left
        empty (closing it does nothing), and this object closes the socket.

        Args:
            stream: A connected TCP stream (``trio.open_tcp_stream``, a listener's ``accept``).
            read_size: Bytes asked of the kernel per read.
            write_timeout: Seconds a ``whole`` write may wait for a stuck peer before failing.
            tls: The TLS state to drive over the socket, if any.

        Returns:
            The socket, ready for direct I/O.
        """
        trio_socket = stream.socket
        family, kind, proto = trio_socket.family, trio_socket.type, trio_socket.proto
        sock = socket.socket(family, kind, proto, fileno=trio_socket.detach())
        return cls(sock, read_size=read_size, write_timeout=write_timeout, tls=tls)

    def __repr__(self) -> str:
        return f"<SocketIO tls={self.tls is not None} closed={self._closed}>"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed)."""
        return self.sock.fileno()

    # ------------------------------------------------------------------ scheduling

    async def yield_if_eager(self) -> None:
        """A cancellation point; a schedule point only every :data:`EAGER_OPS` operations that
        completed without waiting. Why: an operation the kernel satisfies at once costs no
        scheduling round here, yet a task that always finds data ready must still let the others
        run and let deadlines fire."""
        if self.eager >= EAGER_OPS:
            self.eager = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()

    # ------------------------------------------------------------------ raw socket

    def recv_nowait(self, size: int) -> bytes | None:
        """Bytes the kernel holds now (``b""``: the peer's EOF), or ``None`` if none.

        Args:
            size: Bytes wanted at most.

        Returns:
            The bytes, ``b""`` at EOF, ``None`` when reading would wait.

        Raises:
            trio.BrokenResourceError: The connection failed (a reset).
            trio.ClosedResourceError: The socket was closed here.
        """
        try:
            return self.sock.recv(size)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise _failure(exc) from None

    async def wait_readable(self, deadline: float = NEVER) -> None:
        """Wait until the socket is readable (or ``deadline`` passed: then return anyway).

        Args:
            deadline: ``trio.current_time()`` value to stop waiting at.

        Raises:
            trio.ClosedResourceError: The socket was closed while waiting.
        """
        if deadline == NEVER:
            await trio.lowlevel.wait_readable(self.sock)
        else:
            with trio.move_on_at(deadline):
                await trio.lowlevel.wait_readable(self.sock)

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Write what the kernel takes now.

        Args:
            data: The bytes to write.

        Returns:
            How many were written (0 when the send buffer is full).

        Raises:
            trio.BrokenResourceError: The connection failed.
            trio.ClosedResourceError: The socket was closed here.
        """
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise _failure(exc) from None

    def sendv_nowait(self, buffers: Sequence[bytes | bytearray | memoryview]) -> int:
        """Write several buffers as one (``sendmsg``: no copy to join them), as far as the kernel
        takes them now.

        Args:
            buffers: The bytes to write, in order.

        Returns:
            How many bytes were written in all.

        Raises:
            trio.BrokenResourceError: The connection failed.
            trio.ClosedResourceError: The socket was closed here.
        """
        try:
            if _HAS_SENDMSG:
                return self.sock.sendmsg(buffers)
            return self.sock.send(b"".join(buffers))  # pragma: no cover - Windows
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise _failure(exc) from None

    async def wait_writable(self) -> None:
        """Wait until the socket's send buffer has room.

        Raises:
            trio.ClosedResourceError: The socket was closed while waiting.
        """
        await trio.lowlevel.wait_writable(self.sock)

    async def _recv(self, deadline: float) -> bytes | None:
        """One read, dated (:attr:`stamp`); ``None`` if ``deadline`` passed before any byte came."""
        stamp = self.caught_up_at
        before = trio.current_time()
        data = self.recv_nowait(self.read_size)
        self.waited = data is None
        if data is None:
            self.eager = 0
            while True:
                await self.wait_readable(deadline)
                # Tried even past the deadline: bytes that came in time but were read late (a
                # busy scheduler woke us after it) count, they are not silence.
                data = self.recv_nowait(self.read_size)
                if data is not None:
                    break
                if trio.current_time() >= deadline:
                    return None
            # Woken by the first new bytes: the rest of that burst (read later, when it outgrows
            # the buffer) arrived with or after them, TCP being in order.
            stamp = self.caught_up_at = trio.current_time()
        else:
            self.eager += 1
            if len(data) < self.read_size:
                self.caught_up_at = before  # drained by this read; its own bytes keep the older bound
        self.stamp = stamp
        return data

    # ------------------------------------------------------------------ plaintext

    async def receive(self, deadline: float = NEVER) -> bytes | None:
        """The next plaintext from the peer, dated by :attr:`stamp`.

        Not a schedule point by itself (call :meth:`yield_if_eager` first); waits only if nothing
        is there. Under TLS, every complete record received is decrypted at once, and reads go on
        until one completes (a record's head alone returns nothing).

        Args:
            deadline: ``trio.current_time()`` value to give up waiting at.

        Returns:
            Plaintext; ``b""`` at the end of the stream (EOF, or TLS close_notify); ``None`` if
            ``deadline`` passed first (under TLS, bytes of an incomplete record may have been
            taken: they are kept for the next call).

        Raises:
            trio.BrokenResourceError: The connection failed (a reset, a TLS error).
            trio.ClosedResourceError: The socket was closed here.
        """
        tls = self.tls
        if tls is None:
            return await self._recv(deadline)
        stamp = self.caught_up_at
        while True:
            data = tls.decrypt(self.read_size) if tls.has_input else b""
            if tls.has_answers:
                try:
                    await self._flush_tls_answers(tls)
                except trio.BrokenResourceError:
                    if not data:
                        raise
                    # What the peer sent before is handed out first (its close frame, say); the
                    # broken connection shows at the next read.
            if data:
                self.stamp = stamp
                return data
            if tls.end is not None:
                if tls.eof():
                    self.stamp = stamp
                    return b""
                raise trio.BrokenResourceError("TLS failed") from tls.end
            raw = await self._recv(deadline)
            if raw is None:
                return None
            if self.waited:
                # The record completes with bytes that came after the wait. (A read that did not
                # wait keeps the stamp from before the first: it may complete a record whose
                # other frames came with an earlier read.)
                stamp = self.stamp
            tls.feed(raw)

    async def _flush_tls_answers(self, tls: TlsState) -> None:
        """Send what TLS wrote while decrypting, if no writer holds the lock (the holder sends it
        after its own write otherwise: see :meth:`send_locked`). Written whole: a reader cancelled
        meanwhile must not cut a record."""
        if self._send_busy:
            return
        self._send_busy = True
        try:
            await self._send_raw(tls.take_output(), whole=True)
        finally:
            self.unlock()

    # ------------------------------------------------------------------ writing

    async def lock(self) -> None:
        """Take the write lock (FIFO). Cancelled while waiting: not taken. Not a schedule point
        when uncontended (the write after it yields if it has to)."""
        if self._send_busy:
            if self._send_waiters is None:
                self._send_waiters = trio.lowlevel.ParkingLot()
            await self._send_waiters.park()  # woken by unlock, which handed the lock over
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._send_busy = True

    @property
    def locked(self) -> bool:
        """True while a writer holds the lock."""
        return self._send_busy

    def unlock(self) -> None:
        """Release the write lock (to the first waiter, if any)."""
        waiters = self._send_waiters
        if waiters:
            waiters.unpark()  # ownership passes to the first waiter: _send_busy stays set
        else:
            self._send_busy = False

    async def send_locked(self, data: bytes | bytearray, *, whole: bool = False) -> None:
        """Write ``data`` (encrypted first under TLS); the caller holds :meth:`lock`.

        A write the kernel takes whole returns with no scheduling round; only a full send buffer
        waits. ``whole``: that wait is shielded from the caller's cancellation and bounded by
        ``write_timeout`` (a ping's write under a caller's timeout must not be cut). Without it, a
        cancellation may leave part of ``data`` written: the caller must then close the socket.

        Args:
            data: Plaintext to send.
            whole: Finish the write even if the caller is cancelled meanwhile.

        Raises:
            trio.BrokenResourceError: The connection failed, TLS failed, or a ``whole`` write
                waited longer than ``write_timeout``.
            trio.ClosedResourceError: The socket was closed here.
        """
        tls = self.tls
        if tls is None:
            await self._send_raw(data, whole)
            return
        try:
            records = tls.encrypt(data)
        except OSError as exc:  # ssl.SSLError: TLS has failed
            raise trio.BrokenResourceError("TLS failed") from exc
        await self._send_raw(records, whole)
        while tls.outgoing.pending:  # what a read wrote meanwhile, held back for this write
            await self._send_raw(tls.take_output(), whole)

    async def _send_raw(self, data: bytes | bytearray, whole: bool = False) -> None:
        sent = self.send_nowait(data)
        if sent == len(data):
            self.eager += 1
            return
        self.eager = 0
        if not whole:
            await self._send_rest(data, sent)
            return
        # A shielded scope with a deadline costs ~10-17 us: only a write that waits pays it.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self.write_timeout) as scope:
            await self._send_rest(data, sent)
        if scope.cancelled_caught:
            raise trio.BrokenResourceError("write timed out")

    async def _send_rest(self, data: bytes | bytearray, sent: int) -> None:
        with memoryview(data) as view:
            while sent < len(view):
                await self.wait_writable()
                sent += self.send_nowait(view[sent:])

    # ------------------------------------------------------------------ TLS handshake

    async def handshake(self) -> None:
        """Run the TLS handshake over the socket (the caller bounds it with a timeout).

        Raises:
            ssl.SSLCertVerificationError: The peer's certificate or name was refused.
            ssl.SSLError: Another TLS failure (an alert, a version mismatch).
            trio.BrokenResourceError: The connection failed or ended during the handshake.
            trio.ClosedResourceError: The socket was closed here.
        """
        tls = self.tls
        assert tls is not None, "handshake() needs TLS state"
        while True:
            try:
                done = tls.handshake()
            except OSError:
                self._send_alert_nowait(tls)  # what went wrong, for the peer's logs
                raise
            output = tls.take_output()
            if output:
                await self._send_raw(output)
            if done:
                return
            data = await self._recv(NEVER)
            assert data is not None
            tls.feed(data)

    def _send_alert_nowait(self, tls: TlsState) -> None:
        try:
            self.send_nowait(tls.take_output())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # ------------------------------------------------------------------ closing

    def close(self, *, notify: bool = True) -> None:
        """Close the socket now. Wakes any task waiting on it with ``trio.ClosedResourceError``.
        Idempotent.

        Args:
            notify: Under TLS, send a close_notify first if it goes without waiting and no write
                holds the lock (a write cut short must not be followed by an alert record). A
                writer that does not take the lock (the emulator's) passes False.
        """
        if self._closed:
            return
        self._closed = True
        tls = self.tls
        if notify and tls is not None and tls.handshaken and not self._send_busy:
            # (not while a write is cut short: the alert would land inside its record)
            try:
                self.send_nowait(tls.close_notify())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        trio.lowlevel.notify_closing(self.sock)
        self.sock.close()

    async def aclose(self) -> None:
        """:meth:`close`, as a checkpoint."""
        self.close()
        await trio.lowlevel.checkpoint()
