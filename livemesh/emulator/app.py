"""The emulator: one listener serving REST and Live on one port, its sessions, and test controls.

:func:`open_emulator` binds, serves in a nursery inside the caller's ``async with`` block and
yields an :class:`Emulator` handle. Every accepted stream is served by
:func:`livemesh.emulator.wsio.serve_stream`, which never lets one connection's error escape.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from websockets.server import ServerProtocol

from livemesh.emulator import closes
from livemesh.emulator.config import EmulatorConfig
from livemesh.emulator.context import SessionStats, SessionStore
from livemesh.emulator.faults import MALFORMED_FRAME, FaultPlan
from livemesh.emulator.live import LiveConnection
from livemesh.emulator.rest import RestApi
from livemesh.emulator.routing import live_route
from livemesh.emulator.tls import server_context
from livemesh.emulator.tokens import TokenStore
from livemesh.emulator.wsio import HttpRequest, HttpResponse, WebSocketPeer, serve_stream

log = logging.getLogger("livemesh.emulator")

_CLOSE_TEXTS = {
    closes.INVALID_ARGUMENT: closes.TEXT_INVALID_ARGUMENT,
    closes.POLICY: closes.TEXT_ABORTED,
    closes.INTERNAL: closes.TEXT_INTERNAL,
}


class Emulator:
    """A running emulator (from :func:`open_emulator`): its URLs, sessions and test controls.

    Tests point clients at :attr:`url`, then misbehave on purpose where the real service would
    (``goAway``, drops, close codes, malformed frames) and read what each session consumed
    (:meth:`stats`) to judge that nothing was lost or doubled.
    """

    def __init__(
        self, config: EmulatorConfig, *, host: str, port: int, tls: bool, ca_pem: bytes | None
    ) -> None:
        """Made by :func:`open_emulator` once the port is bound; not constructed directly.

        Args:
            config: What to serve.
            host: The host the listener is bound to.
            port: The port actually bound.
            tls: Whether the listener serves TLS (``wss``/``https`` URLs).
            ca_pem: The throwaway CA's PEM, when one signed the certificate.
        """
        self.config = config
        """What the emulator serves and how."""
        self.host = host
        """The host the listener is bound to."""
        self.port = port
        """The port bound (the real one when ``config.port`` is 0)."""
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'wss' if tls else 'ws'}://{shown}:{port}"
        """Base WebSocket URL, for ``SessionConfig(base_url=emu.url)``; clients append
        ``/ws/google.ai.generativelanguage...``."""
        self.http_url = f"{'https' if tls else 'http'}://{shown}:{port}"
        """Base REST URL on the same port (model list, ephemeral tokens)."""
        self.ca_pem = ca_pem
        """PEM of the throwaway CA when serving with ``tls=True`` (else None): trust it in the
        client's ``ssl_context`` to connect over ``wss``."""
        # The session store, token store and REST handler are internal to the emulator's own
        # modules; tests may read them, but they are not a stable interface.
        self.store = SessionStore(
            handle_validity_s=config.limits.handle_validity_s,
            max_handles_per_session=config.max_handles_per_session,
            max_stored_sessions=config.max_stored_sessions,
        )
        self.tokens = TokenStore()
        self.rest = RestApi(config, self.tokens)
        self._live: set[LiveConnection] = set()
        self._per_key: collections.Counter[str | None] = collections.Counter()
        self._calls = 0
        self._connections = 0
        self._idle = trio.Event()
        self._idle.set()
        self._sockets = 0
        self.messages_sent = 0
        """Server messages sent by live connections that have ended (for benchmarks)."""

    # ------------------------------------------------------------------ public controls

    def stats(self, session_id: str) -> SessionStats:
        """What the session's context has consumed, with its connection counts.

        The context's numbers are those of the ``stats`` command; the counts say how many
        connections the session had, how many were resumptions, how many handles were issued
        and how many connections the client left mid-turn.

        Args:
            session_id: The session's id, as ``setupComplete.sessionId`` carried it (a livemesh
                session's ``server_session_id``).

        Returns:
            The session's numbers now, across all its connections.

        Raises:
            KeyError: The emulator does not know the session (never set up, or forgotten after
                its handles expired).
        """
        record = self.store.sessions[session_id]
        snap = record.context.snapshot()
        return snap.with_connections(
            record.connections, record.resumptions, record.handles_issued, record.disconnects_mid_turn
        )

    def session_ids(self) -> list[str]:
        """Every session the emulator still remembers (live or resumable).

        Returns:
            Their ids.
        """
        return list(self.store.sessions)

    def live_connections(self) -> int:
        """Live connections past setup (for leak checks).

        Returns:
            How many are open now.
        """
        return len(self._live)

    def open_sockets(self) -> int:
        """Accepted TCP connections still open (HTTP or WebSocket, live or closing).

        Returns:
            How many are open now.
        """
        return self._sockets

    async def wait_idle(self) -> None:
        """Wait until no live connection and no socket of any kind remains (a leak check that
        needs no polling; an HTTP client's keep-alive connection counts until it is closed)."""
        while self._live or self._sockets:
            await self._idle.wait()

    async def send_go_away(self, time_left: float = 1.0, session_id: str | None = None) -> int:
        """Send ``goAway`` now, as the service does before it ends a connection.

        Only the notice is sent: the connection still ends at its own deadline (or when the
        client leaves). A connection whose client is not reading is skipped, never waited for.

        Args:
            time_left: The ``timeLeft`` announced, in seconds.
            session_id: The session whose live connection gets it; ``None``: every live
                connection.

        Returns:
            How many live connections got it: 0 for a session the emulator knows but that has
            no live connection now (between two connections, or ended).

        Raises:
            KeyError: The emulator does not know ``session_id`` (never set up, or forgotten
                after its handles expired), as :meth:`stats`.
        """
        connections = self._select(session_id)
        for connection in connections:
            connection.send_go_away(time_left)
        await trio.lowlevel.checkpoint()
        return len(connections)

    async def drop(
        self, session_id: str | None = None, close_code: int | None = None, reason: str | None = None
    ) -> int:
        """End live connections, as a network failure or the service would.

        Args:
            session_id: The session whose live connection to end; ``None``: every live
                connection.
            close_code: ``None``: drop abruptly, without a close frame (the client sees 1006).
                A code: close with a close frame carrying it, after the frames already queued
                (waiting at most ``config.close_timeout_s`` each).
            reason: The close frame's text; ``None``: the service's text for ``close_code``
                (1007, 1008, 1011), else none.

        Returns:
            How many live connections were ended: 0 for a session the emulator knows but that
            has no live connection now.

        Raises:
            KeyError: The emulator does not know ``session_id``, as :meth:`stats`.
        """
        connections = self._select(session_id)
        for connection in connections:
            if close_code is None:
                connection.peer.abort()
            else:
                text = reason if reason is not None else _CLOSE_TEXTS.get(close_code, "")
                await connection.peer.close(close_code, text)
        return len(connections)

    async def send_raw(self, data: bytes, session_id: str | None = None) -> int:
        """Send ``data`` as one binary frame, e.g. a malformed frame to fail one session on purpose.

        The frame bypasses the fault plan and waits for room in the connection's send queue
        (a client that stopped reading holds it up).

        Args:
            data: The frame's payload, sent as is.
            session_id: The session whose live connection gets it; ``None``: every live
                connection.

        Returns:
            How many live connections it was sent to: 0 for a session the emulator knows but
            that has no live connection now.

        Raises:
            KeyError: The emulator does not know ``session_id``, as :meth:`stats`.
        """
        connections = self._select(session_id)
        for connection in connections:
            await connection.peer.send(data, faultable=False)
        return len(connections)

    async def send_malformed(self, session_id: str | None = None) -> int:
        """Send a frame that is not valid JSON (truncated): the client must fail that session only.

        Args:
            session_id: The session whose live connection gets it; ``None``: every live
                connection.

        Returns:
            How many live connections it was sent to, as :meth:`send_raw`.

        Raises:
            KeyError: The emulator does not know ``session_id``, as :meth:`stats`.
        """
        return await self.send_raw(MALFORMED_FRAME, session_id)

    def _select(self, session_id: str | None) -> list[LiveConnection]:
        if session_id is None:
            return list(self._live)
        if session_id not in self.store.sessions:
            # A typo or a stale id must not pass silently for "that session got nothing".
            raise KeyError(session_id)
        return [c for c in self._live if c.record is not None and c.record.id == session_id]

    # ------------------------------------------------------------------ used by connections

    def register(self, connection: LiveConnection) -> None:
        """Count a live connection past setup (internal to the emulator's own modules)."""
        self._live.add(connection)
        self._per_key[connection.key] += 1
        if self._idle.is_set():
            self._idle = trio.Event()

    def unregister(self, connection: LiveConnection) -> None:
        """Forget an ended live connection (internal to the emulator's own modules)."""
        if connection in self._live:
            self._live.discard(connection)
            self._per_key[connection.key] -= 1
            if self._per_key[connection.key] <= 0:
                del self._per_key[connection.key]
            self.messages_sent += connection.sent_messages
            if not self._live and not self._sockets:
                self._idle.set()

    def check_capacity(self, key: str | None) -> None:
        """Refuse a connection over a concurrency limit (internal to the emulator's own modules)."""
        if len(self._live) >= self.config.max_sessions:
            raise closes.Refusal(closes.INTERNAL, closes.TEXT_UNAVAILABLE)
        limit = self.config.concurrent_limit
        if limit is not None and self._per_key[key] >= limit:
            raise closes.Refusal(closes.INTERNAL, closes.TEXT_QUOTA)

    def next_call_id(self) -> str:
        """A fresh function call id (internal to the emulator's own modules)."""
        self._calls += 1
        return f"function-call-{self._calls}"

    # ------------------------------------------------------------------ serving

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one accepted stream (internal: the listener's handler, from :func:`open_emulator`)."""
        self._sockets += 1
        if self._idle.is_set():
            self._idle = trio.Event()
        try:
            await self._serve_stream(stream)
        finally:
            self._sockets -= 1
            if not self._live and not self._sockets:
                self._idle.set()

    async def _serve_stream(self, stream: trio.abc.Stream) -> None:
        await serve_stream(
            stream,
            on_http=self._on_http,
            accepts_upgrade=self._accepts,
            on_websocket=self._on_websocket,
            make_peer=self._make_peer,
            idle_timeout_s=self.config.http_idle_timeout_s,
        )

    async def _on_http(self, request: HttpRequest) -> HttpResponse:
        return await self.rest.handle(request)

    def _accepts(self, request: HttpRequest) -> bool:
        return live_route(request.target, request.headers) is not None

    def _make_peer(
        self, stream: trio.abc.Stream, protocol: ServerProtocol, request: HttpRequest
    ) -> WebSocketPeer:
        self._connections += 1
        faults = self.config.faults
        route = live_route(request.target, request.headers)
        if route is not None and route.credential is not None:
            faults = self.config.faults_by_key.get(route.credential, faults)
        return WebSocketPeer(
            stream,
            protocol,
            max_message_bytes=self.config.max_frame_bytes,
            queue_size=self.config.send_queue_size,
            close_timeout_s=self.config.close_timeout_s,
            faults=FaultPlan(faults, self._connections) if faults.active else None,
        )

    async def _on_websocket(self, request: HttpRequest, peer: WebSocketPeer) -> None:
        route = live_route(request.target, request.headers)
        assert route is not None
        self.store.prune(trio.current_time())
        await LiveConnection(self, route, peer, self._connections).run()


@asynccontextmanager
async def open_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[Emulator]:
    """Serve an emulator for the duration of the block (in a nursery inside the caller's task tree).

    The listener and every connection's tasks live in that nursery, so leaving the block stops
    them all and nothing outlives the test. An exception raised in the block comes out as it is,
    not wrapped in an exception group.

    Args:
        config: What to serve and how (default ``EmulatorConfig()``: loopback, a free port, no
            TLS, no faults).

    Yields:
        The running emulator.

    Raises:
        OSError: The host and port cannot be bound, ``certfile``/``keyfile`` cannot be read
            (``ssl.SSLError`` if they hold no usable certificate and key), or ``ca_out`` cannot
            be written.
    """
    config = config or EmulatorConfig()
    ssl_context, ca_pem = server_context(config)
    listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    if config.port == 0:
        for extra in listeners[1:]:
            await extra.aclose()
        listeners = listeners[:1]
    port = listeners[0].socket.getsockname()[1]
    served: list[trio.abc.Listener[trio.abc.Stream]] = list(listeners)
    if ssl_context is not None:
        served = [trio.SSLListener(listener, ssl_context, https_compatible=True) for listener in listeners]
    emu = Emulator(config, host=config.host, port=port, tls=ssl_context is not None, ca_pem=ca_pem)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, emu.serve_stream, served)
            try:
                yield emu
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The server tasks never raise, so a lone exception is the caller's own: give it back
        # unwrapped (an AssertionError in a test reads as one).
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
