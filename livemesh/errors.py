"""One error tree for livemesh, split by blame (as h11 does).

```text
LivemeshError
├── ConfigError                  you passed a bad setting; raised at the call, before anything is sent
├── LocalProtocolError           you asked for something the protocol forbids now
│   └── EncodeError              a value JSON cannot carry
├── DecodeError                  a frame is not a Live API message
├── RemoteProtocolError          the server broke the protocol
│   └── ToolCallLimitError       one toolCall asked for more calls than the session accepts
└── SessionError                 a live session failed (code/reason: the close code and text)
    ├── SetupRejectedError       the setup was refused before setupComplete (never retried)
    ├── ServiceClosedError       an established session was closed for good (1007, 1008, ...)
    │   └── ContextWindowError   the context outgrew the model's window
    ├── CertificateError         the server's TLS certificate was refused
    ├── AuthError                the credentials were refused
    ├── QuotaError               quota, billing or concurrency: back off
    ├── SessionClosedError       the session is closed
    └── ReconnectError           reconnecting failed for good
```

Other layers hang their own errors on this tree: ``livemesh.ConnectionLostError`` (a
``SessionError`` the session recovers from by itself), the pool's ``PoolClosedError``,
``AdmissionTimeoutError``, ``RestartIntensityError`` and ``SessionLimitError``, ``RestError``
for the REST calls, and ``livemesh.redis.RedisError`` and its children.

Every error carries a human-readable reason. None of them ever contains a secret (API key,
bearer token, ephemeral token, resumption handle): credentials redact themselves and errors
only hold reasons.
"""

from __future__ import annotations


class LivemeshError(Exception):
    """Base class of every error livemesh raises on purpose."""


class ConfigError(LivemeshError, ValueError):
    """A bad user argument: wrong type, conflicting options, missing credentials.

    Raised by the call that received the argument, before anything is sent, so a mistake never
    costs a connection. Also a ``ValueError``, for code that already catches that.
    """


class LocalProtocolError(LivemeshError):
    """livemesh was asked to do something the protocol forbids in the current state.

    The caller is to blame (h11's split): fix the code rather than retry.
    """


class EncodeError(LocalProtocolError, ValueError):
    """A message could not be encoded (a value JSON cannot carry); raised before sending."""


class DecodeError(LivemeshError, ValueError):
    """A frame could not be decoded into a Live API message.

    A session that receives such a frame fails on its own; the other sessions of a pool go on.

    Attributes:
        reason: The cause (invalid JSON, wrong type, two oneof fields, ...).
        path: Where in the frame it was found, outermost first, e.g.
            ``("serverContent", "modelTurn", "parts", 0, "thought")``.
    """

    def __init__(self, reason: str, path: tuple[str | int, ...] = ()) -> None:
        """Describe a decoding failure.

        Args:
            reason: The cause, in words.
            path: Field names and list indexes leading to the bad value, outermost first.
        """
        self.reason = reason
        self.path = path
        where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        super().__init__(f"{where}: {reason}" if path else reason)

    def at(self, key: str | int) -> DecodeError:
        """The same error one level further out, for a decoder returning from a nested value.

        Args:
            key: The field name or list index of the value that failed.

        Returns:
            A new error whose ``path`` starts with ``key``.
        """
        return DecodeError(self.reason, (key, *self.path))


class RemoteProtocolError(LivemeshError):
    """The server broke the protocol (a malformed frame, a message out of order).

    The peer is to blame; the session it happened on fails, nothing else does.
    """


class ToolCallLimitError(RemoteProtocolError):
    """A ``toolCall`` asked for more calls than the session accepts at once.

    The caps (``SessionConfig.max_calls_per_tool_call`` and ``max_running_tools``) bound the memory
    and tasks one server message can claim, so one hostile or broken peer cannot stall the
    other sessions of a pool."""


class SessionError(LivemeshError):
    """A live session failed: the base of every error about one session's life.

    Catch it around ``open_session`` or ``pool.session`` to handle any failure of the
    conversation; catch a subclass to branch on the cause.

    Attributes:
        code: The WebSocket close code that ended the session, if one did (e.g. 1008).
        reason: The close text the service sent, if any (never a secret).
    """

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None) -> None:
        """Describe a session failure.

        Args:
            message: What happened, for people.
            code: The WebSocket close code, if a close caused it.
            reason: The close text, if any.
        """
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
    """The credentials were refused (bad key, expired or used ephemeral token).

    Never retried: new credentials are needed.
    """


class QuotaError(SessionError):
    """The service refused for quota, billing or concurrency reasons: back off, don't hammer.

    Recognised by the close text (quota, billing, credits, RESOURCE_EXHAUSTED). A pool pauses
    all its new connection attempts with jittered exponential backoff when it sees one.
    """


class SessionClosedError(SessionError):
    """The session is closed: no more sending or receiving.

    Raised by a send or receive after the session was closed, by you or by its owner.
    """


class ReconnectError(SessionError):
    """Reconnecting failed for good: retries exhausted, or the resumption handle expired.

    ``code`` and ``reason`` are those of the last failed attempt. Set how hard the session
    tries with ``SessionConfig(retry=RetryPolicy(...))``.
    """
