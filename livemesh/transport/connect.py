"""Open a connection on the engine the options name: :func:`open_connection`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from livemesh.transport.options import TransportOptions
from livemesh.transport.protocol import Connection
from livemesh.transport.sansio_engine import open_sansio_connection
from livemesh.transport.trio_websocket_engine import open_trio_websocket_connection

__all__ = ["open_connection"]


def open_connection(
    url: str,
    headers: Sequence[tuple[str, str]] = (),
    *,
    options: TransportOptions | None = None,
) -> AbstractAsyncContextManager[Connection]:
    """Open a WebSocket to ``url`` with ``headers``; close it (bounded) when the block ends::

        async with open_connection(url, headers, options=options) as conn: ...

    ``wss`` uses ``options.ssl_context`` (default: the system's verifying context, host names
    checked); ``connect_timeout`` bounds TCP, TLS and the upgrade together. The engine is
    ``options.engine``; its context manager is returned as it is (not wrapped in another one
    that every open connection would carry).

    Args:
        url: The ``ws://`` or ``wss://`` URL.
        headers: Extra request headers (credentials: never logged, redacted from every close
            reason the peer sends back).
        options: The transport options (default ``TransportOptions()``).

    Returns:
        An async context manager yielding the open :class:`Connection`.

    Raises:
        ConfigError: ``url`` is not a WebSocket URL (raised when the block is entered).
        CertificateError: The server's certificate or host name was refused (never retried).
        AuthError: The upgrade was refused with HTTP 401/403.
        QuotaError: The upgrade was refused with HTTP 429.
        SetupRejectedError: The upgrade was refused with HTTP 400/404.
        ConnectionLostError: Anything else on the way (retrying may help).
    """
    opts = options or TransportOptions()
    if opts.engine == "sansio":
        return open_sansio_connection(url, headers, opts)
    return open_trio_websocket_connection(url, headers, opts)
