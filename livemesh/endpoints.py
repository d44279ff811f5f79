"""Where to connect and how to authenticate: pure functions of an :data:`~livemesh.auth.Auth`.

No I/O here except awaiting a Vertex token provider in :func:`live_headers`. The transport (the
session actor) and the REST client (:mod:`livemesh.rest`) both build their URLs and headers here,
so the rules live in one place:

* Gemini API with a key:
  ``{base}/ws/google.ai.generativelanguage.{ver}.GenerativeService.BidiGenerateContent``,
  ``ver`` = ``v1beta`` unless asked (``v1``, ``v1alpha``: affective dialog and proactive audio
  need ``v1alpha``).
* Ephemeral token: always ``v1alpha`` and the ``BidiGenerateContentConstrained`` method, as the
  real service requires (any other version is refused there, so we force it).
* Vertex AI: ``wss://{location}-aiplatform.googleapis.com/ws/google.cloud.aiplatform.{ver}.LlmBidiService/BidiGenerateContent``
  with ``ver`` = ``v1beta1`` (or ``v1``); ``global`` uses ``aiplatform.googleapis.com``.
* ``base_url`` overrides scheme/host/port (the emulator: ``ws://127.0.0.1:PORT``); ``http`` and
  ``https`` map to ``ws``/``wss`` (and back for REST). The path above is appended to it.
* TLS: plain ``ws``/``http`` is allowed only to loopback hosts unless ``allow_insecure=True``,
  because credentials would otherwise cross the network in clear text.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

from livemesh.auth import EPHEMERAL_TOKEN_PREFIX, ApiKey, Auth, EphemeralToken, VertexAI, bearer_token
from livemesh.errors import ConfigError

__all__ = [
    "GEMINI_API_VERSIONS",
    "GEMINI_BASE",
    "GEMINI_REST_BASE",
    "VERTEX_API_VERSIONS",
    "is_loopback_host",
    "live_headers",
    "live_path",
    "live_url",
    "model_name",
    "rest_base_url",
    "rest_headers",
]

GEMINI_BASE = "wss://generativelanguage.googleapis.com"
"""The Gemini API's Live (WebSocket) origin."""

GEMINI_REST_BASE = "https://generativelanguage.googleapis.com"
"""The Gemini API's REST origin (models list, ephemeral tokens)."""

GEMINI_API_VERSIONS = ("v1", "v1beta", "v1alpha")
"""The Gemini API versions a Live URL may name (``v1alpha`` for affective dialog and proactivity)."""
VERTEX_API_VERSIONS = ("v1", "v1beta1")
"""The Vertex AI versions a Live URL may name."""
DEFAULT_GEMINI_VERSION = "v1beta"
DEFAULT_VERTEX_VERSION = "v1beta1"
EPHEMERAL_API_VERSION = "v1alpha"
"""The only version on which the service accepts ephemeral tokens."""

_WS_FOR = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_HTTP_FOR = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine: the only hosts where a plain (unencrypted) connection is
    accepted without ``allow_insecure``, since credentials sent there never cross a network.

    Args:
        host: A host name or IP address (IPv6 with or without brackets).

    Returns:
        True for ``localhost``, names under ``.localhost`` and loopback IPs (127.0.0.0/8,
        ``::1``).
    """
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _vertex_host(auth: VertexAI) -> str:
    if auth.location == "global":
        return "aiplatform.googleapis.com"
    return f"{auth.location}-aiplatform.googleapis.com"


def _default_origin(auth: Auth, *, websocket: bool) -> str:
    scheme = "wss" if websocket else "https"
    if isinstance(auth, VertexAI):
        return f"{scheme}://{_vertex_host(auth)}"
    return GEMINI_BASE if websocket else GEMINI_REST_BASE


def _origin(auth: Auth, base_url: str | None, *, websocket: bool, allow_insecure: bool) -> str:
    """Scheme://host[:port][/prefix] without a trailing slash, checked for TLS."""
    if base_url is None:
        return _default_origin(auth, websocket=websocket)
    parts = urllib.parse.urlsplit(base_url)
    scheme_map = _WS_FOR if websocket else _HTTP_FOR
    scheme = scheme_map.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        # Do not echo base_url: a mistaken URL may carry a key in its query string.
        raise ConfigError(
            f"base_url must be a ws://, wss://, http:// or https:// URL with a host, not {parts.scheme!r}://"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("base_url must not carry a query, fragment or credentials")
    if scheme in ("ws", "http") and not allow_insecure and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"refusing plain {parts.scheme}:// to non-loopback host {parts.hostname!r}: credentials would "
            "travel unencrypted; use wss/https, or pass allow_insecure=True if you really mean it"
        )
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def live_path(auth: Auth, *, api_version: str | None = None) -> str:
    """The Live WebSocket path for ``auth`` (the rules are in the module docstring).

    Args:
        auth: The credential: its flavour picks the service and method.
        api_version: The version to use; ``None`` for the flavour's default. Ignored for an
            ephemeral token, which the service accepts only on ``v1alpha``.

    Returns:
        The path, starting with ``/ws/``.

    Raises:
        ConfigError: ``api_version`` is not one of the flavour's versions.
    """
    if isinstance(auth, VertexAI):
        ver = api_version or DEFAULT_VERTEX_VERSION
        if ver not in VERTEX_API_VERSIONS:
            raise ConfigError(f"Vertex AI api_version must be one of {VERTEX_API_VERSIONS}, not {ver!r}")
        return f"/ws/google.cloud.aiplatform.{ver}.LlmBidiService/BidiGenerateContent"
    if isinstance(auth, EphemeralToken):
        # The real service accepts tokens only here; a configured v1beta would just be refused.
        return (
            f"/ws/google.ai.generativelanguage.{EPHEMERAL_API_VERSION}"
            ".GenerativeService.BidiGenerateContentConstrained"
        )
    ver = api_version or DEFAULT_GEMINI_VERSION
    if ver not in GEMINI_API_VERSIONS:
        raise ConfigError(f"Gemini API api_version must be one of {GEMINI_API_VERSIONS}, not {ver!r}")
    return f"/ws/google.ai.generativelanguage.{ver}.GenerativeService.BidiGenerateContent"


def live_url(
    auth: Auth,
    *,
    api_version: str | None = None,
    base_url: str | None = None,
    allow_insecure: bool = False,
) -> str:
    """The full ``wss://`` (or loopback ``ws://``) URL of the Live endpoint for ``auth``.

    The URL never contains a credential (keys travel in headers), so it is safe to log.

    Args:
        auth: The credential: its flavour picks the host, service and method.
        api_version: ``None`` for the flavour's default (``v1beta`` Gemini, ``v1beta1``
            Vertex); ephemeral tokens always get ``v1alpha``.
        base_url: Another origin (scheme, host, port, optional path prefix), such as the
            emulator's ``ws://127.0.0.1:PORT``; ``http``/``https`` map to ``ws``/``wss``.
        allow_insecure: Allow plain ``ws://`` to a host that is not loopback.

    Returns:
        The URL.

    Raises:
        ConfigError: ``base_url`` is not a ``ws``/``wss``/``http``/``https`` URL with a host,
            carries a query, fragment or user info, or is plain to a non-loopback host without
            ``allow_insecure``; or ``api_version`` is unknown.
    """
    origin = _origin(auth, base_url, websocket=True, allow_insecure=allow_insecure)
    return origin + live_path(auth, api_version=api_version)


def rest_base_url(auth: Auth, *, base_url: str | None = None, allow_insecure: bool = False) -> str:
    """The REST origin for ``auth`` (``https://...``, no trailing slash, no version).

    Paths such as ``/v1beta/models`` are appended by the caller.

    Args:
        auth: The credential: Vertex AI has its regional host, the others the Gemini API's.
        base_url: Another origin; it may be the same ``ws://``/``wss://`` URL used for Live (one
            emulator serves both), mapped to ``http``/``https``.
        allow_insecure: Allow plain ``http://`` to a host that is not loopback.

    Returns:
        The origin, with ``base_url``'s path prefix if it has one.

    Raises:
        ConfigError: ``base_url`` is not a usable URL, carries a query, fragment or user info,
            or is plain to a non-loopback host without ``allow_insecure``.
    """
    return _origin(auth, base_url, websocket=False, allow_insecure=allow_insecure)


async def live_headers(auth: Auth) -> list[tuple[str, str]]:
    """HTTP headers for the WebSocket upgrade.

    * :class:`ApiKey`: ``x-goog-api-key: KEY``
    * :class:`EphemeralToken`: ``Authorization: Token auth_tokens/...``
    * :class:`VertexAI`: ``Authorization: Bearer <await token_provider()>``.

    The returned list holds a secret: never log it.

    Args:
        auth: The credential.

    Returns:
        ``(name, value)`` pairs, names in lower case.

    Raises:
        ConfigError: The Vertex AI token provider raised livemesh's ConfigError (google-auth
            not installed, say), passed on unchanged.
        AuthError: The Vertex AI token provider failed otherwise (its message is not repeated:
            it may embed credentials) or returned an empty or malformed token.
    """
    if isinstance(auth, ApiKey):
        return [("x-goog-api-key", auth.key)]
    if isinstance(auth, EphemeralToken):
        name = auth.name
        if not name.startswith(EPHEMERAL_TOKEN_PREFIX):
            name = EPHEMERAL_TOKEN_PREFIX + name
        return [("authorization", f"Token {name}")]
    return [("authorization", f"Bearer {await bearer_token(auth)}")]


async def rest_headers(auth: Auth) -> list[tuple[str, str]]:
    """HTTP headers for REST calls: the same credentials as :func:`live_headers`.

    Vertex also sends ``x-goog-user-project`` so quota is charged to the configured project.

    Args:
        auth: The credential.

    Returns:
        ``(name, value)`` pairs holding a secret: never log them.

    Raises:
        ConfigError: The Vertex AI token provider raised livemesh's ConfigError.
        AuthError: The Vertex AI token provider failed otherwise or returned a malformed token.
    """
    headers = await live_headers(auth)
    if isinstance(auth, VertexAI):
        headers.append(("x-goog-user-project", auth.project))
    return headers


def _check_model(model: str) -> str:
    # Same refusals as the official SDK ('..', '?', '&' could rewrite a REST path or query).
    if (
        not isinstance(model, str)
        or not model.strip()
        or any(c.isspace() for c in model)
        or ".." in model
        or "?" in model
        or "&" in model
    ):
        raise ConfigError(f"model must be a name without whitespace, '..', '?' or '&', not {model!r}")
    return model


def model_name(auth: Auth, model: str) -> str:
    """The resource name the ``setup`` message must carry for ``model``.

    * Gemini API: ``models/NAME`` (accepts ``NAME`` or ``models/NAME``; ``tunedModels/...`` kept).
    * Vertex AI: ``projects/P/locations/L/publishers/google/models/NAME`` (accepts ``NAME``,
      ``models/NAME``, ``PUBLISHER/NAME``, ``publishers/X/models/NAME``, or a full
      ``projects/...`` path, kept as is).

    Args:
        auth: The credential: Vertex AI names models under its project and location.
        model: The model, in any of the forms above.

    Returns:
        The resource name.

    Raises:
        ConfigError: ``model`` is empty or contains whitespace, ``..``, ``?`` or ``&`` (the
            official SDK's refusals: they could rewrite a REST path or query).
    """
    _check_model(model)
    if isinstance(auth, VertexAI):
        if model.startswith("projects/"):
            return model
        prefix = f"projects/{auth.project}/locations/{auth.location}/"
        if model.startswith("publishers/"):
            return prefix + model
        model = model.removeprefix("models/")
        if "/" in model:  # "PUBLISHER/NAME", as the SDK accepts
            publisher, _, name = model.partition("/")
            return f"{prefix}publishers/{publisher}/models/{name}"
        return prefix + "publishers/google/models/" + model
    if model.startswith(("models/", "tunedModels/")):
        return model
    return "models/" + model
