"""Open and close one Live API WebSocket, and translate its failures into the livemesh error tree.

The session actor talks to a :class:`Connection`: send bytes, receive bytes, ping, close. That
seam is deliberately small so a second WebSocket engine (``websockets``, a raw wsproto one) can be
slotted in later; :func:`open_connection` is the trio-websocket implementation.

Everything below this module speaks trio-websocket; everything above it speaks livemesh errors
(STYLE.md habit 9, httpcore's ``map_exceptions``):

* a close the session may recover from by resuming (1006 no close frame, 1011 internal error,
  1001/1000 server-side ends, network errors, keepalive timeouts) is a :class:`ConnectionLostError`;
* 1007/1008 are fatal :class:`~livemesh.errors.ServiceClosedError` (the session maps it to
  :class:`~livemesh.errors.SetupRejectedError` when it comes before ``setupComplete``), or
  :class:`~livemesh.errors.AuthError` when the text says the credentials are bad;
* a close whose text mentions quota, billing, credits or RESOURCE_EXHAUSTED is a
  :class:`~livemesh.errors.QuotaError` (back off, don't hammer; LIVE_API_NOTES 1.9).

No message built here ever contains a URL query string or a header value, so an API key passed
either way cannot leak into an exception.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, Literal, Protocol
from urllib.parse import urlsplit

import attrs
import trio
import trio_websocket

from livemesh.errors import (
    AuthError,
    ContextWindowError,
    QuotaError,
    ServiceClosedError,
    SessionError,
    SetupRejectedError,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "RECEIVE_BUFFER_SIZE",
    "CloseInfo",
    "Connection",
    "ConnectionLostError",
    "TlsSessionCache",
    "TransportOptions",
    "classify_close",
    "close_error",
    "keepalive",
    "open_connection",
    "redact_url",
]

log = logging.getLogger("livemesh.transport")

RECEIVE_BUFFER_SIZE: Final = 64 * 1024
"""Bytes read from the socket per call: audio frames are tens of KiB, 4 KiB (the default) thrashes."""

DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""Largest server frame accepted (matches the codec's bound)."""

NO_CLOSE_FRAME: Final = 1006
"""RFC 6455: the connection ended without a close frame (never sent on the wire)."""


class ConnectionLostError(SessionError):
    """The connection ended in a way a resume can recover from (1006, 1011, network, keepalive).

    The session actor catches it and reconnects; it only reaches users wrapped in
    :class:`~livemesh.errors.ReconnectError` when retries are exhausted.
    """


# ----------------------------------------------------------------------------- close codes

_QUOTA_WORDS: Final = ("quota", "billing", "credits", "resource_exhausted", "resource exhausted", "429")
_CONTEXT_WINDOW_WORDS: Final = ("exceeds the maximum number of tokens", "context window")
"""A 1007 with these words: the context outgrew the model's window (the Live API documents no text
for it; the emulator uses the Gemini API's wording for a request over the token limit)."""
_AUTH_WORDS: Final = (
    "api key",
    "api_key",
    "unregistered callers",
    "permission",
    "unauthenticated",
    "token",
    "credential",
)


@attrs.frozen
class CloseInfo:
    """How a connection ended: the close code and reason, or 1006 when no close frame came."""

    code: int = NO_CLOSE_FRAME
    reason: str = ""


def classify_close(code: int, reason: str | None) -> str:
    """``"retryable"``, ``"quota"``, ``"auth"`` or ``"fatal"`` for a close code and its text.

    1007 (invalid argument) and 1008 (policy / not found) are fatal: resending the same setup gets
    the same answer. 1011 is the service's generic internal error and the goAway deadline; it is
    retryable unless its text blames quota or billing. 1006 means the network dropped.
    """
    text = (reason or "").lower()
    if any(word in text for word in _QUOTA_WORDS):
        return "quota"
    if _is_context_window(code, text):
        return "fatal"  # before the auth words: its text speaks of tokens, not credentials
    if code in (1007, 1008):
        return "auth" if any(word in text for word in _AUTH_WORDS) else "fatal"
    if code in (1002, 1003, 1009, 1010):
        return "fatal"  # protocol misuse on one side: resuming would repeat it
    return "retryable"  # 1000, 1001, 1005, 1006, 1011, 1012-1014, private codes


def _is_context_window(code: int, lowered_reason: str) -> bool:
    return code == 1007 and any(word in lowered_reason for word in _CONTEXT_WINDOW_WORDS)


def close_error(info: CloseInfo, *, during_setup: bool = False) -> SessionError:
    """The livemesh error for a close, so callers branch on type rather than on numbers.

    A fatal close is a :class:`SetupRejectedError` ``during_setup`` (before ``setupComplete``)
    and a :class:`ServiceClosedError` after it: an established session's setup is not to blame.
    """
    kind = classify_close(info.code, info.reason)
    text = f"connection closed with {info.code}" + (f": {info.reason}" if info.reason else "")
    if kind == "quota":
        return QuotaError(text, code=info.code, reason=info.reason)
    if kind == "auth":
        return AuthError(text, code=info.code, reason=info.reason)
    if kind == "fatal":
        if _is_context_window(info.code, info.reason.lower()):
            text = (
                f"the session's context outgrew the model's context window ({text}); "
                "set context_window_compression"
            )
            return ContextWindowError(text, code=info.code, reason=info.reason)
        fatal = SetupRejectedError if during_setup else ServiceClosedError
        return fatal(text, code=info.code, reason=info.reason)
    if during_setup and info.code in (1000, 1001):
        # Closed politely before setupComplete: the service refused without saying why; a retry
        # may work (e.g. a resume attempted while the old socket was still open).
        return ConnectionLostError(f"closed during setup ({info.code})", code=info.code, reason=info.reason)
    return ConnectionLostError(text, code=info.code, reason=info.reason)


def redact_url(url: str) -> str:
    """``scheme://host/path`` without query or credentials, safe for logs and exceptions."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


# ----------------------------------------------------------------------------- the seam


class Connection(Protocol):
    """What the session needs from a WebSocket engine; implementations raise livemesh errors only."""

    @property
    def close_info(self) -> CloseInfo | None:
        """How the connection ended, once it has (``None`` while it is open)."""
        ...

    async def send(self, data: bytes) -> None:
        """Send one JSON message as a text frame (what the official SDK sends)."""
        ...

    async def receive(self) -> bytes | str:
        """The next server frame; raises a livemesh :class:`SessionError` once the connection ends."""
        ...

    @property
    def arrived_after(self) -> float | None:
        """A time no later than the arrival of the frame :meth:`receive` returned last (wake-up
        latency aside), or ``None`` if the engine cannot tell. The session dates resumption
        handles with it: a frame *read* late (the reader was busy) may have arrived long before."""
        ...

    async def ping(self) -> None:
        """Send a ping and wait for its pong (raises like :meth:`receive` if the connection ends)."""
        ...

    @property
    def received_index(self) -> int:
        """0-based arrival number of the frame :meth:`receive` returned last (-1: unknown)."""
        ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and wait (bounded) for the peer's; idempotent, never raises."""
        ...


class TlsSessionCache:
    """TLS state worth keeping between one session's connections: the default verifying context
    (loading the system's CA store costs milliseconds) and the resumable TLS session of the newest
    full handshake per ``host:port`` (the sans-I/O engine keeps it while resumptions succeed), so a
    reconnect (every rotation) resumes TLS instead of a full handshake: about a quarter of the
    client's handshake CPU (no certificate chain to verify; ~0.3 vs ~1.3 ms measured with TLS 1.3,
    ``bench/README.md``) and less for the server. The service, like the emulator, issues TLS 1.3
    tickets.

    Each :class:`TransportOptions` gets its own cache unless one is passed (sessions belong to the
    ``SSLContext`` that made them, and a ticket is a secret: it is never shown in a repr). Bounded:
    at most ``max_hosts`` entries, the oldest dropped first. Not thread-safe (one trio run).
    """

    __slots__ = ("_context", "_sessions", "max_hosts")

    def __init__(self, max_hosts: int = 16) -> None:
        self.max_hosts = max(1, max_hosts)
        self._context: ssl.SSLContext | None = None
        self._sessions: dict[tuple[str, int], tuple[ssl.SSLContext, ssl.SSLSession]] = {}

    def __repr__(self) -> str:
        return f"<TlsSessionCache hosts={len(self._sessions)}>"

    def default_context(self) -> ssl.SSLContext:
        """The system's verifying context, made once per cache."""
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def get(self, context: ssl.SSLContext, host: str, port: int) -> ssl.SSLSession | None:
        """The session to offer when connecting to ``host:port`` with ``context`` (None: none yet)."""
        entry = self._sessions.get((host, port))
        if entry is None or entry[0] is not context:
            return None
        return entry[1]

    def put(self, context: ssl.SSLContext, host: str, port: int, session: ssl.SSLSession | None) -> None:
        """Keep ``session`` if it can be resumed (TLS 1.3: once a ticket arrived)."""
        if session is None or not session.has_ticket:
            return
        key = (host, port)
        self._sessions.pop(key, None)
        self._sessions[key] = (context, session)
        while len(self._sessions) > self.max_hosts:
            del self._sessions[next(iter(self._sessions))]


@attrs.frozen(kw_only=True)
class TransportOptions:
    """Knobs of the WebSocket engine. Defaults suit audio sessions against the real service."""

    connect_timeout: float = 30.0
    disconnect_timeout: float = 5.0
    receive_buffer_size: int = RECEIVE_BUFFER_SIZE
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    message_queue_size: int = 4
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, repr=False)
    engine: Literal["sansio", "trio-websocket"] = attrs.field(
        default="sansio", validator=attrs.validators.in_(("sansio", "trio-websocket"))
    )
    """``"sansio"`` (default): websockets' sans-I/O protocol driven on the trio stream, no task per
    connection (:mod:`livemesh.transport_sansio`): ~27 % less client CPU per message than
    ``"trio-websocket"`` (bench/engine_compare.py), which stays available as the fallback."""
    tls_sessions: TlsSessionCache | None = attrs.field(factory=TlsSessionCache, repr=False, eq=False)
    """TLS resumption and the default context across this options' connections (``"sansio"``
    engine); ``None`` makes every connection a full handshake with a fresh context."""


class _TrioWebsocketConnection:
    """:class:`Connection` over a ``trio_websocket.WebSocketConnection``."""

    __slots__ = ("_disconnect_timeout", "_ws")

    arrived_after = None
    """trio-websocket's reader task reads ahead into its own queue: arrival times are not known."""
    received_index = -1

    def __init__(self, ws: trio_websocket.WebSocketConnection, *, disconnect_timeout: float) -> None:
        self._ws = ws
        self._disconnect_timeout = disconnect_timeout

    def __repr__(self) -> str:
        return f"<Connection closed={self.close_info!r}>"

    @property
    def close_info(self) -> CloseInfo | None:
        closed = self._ws.closed
        if closed is None:
            return None
        return CloseInfo(code=closed.code, reason=closed.reason or "")

    def _lost(self, exc: trio_websocket.ConnectionClosed) -> SessionError:
        reason = exc.reason
        if reason is None:
            return close_error(CloseInfo())
        return close_error(CloseInfo(code=reason.code, reason=reason.reason or ""))

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send_message(data.decode())
        except trio_websocket.ConnectionClosed as exc:
            raise self._lost(exc) from None
        except (OSError, trio.BrokenResourceError) as exc:
            raise ConnectionLostError(f"send failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None

    async def receive(self) -> bytes | str:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._lost(exc) from None

    async def ping(self) -> None:
        try:
            await self._ws.ping()
        except trio_websocket.ConnectionClosed as exc:
            raise self._lost(exc) from None
        except (OSError, trio.BrokenResourceError) as exc:
            raise ConnectionLostError(f"ping failed: {type(exc).__name__}", code=NO_CLOSE_FRAME) from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        # Bounded: a peer that never answers our close frame must not hang a reconnect. On timeout
        # (or cancellation) trio-websocket's own context manager aborts the stream.
        with trio.move_on_after(self._disconnect_timeout) as scope:
            scope.shield = True
            try:
                await self._ws.aclose(code, reason or None)
            except (OSError, trio.BrokenResourceError, trio_websocket.ConnectionClosed):
                pass


def rejection_error(status: int, url: str) -> SessionError:
    """The livemesh error for an upgrade refused with HTTP ``status`` (every engine maps it so)."""
    text = f"{redact_url(url)} refused the WebSocket upgrade with HTTP {status}"
    if status in (401, 403):
        return AuthError(text, code=status, reason=f"HTTP {status}")
    if status == 429:
        return QuotaError(text, code=status, reason=f"HTTP {status}")
    if status in (400, 404):
        return SetupRejectedError(text, code=status, reason=f"HTTP {status}")
    return ConnectionLostError(text, code=status, reason=f"HTTP {status}")


def _handshake_error(exc: trio_websocket.HandshakeError, url: str) -> SessionError:
    where = redact_url(url)
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return rejection_error(exc.status_code, url)
    if isinstance(exc, trio_websocket.ConnectionTimeout):
        return ConnectionLostError(f"connecting to {where} timed out", code=NO_CLOSE_FRAME)
    cause = exc.__cause__ or exc.__context__
    detail = type(cause).__name__ if cause is not None else type(exc).__name__
    return ConnectionLostError(f"could not connect to {where} ({detail})", code=NO_CLOSE_FRAME)


def open_connection(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    options: TransportOptions | None = None,
) -> AbstractAsyncContextManager[Connection]:
    """Open a WebSocket to ``url`` with ``headers``; close it (bounded) when the block ends::

        async with open_connection(url, headers, options=options) as conn: ...

    Handshake and network failures are raised as livemesh errors: :class:`ConnectionLostError`
    when retrying may help, ``AuthError`` / ``QuotaError`` / ``SetupRejectedError`` when it will
    not. The engine is ``options.engine``; its context manager is returned as it is (not wrapped
    in another generator that every open connection would carry).
    """
    opts = options or TransportOptions()
    if opts.engine == "sansio":
        # Imported here: transport_sansio imports this module (and websockets lazily).
        from livemesh.transport_sansio import open_connection as open_sansio

        return open_sansio(url, headers, options=opts)
    return _open_trio_websocket(url, headers, opts)


@asynccontextmanager
async def _open_trio_websocket(
    url: str, headers: Sequence[tuple[str, str]], opts: TransportOptions
) -> AsyncIterator[Connection]:
    """The trio-websocket engine: its reader task lives in a nursery inside this block
    (``open_websocket``), so nothing outlives it."""
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    ssl_context: ssl.SSLContext | None = opts.ssl_context
    if ssl_context is None and url.startswith("wss:"):
        ssl_context = ssl.create_default_context()
    cm = trio_websocket.open_websocket_url(
        url,
        ssl_context,
        extra_headers=extra,
        message_queue_size=opts.message_queue_size,
        max_message_size=opts.max_message_bytes,
        connect_timeout=opts.connect_timeout,
        disconnect_timeout=opts.disconnect_timeout,
        receive_buffer_size=opts.receive_buffer_size,
    )
    entered = False
    try:
        async with cm as ws:
            entered = True
            yield _TrioWebsocketConnection(ws, disconnect_timeout=opts.disconnect_timeout)
    except trio_websocket.HandshakeError as exc:
        if entered and not isinstance(exc, trio_websocket.DisconnectionTimeout):
            raise
        if entered:
            return  # the peer did not answer our close frame in time: the socket is gone anyway
        raise _handshake_error(exc, url) from None
    except OSError as exc:
        if entered:
            raise
        raise ConnectionLostError(
            f"could not connect to {redact_url(url)} ({type(exc).__name__})", code=NO_CLOSE_FRAME
        ) from None


# ----------------------------------------------------------------------------- keepalive


async def keepalive(
    conn: Connection,
    *,
    interval: float,
    pong_timeout: float,
    last_activity: Callable[[], float],
) -> None:
    """Prove the connection is alive, tolerating slow pongs; raise when it is dead.

    Any frame from the server counts as life (``last_activity`` returns its ``trio.current_time``),
    so a busy connection never pings. An idle one pings every ``interval`` seconds and waits up to
    ``pong_timeout`` for the pong: the service's pongs were seen taking 8-30 s (LIVE_API_NOTES 2.15), so
    the default timeout is generous, unlike ``websockets``' 20 s that killed such sessions. Runs
    until cancelled; raises :class:`ConnectionLostError` when neither traffic nor pong arrives.
    """
    last_pong = trio.current_time()

    def last_proof() -> float:
        return max(last_activity(), last_pong)

    while True:
        await trio.sleep_until(last_proof() + interval)
        if trio.current_time() - last_proof() < interval:
            continue
        with trio.move_on_after(pong_timeout):
            await conn.ping()
            last_pong = trio.current_time()
            continue
        if trio.current_time() - last_activity() < pong_timeout:
            continue  # traffic arrived while the pong was late: alive
        log.warning("keepalive: no pong and no traffic for %.1f s", pong_timeout)
        raise ConnectionLostError(f"keepalive: no pong within {pong_timeout:g} s", code=1011)
