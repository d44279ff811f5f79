"""Credentials for the Live API: an API key, Vertex AI, or an ephemeral token.

Three ways in, as the service offers them:

* :class:`ApiKey`: the Gemini API (AI Studio) key, sent as ``x-goog-api-key``. Read from
  ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY`` when none is given (the official SDK's order).
* :class:`VertexAI`: a Google Cloud project and location; each connection awaits a bearer token
  from a caller-supplied ``token_provider`` (so google-auth stays optional;
  :func:`google_auth_token_provider` adapts google-auth credentials when it is installed).
* :class:`EphemeralToken`: a short-lived ``auth_tokens/...`` name minted on a backend with
  :func:`livemesh.rest.create_ephemeral_token`, safe to hand to a browser or phone. The real
  service only accepts it on v1alpha and the ``BidiGenerateContentConstrained`` method;
  :mod:`livemesh.endpoints` takes care of that.

Secrets never leave these objects by accident: ``repr``/``str`` show ``<redacted>``, they are
excluded from attrs' generated repr, and :func:`redact` scrubs them from any text (a server's
error message, say) before it goes into an exception or a log line. :func:`secrets_of` covers
every credential a session used, the bearer tokens a :class:`VertexAI` provider issued included
(the newest few are remembered for it, never shown).

These classes are values (frozen, no I/O); only :func:`bearer_token` (through
:func:`livemesh.endpoints.live_headers`) awaits the Vertex token provider.
"""

from __future__ import annotations

import collections
import datetime
import importlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs
import trio

from livemesh.errors import AuthError, ConfigError

__all__ = [
    "ENV_API_KEY_NAMES",
    "ApiKey",
    "Auth",
    "EphemeralToken",
    "TokenProvider",
    "VertexAI",
    "bearer_token",
    "google_auth_token_provider",
    "redact",
    "resolve_auth",
    "secrets_of",
]

ENV_API_KEY_NAMES: tuple[str, ...] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
"""Environment variables searched, in order, for an API key (same order as google-genai)."""

EPHEMERAL_TOKEN_PREFIX = "auth_tokens/"
"""Names of ephemeral tokens start with this; a string credential with it is taken as a token."""

REDACTED = "<redacted>"
"""What a secret is replaced with in reprs and by :func:`redact`."""

_REMEMBERED_TOKENS = 8
"""Bearer tokens a :class:`VertexAI` remembers for redaction: the newest few (a token lives about
an hour, and a session's connections ask for one each)."""

TokenProvider: TypeAlias = Callable[[], Awaitable[str]]
"""An async callable returning a fresh OAuth2 access token (called once per connection)."""


def _check_secret(kind: str, value: object) -> None:
    # Never echo the value itself: the error must not carry the secret it complains about.
    if not isinstance(value, str):
        raise ConfigError(f"{kind} must be a str, not {type(value).__name__}")
    if not value:
        raise ConfigError(f"{kind} is empty")
    if value != value.strip() or any(c in value for c in "\r\n\0"):
        # A newline would let a credential inject an HTTP header; whitespace is a paste error.
        raise ConfigError(f"{kind} contains whitespace or control characters")


def _validate_key(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    _check_secret(f"{type(instance).__name__}.{attribute.name}", value)


@attrs.frozen(repr=False)
class ApiKey:
    """A Gemini API key (AI Studio), the credential of backends and scripts.

    ``repr``/``str`` never show any of it, so a config or an error holding one can be logged.

    Raises:
        ConfigError: ``key`` is not a string, is empty, or has surrounding whitespace or control
            characters (a paste error; a newline could inject an HTTP header). The message
            never repeats the key.
    """

    key: str = attrs.field(validator=_validate_key, repr=False)
    """The key, sent as the ``x-goog-api-key`` header (never in a URL)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiKey:
        """Read ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY`` (google-genai's order).

        Args:
            environ: Where to look (default :data:`os.environ`); pass a dict in tests instead
                of mutating the process environment.

        Returns:
            The first key set (surrounding whitespace stripped).

        Raises:
            ConfigError: Neither variable is set (or both are empty), or the key is malformed.
        """
        env = os.environ if environ is None else environ
        for name in ENV_API_KEY_NAMES:
            value = env.get(name)
            if value:
                return cls(value.strip())
        raise ConfigError(
            "no API key: pass auth=..., or set " + " or ".join(ENV_API_KEY_NAMES) + " in the environment"
        )

    def __repr__(self) -> str:
        return f"ApiKey({REDACTED})"

    __str__ = __repr__


def _validate_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or any(c.isspace() or c == "/" for c in value):
        raise ConfigError(f"VertexAI.{attribute.name} must be a non-empty name without spaces or '/'")


def _validate_provider(instance: object, attribute: attrs.Attribute[TokenProvider], value: object) -> None:
    if not callable(value):
        raise ConfigError("VertexAI.token_provider must be an async callable returning an access token")


@attrs.frozen(kw_only=True)
class VertexAI:
    """Vertex AI: a Google Cloud project and location, with OAuth2 bearer tokens.

    Tokens expire (about an hour), so none is stored here: ``token_provider`` is awaited each
    time a connection or request is made, and refreshes as needed. That keeps google-auth
    optional (:func:`google_auth_token_provider` adapts it). The repr shows the project and
    location (not secrets) but never a token.

    Raises:
        ConfigError: ``project`` or ``location`` is empty or contains whitespace or ``/``, or
            ``token_provider`` is not callable.
    """

    project: str = attrs.field(validator=_validate_name)
    """The Google Cloud project id: part of the model's resource name, and charged for REST quota."""
    location: str = attrs.field(default="us-central1", validator=_validate_name)
    """The region whose endpoint to use (``{location}-aiplatform.googleapis.com``); ``"global"``
    uses the global host ``aiplatform.googleapis.com``."""
    token_provider: TokenProvider = attrs.field(validator=_validate_provider, repr=False, eq=False)
    """An async callable returning a fresh access token, awaited once per connection or request.
    Left out of equality, so credentials for one project and location compare equal."""
    _issued: collections.deque[str] = attrs.field(
        init=False, repr=False, eq=False, factory=lambda: collections.deque(maxlen=_REMEMBERED_TOKENS)
    )
    """The newest tokens :func:`bearer_token` got from the provider (for :func:`secrets_of`)."""

    def __str__(self) -> str:
        return repr(self)


@attrs.frozen(repr=False)
class EphemeralToken:
    """A short-lived token (``auth_tokens/...``) from :func:`livemesh.rest.create_ephemeral_token`.

    The credential for clients you do not control (a browser, a phone): it opens Live sessions
    only, for a short while, and never reveals your API key. The real service accepts it only on
    the v1alpha constrained endpoint, which livemesh picks for it.

    Raises:
        ConfigError: ``name`` is not a string, is empty, or has surrounding whitespace or
            control characters. The message never repeats the name.
    """

    name: str = attrs.field(validator=_validate_key, repr=False)
    """The token itself (``auth_tokens/...``): the secret, never shown by ``repr``/``str``."""
    expire_time: datetime.datetime | None = attrs.field(default=None, kw_only=True)
    """When the token stops working (UTC), as the server reported it; ``None`` if unknown.
    Informational: the server enforces it."""
    new_session_expire_time: datetime.datetime | None = attrs.field(default=None, kw_only=True)
    """When the token stops opening new sessions (UTC), as the server reported it; ``None`` if
    unknown. Informational: the server enforces it."""

    def __repr__(self) -> str:
        extra = ""
        if self.expire_time is not None:
            extra = f", expire_time={self.expire_time.isoformat()}"
        return f"EphemeralToken({REDACTED}{extra})"

    __str__ = __repr__


Auth: TypeAlias = ApiKey | VertexAI | EphemeralToken
"""Any credential livemesh accepts."""


def resolve_auth(auth: Auth | str | None, environ: Mapping[str, str] | None = None) -> Auth:
    """Turn what a user passed as ``auth=`` into an :data:`Auth` object.

    * an :data:`Auth` object is returned as is;
    * a ``str`` is an API key, or an ephemeral token if it starts with ``auth_tokens/`` (the seed
      and the SDKs let clients pass a token "as if it were an API key");
    * ``None`` reads the key from the environment (:meth:`ApiKey.from_env`).

    Args:
        auth: What the user passed.
        environ: Where ``None`` looks for a key (default :data:`os.environ`).

    Returns:
        The credential.

    Raises:
        ConfigError: ``auth`` is of another type, a malformed string, or ``None`` with no key in
            the environment.
    """
    if isinstance(auth, ApiKey | VertexAI | EphemeralToken):
        return auth
    if auth is None:
        return ApiKey.from_env(environ)
    if isinstance(auth, str):
        if auth.startswith(EPHEMERAL_TOKEN_PREFIX):
            return EphemeralToken(auth)
        return ApiKey(auth)
    raise ConfigError(
        f"auth must be ApiKey, VertexAI, EphemeralToken, an API key str or None, not {type(auth).__name__}"
    )


def secrets_of(auth: Auth) -> tuple[str, ...]:
    """The secret strings an auth object holds or handed out, for :func:`redact`.

    Args:
        auth: The credential.

    Returns:
        The API key; the ephemeral token's name (with and without its ``auth_tokens/`` prefix);
        for Vertex AI, the newest bearer tokens :func:`bearer_token` got from the provider.
    """
    if isinstance(auth, ApiKey):
        return (auth.key,)
    if isinstance(auth, EphemeralToken):
        name = auth.name
        bare = name.removeprefix(EPHEMERAL_TOKEN_PREFIX)
        return (name, bare) if bare and bare != name else (name,)
    return tuple(auth._issued)


async def bearer_token(auth: VertexAI) -> str:
    """A bearer token from ``auth``'s provider, remembered (the newest few) so that
    :func:`secrets_of` can redact it wherever a server echoes it.

    Args:
        auth: The Vertex AI credential.

    Returns:
        The access token.

    Raises:
        ConfigError: The provider raised livemesh's own ConfigError (e.g.
            :func:`google_auth_token_provider` when google-auth is not installed): passed on
            unchanged, as its message says how to fix the setup and holds no secret.
        AuthError: The provider failed otherwise (its message is not repeated: it may embed
            credentials), or returned an empty or malformed token.
    """
    try:
        token = await auth.token_provider()
    except ConfigError:
        raise
    except Exception as exc:
        raise AuthError(f"Vertex AI token provider failed: {type(exc).__name__}") from None
    if not isinstance(token, str) or not token or any(c.isspace() for c in token):
        raise AuthError("Vertex AI token provider returned an empty or malformed token")
    issued = auth._issued
    if token not in issued:
        issued.append(token)
    return token


def redact(text: str, *secrets: str) -> str:
    """Replace every occurrence of each secret in ``text`` with ``<redacted>``.

    Use it on any text that came from outside (a server's error body, a URL) before it goes into
    an exception or a log line: servers sometimes echo what they were sent.

    Args:
        text: The text to scrub.
        *secrets: The secrets to hide (empty ones are ignored); longer ones are replaced first,
            so a secret containing another is hidden whole.

    Returns:
        ``text`` without any of the secrets.
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
"""The OAuth2 scope Vertex AI needs (the default of :func:`google_auth_token_provider`)."""


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{module} is needed for google_auth_token_provider: pip install google-auth requests "
            "(or pass VertexAI(token_provider=...) your own async function)"
        ) from None


def google_auth_token_provider(
    credentials: Any = None,
    *,
    scopes: Sequence[str] = (CLOUD_PLATFORM_SCOPE,),
    request_factory: Callable[[], Any] | None = None,
) -> TokenProvider:
    """A :data:`TokenProvider` over google-auth, for ``VertexAI(token_provider=...)``.

    google-auth stays optional: it is imported only when the provider first needs it (to find
    default credentials or to refresh), never by livemesh itself. The token is refreshed when no
    longer valid; google-auth does blocking file and network I/O, so loading and refreshing run
    in a worker thread (``trio.to_thread``), one at a time per provider (concurrent connections
    share one refresh).

    Args:
        credentials: Any google-auth credentials object; ``None`` uses
            ``google.auth.default(scopes=scopes)``, found on first use.
        scopes: The OAuth2 scopes asked for default credentials.
        request_factory: Makes the transport request object for refreshes (default
            ``google.auth.transport.requests.Request``, which needs ``requests``).

    Returns:
        The provider. When awaited it raises :class:`~livemesh.errors.ConfigError` if
        google-auth (or ``requests``) is needed but not installed (a connection passes it on
        as it is, install hint included), and google-auth's own errors if no credentials are
        found or a refresh fails (a connection reports those as an
        :class:`~livemesh.errors.AuthError` naming only the error's type).
    """
    lock = trio.Lock()
    state: dict[str, Any] = {"credentials": credentials}

    def load_default() -> Any:
        creds, _project = _import("google.auth").default(scopes=list(scopes))
        return creds

    def new_request() -> Any:
        if request_factory is not None:
            return request_factory()
        return _import("google.auth.transport.requests").Request()

    async def provider() -> str:
        async with lock:
            creds = state["credentials"]
            if creds is None:
                creds = state["credentials"] = await trio.to_thread.run_sync(load_default)
            if not getattr(creds, "valid", False) or not getattr(creds, "token", None):
                await trio.to_thread.run_sync(creds.refresh, new_request())
            return str(creds.token)

    return provider
