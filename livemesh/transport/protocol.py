"""The seam between the session and a WebSocket engine: :class:`Connection`.

Every capability the session uses is declared here, and both engines implement all of it, so
the session calls each one directly and cannot tell the engines apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from livemesh.transport.errors import CloseInfo

__all__ = ["Connection"]


class Connection(Protocol):
    """One open Live API WebSocket. Implementations raise livemesh errors only.

    Sending is for one writer task at a time (the session's writer), receiving for one reader
    task; :meth:`ping`, :meth:`aclose` and :meth:`fence_result` may be called from others.
    """

    @property
    def close_info(self) -> CloseInfo | None:
        """How the connection ended, once it has (``None`` while it is open); the reason is
        redacted of every credential the connection sent."""
        ...

    @property
    def arrived_after(self) -> float | None:
        """For the frame :meth:`receive` returned last: a time (``trio.current_time()``) no later
        than its arrival, give or take the scheduler's wake-up latency (``None`` before the first
        frame). The session dates resumption handles with it: a frame *read* late (the reader was
        busy) may have arrived long before, and dating it by the read would make messages sent
        after its issue look covered."""
        ...

    @property
    def received_index(self) -> int:
        """0-based arrival number of the frame :meth:`receive` returned last (-1 before the first)."""
        ...

    async def send(self, data: bytes) -> None:
        """Send one JSON message as a text frame (what the official SDK sends).

        Args:
            data: The message's UTF-8 bytes (never decoded on the way).

        Raises:
            SessionError: The connection has ended (its close mapped to a livemesh error).
        """
        ...

    async def send_many(self, frames: Sequence[bytes]) -> None:
        """Send several messages as text frames with one write (one syscall, one TLS batch).

        Args:
            frames: The messages, in order (none: nothing is sent).

        Raises:
            SessionError: The connection has ended.
        """
        ...

    async def send_fenced(self, frames: Sequence[bytes]) -> bytes:
        """Send ``frames`` (maybe none) and then a ping, in one write, without waiting for the pong.

        A message with ``received_index`` at or past :meth:`fence_result` of the returned token
        came after the pong: where the server answers pings in order with consuming what came
        before them, it was sent after the server consumed everything sent before the ping.

        Args:
            frames: Messages to send ahead of the ping.

        Returns:
            The ping's token for :meth:`fence_result`.

        Raises:
            SessionError: The connection has ended.
        """
        ...

    def fence_result(self, token: bytes) -> int | None:
        """How many data messages arrived before the pong of :meth:`send_fenced`'s ping ``token``.

        An engine may overestimate (fewer messages then count as after the pong: a proof comes
        later, never wrongly), never underestimate. The answer is given once (the fence is then
        forgotten).

        Args:
            token: What :meth:`send_fenced` returned.

        Returns:
            The count, or ``None`` while the ping is unanswered (or the fence was forgotten).
        """
        ...

    async def receive(self) -> bytes | str:
        """The next server message: ``str`` for a text frame, ``bytes`` for a binary one.

        While it waits, the keepalive set with :meth:`set_keepalive` runs here.

        Returns:
            The message.

        Raises:
            SessionError: The connection has ended (its close mapped to a livemesh error), or
                the keepalive found it dead (:class:`~livemesh.transport.ConnectionLostError`).
        """
        ...

    async def ping(self) -> None:
        """Send a ping and wait for a pong.

        Raises:
            SessionError: The connection has ended.
        """
        ...

    def set_keepalive(self, *, interval: float | None, pong_timeout: float, by_caller: bool = False) -> None:
        """Keep the connection proven alive while a :meth:`receive` waits.

        When no frame has been parsed for ``interval`` seconds, a ping goes out; if no frame at
        all (the pong, a message) is parsed within ``pong_timeout`` after it, the waiting receive
        raises :class:`~livemesh.transport.ConnectionLostError` (1011). Only parsed frames count
        as life: bytes that never complete a frame (a frame cut short while the peer's pong bytes
        pile into its payload) do not. A receiver that stopped reading (a slow consumer) sees no
        keepalive failure meanwhile. The engine does this itself, inside :meth:`receive` or in a
        task of its own ``open_connection`` block: the caller starts nothing. Or, with
        ``by_caller``, a task the caller already runs does it: it awaits :meth:`keepalive` at
        :meth:`keepalive_deadline`, and a waiting :meth:`receive` carries no deadline (a busy
        reader waits thousands of times a second, each wait with a deadline a cancel scope).

        Args:
            interval: Seconds of silence before a ping; ``None`` turns the keepalive off.
            pong_timeout: Seconds to wait for any frame after the ping (the service's pongs were
                seen taking 8-30 s, sip-to-ai#14 on GitHub: be generous).
            by_caller: The caller runs the keepalive (:meth:`keepalive`), not :meth:`receive`.
        """
        ...

    def keepalive_deadline(self) -> float:
        """When the caller must next await :meth:`keepalive` (with ``by_caller``).

        Returns:
            A ``trio.current_time()`` value; ``inf`` while the keepalive is off.
        """
        ...

    async def keepalive(self) -> None:
        """Run the keepalive rule now (with ``by_caller``): ping if the connection has been
        silent for ``interval``; give it up if no frame came within ``pong_timeout`` of the
        ping. Only while a :meth:`receive` is reading: otherwise the silence counts again from
        now (a slow consumer's unread frames may be waiting).

        Raises:
            SessionError: The connection has ended, or the keepalive found it dead
                (:class:`~livemesh.transport.ConnectionLostError`).
        """
        ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and wait (bounded, shielded) for the peer's; idempotent, never raises.

        Args:
            code: The close code to send.
            reason: The close frame's text.
        """
        ...
