"""The connection manager: connect, set up (resuming), serve, move, retry, for one session.

Each connection runs three tasks in a nursery of its own: the reader, the writer and the mover
(the engine keeps the connection alive itself, inside the reader's receive). The connection ends
when the mover says so (a move: close with 1000, resume at once on the next; a close), or when
one of them fails: a drop or a retryable close is retried with jittered backoff as long as the
core says it can resume (``SessionCore.lost``); anything else ends the session.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import attrs
import trio

from livemesh import wire
from livemesh.auth import Auth
from livemesh.endpoints import live_headers
from livemesh.errors import (
    LivemeshError,
    ReconnectError,
    RemoteProtocolError,
    ServiceClosedError,
    SetupRejectedError,
)
from livemesh.session.core.core import Opened
from livemesh.session.links import Links
from livemesh.session.mover import move
from livemesh.session.reader import HandleHook, decode, deliver_nowait, read
from livemesh.session.writer import write
from livemesh.transport import Connection, ConnectionLostError

__all__ = ["ConnectFn", "Connections"]

ConnectFn = Callable[[str, list[tuple[str, str]]], AbstractAsyncContextManager[Connection]]
"""``(url, headers) -> async context manager yielding a Connection`` (the transport seam)."""


@attrs.define(eq=False)
class _Epoch:
    """One connection's lifetime: how it ended (a planned outcome or an error)."""

    scope: trio.CancelScope
    outcome: str | None = None
    error: LivemeshError | None = None

    def end(self, outcome: str | None = None, error: LivemeshError | None = None) -> None:
        if self.outcome is None and self.error is None:
            self.outcome, self.error = outcome, error
        self.scope.cancel()


@attrs.define(eq=False)
class Connections:
    """The session's life as a loop over connections (see the module docstring)."""

    links: Links
    auth: Auth
    connect: ConnectFn
    on_handle: HandleHook | None
    scrub: Callable[[LivemeshError], LivemeshError]
    rng: random.Random | None = None
    server_session_id: str | None = None

    async def run(self, started: Callable[[], None]) -> None:
        """Connect, serve, move, retry until the session ends; ``started`` once the first
        connection is set up. Raises the session's fatal error."""
        core = self.links.core
        while True:
            unread = self.links.outbox_out.statistics().current_buffer_used
            if core.started and not core.wants_connection(trio.current_time(), unread):
                return
            try:
                # A close may still need a connection (to flush what was sent), within its time
                # (no cancel scope while not closing: an idle session's memory counts them).
                deadline = core.close_deadline if core.started else math.inf
                if deadline == math.inf:
                    outcome: str | None = await self._connection(None if core.started else started)
                else:
                    outcome = None
                    with trio.move_on_at(deadline):
                        outcome = await self._connection(None)
                if outcome is None or outcome == "close":
                    return  # (None: the close's time ran out)
                core.left()
                continue
            except ConnectionLostError as exc:
                attempt = core.lost(exc, trio.current_time(), unread)
                if attempt is None:
                    return
                if attempt < 0:
                    delay = 0.0
                else:
                    if self.rng is None:
                        self.rng = random.Random()  # made on first retry: 2.5 KiB an idle session needs not
                    delay = self.links.config.retry.delay(attempt, self.rng.random)
                self.links.log.info(
                    "connection lost (%s); reconnect attempt %d in %.3f s",
                    self.scrub(exc),
                    core.attempt,
                    delay,
                )
                self.links.notify()
                with trio.move_on_after(delay):
                    while not core.closing:
                        await self.links.wait_changed()

    async def _connection(self, started: Callable[[], None] | None) -> str:
        """Connect, set up (resuming if there is a handle), serve until the connection ends."""
        links = self.links
        core, config = links.core, links.config
        url = config.url(self.auth)
        headers = await live_headers(self.auth)
        handle = core.dial(trio.current_time())
        async with self.connect(url, headers) as conn:
            try:
                try:
                    await self._handshake(conn, handle)
                except ServiceClosedError as exc:
                    # Before setupComplete a fatal close refuses the setup itself.
                    raise SetupRejectedError(str(exc), code=exc.code, reason=exc.reason) from None
            except SetupRejectedError as exc:
                if handle is not None and started is None:
                    raise ReconnectError(
                        f"resuming failed (handle expired or unknown?): {exc}",
                        code=exc.code,
                        reason=exc.reason,
                    ) from None
                raise
            core.probe.connection_opened(self.server_session_id, resumed=handle is not None)
            self._log_opened(core.opened(trio.current_time()))
            links.cancel_tools()
            if started is not None:
                started()
            links.notify()
            links.mover_wake = trio.Event()
            conn.set_keepalive(
                interval=config.keepalive_interval, pong_timeout=config.keepalive_timeout, by_caller=True
            )
            async with trio.open_nursery() as nursery:
                epoch = _Epoch(scope=nursery.cancel_scope)
                nursery.start_soon(self._guard, epoch, read(conn, links, self.on_handle))
                nursery.start_soon(self._guard, epoch, write(conn, links))
                nursery.start_soon(self._mover, epoch, conn)
            if epoch.error is not None:
                raise epoch.error
            if epoch.outcome is None:  # pragma: no cover - the epoch only ends via end()
                raise ConnectionLostError("connection ended without a reason")
            await conn.aclose(1000, "")
            core.probe.connection_closed(1000)
            return epoch.outcome

    async def _mover(self, epoch: _Epoch, conn: Connection) -> None:
        try:
            epoch.end(await move(self.links, conn))
        except LivemeshError as exc:  # the keepalive found the connection dead
            epoch.end(error=exc)

    @staticmethod
    async def _guard(epoch: _Epoch, coro: Awaitable[None]) -> None:
        try:
            await coro
        except LivemeshError as exc:
            epoch.end(error=exc)

    async def _handshake(self, conn: Connection, handle: str | None) -> None:
        links = self.links
        config = links.config
        setup = config.setup(self.auth, handle=handle)
        start = trio.current_time()
        await conn.send(wire.encode_client(wire.ClientMessage(setup=setup)))
        with trio.move_on_after(config.setup_timeout) as scope:
            raw = await conn.receive()
        if scope.cancelled_caught:
            raise ConnectionLostError(f"no setupComplete within {config.setup_timeout:g} s", code=1006)
        message = decode(links, raw)
        if message.setup_complete is None:
            raise RemoteProtocolError(f"expected setupComplete, got {message.kind or 'an empty message'}")
        self.server_session_id = message.setup_complete.session_id or self.server_session_id
        if links.core.setup_answered(trio.current_time() - start, len(raw)):
            deliver_nowait(links, message)

    def _log_opened(self, opened: Opened) -> None:
        log = self.links.log
        for pending in opened.void:
            log.info("tool call %s (%s) is void after resuming", pending.id, pending.call.name)
        plan = opened.plan
        if plan is not None and (plan.messages or plan.ambiguous or plan.dropped_void or plan.skipped):
            log.info(
                "replaying %d message(s), %d ambiguous, %d answered turns as history; %d media chunks "
                "skipped; %d void answers dropped",
                len(plan.messages),
                plan.ambiguous,
                plan.restored,
                plan.skipped,
                plan.dropped_void,
            )
