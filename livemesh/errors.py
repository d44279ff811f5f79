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


class SessionError(LivemeshError):
    """A live session failed. ``code``/``reason`` are the WebSocket close code and text, if any."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class SetupRejectedError(SessionError):
    """The service refused the session's setup (1007 invalid argument, 1008 not found/policy)."""


class AuthError(SessionError):
    """The credentials were refused (bad key, expired or used ephemeral token)."""


class QuotaError(SessionError):
    """The service refused for quota, billing or concurrency reasons (back off, don't hammer)."""


class SessionClosedError(SessionError):
    """The session is closed: no more sending or receiving."""


class ReconnectError(SessionError):
    """Reconnecting failed for good: retries exhausted, or the resumption handle expired."""
