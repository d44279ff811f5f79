"""One Live API WebSocket: open it, send and receive, prove what the server consumed, close it.

The session talks to a :class:`Connection` (:mod:`livemesh.transport.protocol`), opened with
:func:`open_connection` on one of two engines at parity (``TransportOptions.engine``): websockets'
sans-I/O protocol (``"sansio"``, the default: no task per connection, less CPU per message) or
trio-websocket (``"trio-websocket"``). Both run over the same socket and TLS layer
(:mod:`~livemesh.transport.sockets`, :mod:`~livemesh.transport.tls`: ``ssl.SSLObject`` over memory
BIOs on a socket driven through trio's public API), which the emulator's server uses too, and
both raise the same livemesh errors (:mod:`~livemesh.transport.errors`).

Modules, in the direction data flows: ``errors`` and ``options`` (no I/O), ``tls`` (TLS as a
state machine), ``sockets`` (the socket, plain or TLS), ``streams`` (it as a trio stream),
``dial`` (TCP and TLS to a URL's host), ``liveness`` and ``fences`` (rules both engines share),
``sansio_engine`` and ``trio_websocket_engine``, ``connect`` (:func:`open_connection`).
"""

from livemesh.transport.connect import open_connection as open_connection
from livemesh.transport.errors import NO_CLOSE_FRAME as NO_CLOSE_FRAME
from livemesh.transport.errors import CloseInfo as CloseInfo
from livemesh.transport.errors import ConnectionLostError as ConnectionLostError
from livemesh.transport.errors import Redactor as Redactor
from livemesh.transport.errors import classify_close as classify_close
from livemesh.transport.errors import close_error as close_error
from livemesh.transport.errors import redact_url as redact_url
from livemesh.transport.errors import rejection_error as rejection_error
from livemesh.transport.options import DEFAULT_MAX_MESSAGE_BYTES as DEFAULT_MAX_MESSAGE_BYTES
from livemesh.transport.options import ENGINES as ENGINES
from livemesh.transport.options import RECEIVE_BUFFER_SIZE as RECEIVE_BUFFER_SIZE
from livemesh.transport.options import Engine as Engine
from livemesh.transport.options import TlsSessionCache as TlsSessionCache
from livemesh.transport.options import TransportOptions as TransportOptions
from livemesh.transport.protocol import Connection as Connection

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ENGINES",
    "NO_CLOSE_FRAME",
    "RECEIVE_BUFFER_SIZE",
    "CloseInfo",
    "Connection",
    "ConnectionLostError",
    "Engine",
    "Redactor",
    "TlsSessionCache",
    "TransportOptions",
    "classify_close",
    "close_error",
    "open_connection",
    "redact_url",
    "rejection_error",
]
