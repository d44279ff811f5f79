"""Reach the server: TCP, then TLS for ``wss``, with failures already in the livemesh error tree.

Both engines open their socket here, so both verify certificates the same way and fail the same
way: a refused certificate or host name is a :class:`~livemesh.errors.CertificateError` at once
(retrying would meet the same certificate), anything else on the way a
:class:`~livemesh.transport.ConnectionLostError`.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import TypeAlias
from urllib.parse import urlsplit

import attrs
import trio

from livemesh.errors import ConfigError
from livemesh.transport.errors import NO_CLOSE_FRAME, ConnectionLostError, certificate_error, redact_url
from livemesh.transport.options import TransportOptions
from livemesh.transport.sockets import SocketIO
from livemesh.transport.tls import TlsState

__all__ = ["Dialer", "Target", "dial", "keep_tls_session"]


@attrs.frozen
class Target:
    """Where a WebSocket URL points: the parts the opening handshake needs."""

    secure: bool
    host: str
    port: int
    resource: str
    """The request target: path and query."""

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> Target:
        """The target of a ``ws://`` or ``wss://`` URL.

        Args:
            url: The WebSocket URL.

        Returns:
            Its parts.

        Raises:
            ConfigError: Not a ``ws``/``wss`` URL with a host (the URL is not echoed whole: its
                query may hold a key).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ConfigError(f"not a WebSocket URL: {redact_url(url)}")
        try:
            port = parts.port
        except ValueError:
            raise ConfigError(f"not a valid WebSocket URL: {redact_url(url)}") from None
        secure = parts.scheme == "wss"
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(
            secure=secure, host=parts.hostname, port=port or (443 if secure else 80), resource=resource
        )


Dialer: TypeAlias = Callable[[str, "Target", TransportOptions], Awaitable[SocketIO]]
"""How an engine gets its connected socket: :func:`dial` (tests hand in a socket pair's end)."""


async def dial(url: str, target: Target, options: TransportOptions) -> SocketIO:
    """A connected socket to ``target``, past the TLS handshake for ``wss``.

    The caller bounds it with ``options.connect_timeout``. A session of the options' TLS cache is
    offered for resumption.

    Args:
        url: The URL (for error messages, redacted).
        target: Its parsed parts.
        options: The socket's read size, the TLS context and session cache.

    Returns:
        The socket, ready for the WebSocket upgrade.

    Raises:
        CertificateError: The server's certificate or host name was refused.
        ConnectionLostError: TCP or TLS failed on the way.
    """
    try:
        stream = await trio.open_tcp_stream(target.host, target.port)
    except OSError as exc:
        raise ConnectionLostError(
            f"could not connect to {redact_url(url)} ({type(exc).__name__})", code=NO_CLOSE_FRAME
        ) from None
    io = SocketIO.adopt(
        stream, read_size=options.receive_buffer_size, write_timeout=options.disconnect_timeout
    )
    if not target.secure:
        return io
    try:
        cache = options.tls_sessions
        context = options.ssl_context or (cache.default_context() if cache else ssl.create_default_context())
        offered = cache.get(context, target.host, target.port) if cache else None
        io.tls = TlsState(context, server_hostname=target.host, session=offered)
        await io.handshake()
    except ssl.SSLCertVerificationError as exc:
        io.close()
        raise certificate_error(exc, url) from None
    except (ssl.SSLError, trio.BrokenResourceError) as exc:
        io.close()
        raise ConnectionLostError(
            f"TLS handshake with {redact_url(url)} failed ({type(exc).__name__})", code=NO_CLOSE_FRAME
        ) from None
    except BaseException:
        io.close()
        raise
    return io


def keep_tls_session(io: SocketIO, target: Target, options: TransportOptions) -> None:
    """Keep the connection's TLS session for the next connection's resumption, once its TLS 1.3
    ticket arrived (right after the server's handshake, so by the time the upgrade's answer did).

    Only a full handshake's session is taken: reading ``session`` copies it through DER (~200 us,
    the peer's certificate parsed again), a fifth of a resumed handshake on every rotation; a
    resumed connection's ticket stays usable (stateless tickets, as the service and OpenSSL
    issue). A server that refused a reused ticket made a full handshake, whose session is kept.

    Args:
        io: The connection's socket.
        target: Where it goes.
        options: The options whose cache keeps the session.
    """
    tls, cache = io.tls, options.tls_sessions
    if tls is None or cache is None or tls.ssl_object.session_reused:
        return
    cache.put(tls.ssl_object.context, target.host, target.port, tls.ssl_object.session)
