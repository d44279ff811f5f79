"""The knobs of a connection: :class:`TransportOptions`, and the TLS state kept between connections."""

from __future__ import annotations

import ssl
from typing import Final, Literal

import attrs

from livemesh import _validators as check

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ENGINES",
    "RECEIVE_BUFFER_SIZE",
    "Engine",
    "TlsSessionCache",
    "TransportOptions",
]

RECEIVE_BUFFER_SIZE: Final = 64 * 1024
"""Bytes read from the socket per call: audio frames are tens of KiB, 4 KiB (the default) thrashes."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""Largest server frame accepted (matches the codec's bound)."""

Engine = Literal["sansio", "trio-websocket"]
"""The WebSocket engines :func:`livemesh.transport.open_connection` offers."""

ENGINES: Final[tuple[Engine, ...]] = ("sansio", "trio-websocket")
"""Every :data:`Engine`, the values :attr:`TransportOptions.engine` accepts."""


class TlsSessionCache:
    """TLS state worth keeping between one session's connections: the default verifying context
    (loading the system's CA store costs milliseconds) and the resumable TLS session of the newest
    full handshake per ``host:port``, so a reconnect (every rotation) resumes TLS instead of a full
    handshake: about a quarter of the client's handshake CPU (no certificate chain to verify; ~0.3
    vs ~1.3 ms measured with TLS 1.3, ``bench/README.md``) and less for the server. The service,
    like the emulator, issues TLS 1.3 tickets.

    Each :class:`TransportOptions` gets its own cache unless one is passed (sessions belong to the
    ``SSLContext`` that made them, and a ticket is a secret: it is never shown in a repr). Bounded:
    at most ``max_hosts`` entries, the oldest dropped first. Not thread-safe (one trio run).

    Raises:
        ConfigError: ``max_hosts`` is not an int >= 1.
    """

    __slots__ = ("_context", "_sessions", "max_hosts")

    def __init__(self, max_hosts: int = 16) -> None:
        """Start empty: the context is made on first use, sessions kept as handshakes complete.

        Args:
            max_hosts: How many ``host:port`` entries to keep (at least one).

        Raises:
            ConfigError: ``max_hosts`` is not an int >= 1 (a cache that keeps nothing would
                silently make every reconnect a full handshake: pass ``tls_sessions=None`` to
                :class:`TransportOptions` for that).
        """
        check.check_int_at_least("TlsSessionCache.max_hosts", max_hosts, 1)
        self.max_hosts = max_hosts
        """How many ``host:port`` entries are kept; a new host beyond it drops the oldest."""
        self._context: ssl.SSLContext | None = None
        self._sessions: dict[tuple[str, int], tuple[ssl.SSLContext, ssl.SSLSession]] = {}

    def __repr__(self) -> str:
        return f"<TlsSessionCache hosts={len(self._sessions)}>"

    def default_context(self) -> ssl.SSLContext:
        """The system's verifying context, made once per cache.

        Returns:
            ``ssl.create_default_context()``: certificates and host names verified.
        """
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def get(self, context: ssl.SSLContext, host: str, port: int) -> ssl.SSLSession | None:
        """The session to offer when connecting to ``host:port`` with ``context``.

        Args:
            context: The context the new connection uses (a session only resumes with its own).
            host: The server's host name.
            port: The server's port.

        Returns:
            The session to offer, or ``None`` when there is none yet.
        """
        entry = self._sessions.get((host, port))
        if entry is None or entry[0] is not context:
            return None
        return entry[1]

    def put(self, context: ssl.SSLContext, host: str, port: int, session: ssl.SSLSession | None) -> None:
        """Keep ``session`` if it can be resumed (TLS 1.3: once a ticket arrived).

        Args:
            context: The context that made the session.
            host: The server's host name.
            port: The server's port.
            session: The connection's TLS session (ignored without a ticket).
        """
        if session is None or not session.has_ticket:
            return
        key = (host, port)
        self._sessions.pop(key, None)
        self._sessions[key] = (context, session)
        while len(self._sessions) > self.max_hosts:
            del self._sessions[next(iter(self._sessions))]


@attrs.frozen(kw_only=True)
class TransportOptions:
    """Knobs of the WebSocket engine, passed as ``SessionConfig(transport=...)``.

    The defaults suit audio sessions against the real service; change them to trust another CA
    (a proxy, the emulator with ``tls=True``), to pick the engine, or to bound memory and waits
    differently. The options travel with the config: every connection of a session, and of every
    session given the same config, uses them and shares their TLS resumption cache.

    Raises:
        ConfigError: A timeout is not a positive number of seconds (``inf``: no bound), a size
            is not an int >= 1, ``engine`` is not one of :data:`ENGINES`, or ``ssl_context`` or
            ``tls_sessions`` is of another type. The message names the field and the value.
    """

    connect_timeout: float = attrs.field(default=30.0, validator=check.positive)
    """Seconds for TCP, TLS and the WebSocket upgrade together: one bound for the whole dial, so
    a slow step cannot add its own timeout to the others'."""
    disconnect_timeout: float = attrs.field(default=5.0, validator=check.positive)
    """Seconds a close waits for the peer's close frame (and a whole write for a stuck peer), so a
    peer that stopped reading cannot hold a task forever."""
    receive_buffer_size: int = attrs.field(default=RECEIVE_BUFFER_SIZE, validator=check.at_least(1))
    """Bytes asked of the socket per read: audio frames are tens of KiB, so small reads would
    cost many calls per frame."""
    max_message_bytes: int = attrs.field(default=DEFAULT_MAX_MESSAGE_BYTES, validator=check.at_least(1))
    """Largest server message accepted; a bigger one fails the connection with 1009 (a bound on
    memory a misbehaving server can make the client use)."""
    message_queue_size: int = attrs.field(default=4, validator=check.at_least(1))
    """Messages read ahead of the consumer before reading stops (backpressure: a slow consumer
    slows the socket rather than growing a queue). At least 1 with either engine: a message is
    only known to be complete once it was read."""
    ssl_context: ssl.SSLContext | None = attrs.field(
        default=None, repr=False, validator=attrs.validators.optional(check.instance_of(ssl.SSLContext))
    )
    """The context for ``wss`` (default: the system's verifying context); pass one to trust
    another CA, such as the emulator's ``ca_pem``. Host names are checked whenever the context
    says so (``check_hostname``, on in every default context)."""
    engine: Engine = attrs.field(default="sansio", validator=check.one_of(ENGINES))
    """``"sansio"`` (default): websockets' sans-I/O protocol driven on the socket, no task per
    connection, less client CPU per message (``bench/engine_compare.py``); ``"trio-websocket"``:
    trio-websocket's connection, a reader task per connection. Both implement the whole
    :class:`~livemesh.transport.Connection` protocol over the same socket and TLS layer."""
    tls_sessions: TlsSessionCache | None = attrs.field(
        factory=TlsSessionCache,
        repr=False,
        eq=False,
        validator=attrs.validators.optional(check.instance_of(TlsSessionCache)),
    )
    """TLS resumption and the default context across this options' connections; ``None`` makes
    every connection a full handshake with a fresh context."""
