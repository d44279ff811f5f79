"""One error tree for livemesh, split by blame (as h11 does).

* ``LocalProtocolError`` / ``ConfigError``: the caller misused livemesh; raised at the call,
  before anything is sent.
* ``RemoteProtocolError`` / ``DecodeError``: the peer sent something we cannot accept.
* ``SessionError`` and its children: a live session failed or was refused by the service.

Every error carries a human-readable reason. None of them ever contains a secret (API key,
bearer token, ephemeral token): auth objects redact themselves and errors only hold reasons.
"""

from __future__ import annotations


class LivemeshError(Exception):
    """Base class of every error livemesh raises on purpose."""


class ConfigError(LivemeshError, ValueError):
    """A bad user argument: wrong type, conflicting options, missing credentials."""


class LocalProtocolError(LivemeshError):
    """livemesh was asked to do something the protocol forbids in the current state."""


class EncodeError(LocalProtocolError, ValueError):
    """A message could not be encoded (a value JSON cannot carry); raised before sending."""


class DecodeError(LivemeshError, ValueError):
    """A frame could not be decoded into a Live API message.

    ``reason`` names the cause (invalid JSON, wrong type, two oneof fields, ...) and ``path`` where
    in the frame it was found, e.g. ``("serverContent", "modelTurn", "parts", 0, "thought")``.
    """

    def __init__(self, reason: str, path: tuple[str | int, ...] = ()) -> None:
        self.reason = reason
        self.path = path
        where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        super().__init__(f"{where}: {reason}" if path else reason)

    def at(self, key: str | int) -> DecodeError:
        """The same error one level further out (``key`` is a field name or a list index)."""
        return DecodeError(self.reason, (key, *self.path))


class RemoteProtocolError(LivemeshError):
    """The server broke the protocol (a malformed frame, a message out of order)."""


class ToolCallLimitError(RemoteProtocolError):
    """A ``toolCall`` asked for more calls than the session accepts at once.

    The caps (``SessionConfig.max_calls_per_tool_call`` and ``max_running_tools``) bound the memory
    and tasks one server message can claim, so one hostile or broken peer cannot stall the
    other sessions of a pool."""


class SessionError(LivemeshError):
    """A live session failed. ``code``/``reason`` are the WebSocket close code and text, if any."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class SetupRejectedError(SessionError):
    """The service refused the session's setup before ``setupComplete`` (1007 invalid argument,
    1008 not found or policy, an HTTP 400/404 at the upgrade). Resending the same setup gets the
    same answer, so it is never retried."""


class ServiceClosedError(SessionError):
    """The service ended an established session with a close that resuming would only repeat
    (1007 or 1008 after ``setupComplete``, 1002 protocol error, 1009 message too big, ...).

    Raised instead of :class:`SetupRejectedError` once the setup was accepted: the setup is not
    to blame. ``code`` and ``reason`` are the service's close code and text."""


class ContextWindowError(ServiceClosedError):
    """The session's context outgrew the model's context window and the service ended it.

    Set ``context_window_compression`` on the session to have the service drop the oldest turns
    instead (compressed sessions are unlimited)."""


class CertificateError(SessionError):
    """The server's TLS certificate was refused: untrusted, expired, or not issued for the host.

    Never retried: the same certificate fails the same way. Trust a private CA with
    ``TransportOptions(ssl_context=...)`` or ``SSL_CERT_FILE``."""


class AuthError(SessionError):
    """The credentials were refused (bad key, expired or used ephemeral token)."""


class QuotaError(SessionError):
    """The service refused for quota, billing or concurrency reasons (back off, don't hammer)."""


class SessionClosedError(SessionError):
    """The session is closed: no more sending or receiving."""


class ReconnectError(SessionError):
    """Reconnecting failed for good: retries exhausted, or the resumption handle expired."""
