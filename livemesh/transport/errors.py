"""How a connection ended, in the livemesh error tree: close codes, refused upgrades, credentials.

Everything below this layer speaks close codes, HTTP statuses and ``ssl`` exceptions; everything
above it speaks livemesh errors (errors translated at the boundary, as httpcore's ``map_exceptions``):

* a close the session may recover from by resuming (1006 no close frame, 1011 internal error,
  1001/1000 server-side ends, network errors, keepalive timeouts) is a :class:`ConnectionLostError`;
* 1007/1008 are fatal :class:`~livemesh.errors.ServiceClosedError` (the session maps it to
  :class:`~livemesh.errors.SetupRejectedError` when it comes before ``setupComplete``), or
  :class:`~livemesh.errors.AuthError` when the text says the credentials are bad;
* a close whose text mentions quota, billing, credits or RESOURCE_EXHAUSTED is a
  :class:`~livemesh.errors.QuotaError` (back off, don't hammer);
* a refused certificate is a :class:`~livemesh.errors.CertificateError` (never retried).

No message built here contains a URL query string or a header value, and every text that came
from the peer (a close reason) goes through the connection's :class:`Redactor`, built from the
credentials that connection sent: a server that echoes an API key or a bearer token in its close
reason cannot leak it into an exception, a repr or a log line.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl, urlsplit

import attrs

from livemesh.errors import (
    AuthError,
    CertificateError,
    ContextWindowError,
    QuotaError,
    ServiceClosedError,
    SessionError,
    SetupRejectedError,
)

__all__ = [
    "NO_CLOSE_FRAME",
    "CloseInfo",
    "ConnectionLostError",
    "Redactor",
    "certificate_error",
    "classify_close",
    "close_error",
    "redact_url",
    "rejection_error",
]

NO_CLOSE_FRAME: Final = 1006
"""RFC 6455: the connection ended without a close frame (never sent on the wire)."""


class ConnectionLostError(SessionError):
    """The connection ended in a way a resume can recover from (1006, 1011, network, keepalive).

    The session actor catches it and reconnects; it only reaches users wrapped in
    :class:`~livemesh.errors.ReconnectError` when retries are exhausted.
    """


@attrs.frozen
class CloseInfo:
    """How a connection ended: the close code and reason, or 1006 when no close frame came."""

    code: int = NO_CLOSE_FRAME
    reason: str = ""


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


def classify_close(code: int, reason: str | None) -> str:
    """``"retryable"``, ``"quota"``, ``"auth"`` or ``"fatal"`` for a close code and its text.

    1007 (invalid argument) and 1008 (policy / not found) are fatal: resending the same setup gets
    the same answer. 1011 is the service's generic internal error and the goAway deadline; it is
    retryable unless its text blames quota or billing. 1006 means the network dropped.

    Args:
        code: The WebSocket close code.
        reason: The close frame's text (``None`` or empty when there was none).

    Returns:
        The class of the close, which decides the livemesh error :func:`close_error` builds.
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

    A fatal close is a :class:`~livemesh.errors.SetupRejectedError` ``during_setup`` (before
    ``setupComplete``) and a :class:`~livemesh.errors.ServiceClosedError` after it: an
    established session's setup is not to blame. A 1007 saying the context window was exceeded
    is a :class:`~livemesh.errors.ContextWindowError`.

    Args:
        info: The close code and reason (already redacted by the connection that saw it).
        during_setup: True before ``setupComplete``.

    Returns:
        The error to raise; its ``code`` and ``reason`` are the close's.
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
    """``scheme://host/path`` without query or credentials, safe for logs and exceptions.

    Args:
        url: Any URL.

    Returns:
        The URL without its query string, fragment and user info.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def rejection_error(status: int, url: str) -> SessionError:
    """The livemesh error for an upgrade refused with HTTP ``status`` (both engines map it so).

    Args:
        status: The HTTP status of the refusal.
        url: The URL that was refused (only its redacted form goes into the error).

    Returns:
        :class:`~livemesh.errors.AuthError` (401/403), :class:`~livemesh.errors.QuotaError` (429),
        :class:`~livemesh.errors.SetupRejectedError` (400/404), else :class:`ConnectionLostError`.
    """
    text = f"{redact_url(url)} refused the WebSocket upgrade with HTTP {status}"
    if status in (401, 403):
        return AuthError(text, code=status, reason=f"HTTP {status}")
    if status == 429:
        return QuotaError(text, code=status, reason=f"HTTP {status}")
    if status in (400, 404):
        return SetupRejectedError(text, code=status, reason=f"HTTP {status}")
    return ConnectionLostError(text, code=status, reason=f"HTTP {status}")


def certificate_error(exc: ssl.SSLCertVerificationError, url: str) -> CertificateError:
    """The livemesh error for a server certificate the TLS handshake refused.

    Args:
        exc: What ``ssl`` raised (its ``verify_message`` names the cause: an unknown issuer, a
            hostname mismatch, an expired certificate).
        url: The URL being opened (only its redacted form goes into the error).

    Returns:
        A :class:`~livemesh.errors.CertificateError` naming the cause; never retried.
    """
    why = exc.verify_message or exc.reason or "certificate verify failed"
    return CertificateError(f"{redact_url(url)}: TLS certificate refused ({why})", reason=str(why))


_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "x-goog-api-key", "cookie"})


class Redactor:
    """Scrubs the credentials one connection sent from any text the peer sent back.

    Built from the request's headers (``x-goog-api-key``, ``authorization`` with and without its
    scheme word, so a bearer token echoed bare is caught too) and the URL's query values (a
    ``?key=``). Why at the transport boundary: the connection is the one place that knows every
    credential it sent, whatever the auth flavour; a Vertex bearer token lives nowhere else.
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        # longest first: a secret that contains another is replaced whole
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    @classmethod
    def for_request(cls, url: str, headers: Sequence[tuple[str, str]]) -> Redactor:
        """The redactor for an upgrade request to ``url`` with ``headers``.

        Args:
            url: The WebSocket URL (its query values count as credentials).
            headers: The request's extra headers.

        Returns:
            A redactor holding every credential the request carries.
        """
        secrets: list[str] = [value for _, value in parse_qsl(urlsplit(url).query) if value]
        for name, value in headers:
            if name.lower() in _CREDENTIAL_HEADERS and value:
                secrets.append(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    secrets.append(credential.strip())
        return cls(secrets)

    def __repr__(self) -> str:
        return f"<Redactor secrets={len(self._secrets)}>"

    def __call__(self, text: str) -> str:
        """``text`` with every credential replaced by ``<redacted>``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        return text

    def close_info(self, code: int, reason: str) -> CloseInfo:
        """A :class:`CloseInfo` whose reason is redacted.

        Args:
            code: The close code.
            reason: The close frame's text as the peer sent it.

        Returns:
            The close, safe to show.
        """
        return CloseInfo(code=code, reason=self(reason) if reason else "")
