"""The REST side of the Live API: which Live models a key may use, and ephemeral tokens.

* :func:`list_live_models`: ``GET /{version}/models`` (all pages), keeping the models whose
  ``supportedGenerationMethods`` include ``bidiGenerateContent``.
* :func:`resolve_model` / :class:`ModelResolver`: pick a Live model for ``"text"``, ``"audio"`` or
  ``"image"``, preferring the current Live models this key can use (``gemini-3.8-live`` for audio)
  and falling back to the rollout-safe choices (availability varies by project and rollout; a
  model missing for the key is refused with 1008 at setup). :class:`ModelResolver` caches the
  list per credential for a while, and shares one request between concurrent callers (a pool
  starting a thousand sessions asks once).
* :func:`create_ephemeral_token`: ``POST /v1alpha/auth_tokens`` on your backend, with the request
  shape of the real API (``uses``, ``expireTime``, ``newSessionExpireTime``,
  ``bidiGenerateContentSetup``, ``fieldMask``); hand the returned :class:`EphemeralToken` to a
  browser or phone, which connects with it on the constrained v1alpha endpoint.

Everything runs on httpx (under trio through anyio). Pass your own ``httpx.AsyncClient`` to reuse
connections; otherwise one is opened and closed per call. TLS is verified by default (httpx's
default), and plain ``http://`` is refused for non-loopback hosts unless ``allow_insecure=True``.

HTTP failures become livemesh errors, split by blame: :class:`~livemesh.errors.AuthError` for 401,
403 and a refused key (Google says 400 ``API_KEY_INVALID`` there), :class:`~livemesh.errors.QuotaError`
for 429 / ``RESOURCE_EXHAUSTED`` (for both, ``code`` is the HTTP status and ``reason`` the server's
message), :class:`RestError` otherwise. Credentials are scrubbed from any
server text before it goes into an exception or a log line.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs
import httpx
import orjson
import trio

from livemesh import wire
from livemesh._validators import check_int_at_least
from livemesh.auth import ApiKey, Auth, EphemeralToken, VertexAI, redact, resolve_auth, secrets_of
from livemesh.endpoints import model_name, rest_base_url, rest_headers
from livemesh.errors import AuthError, ConfigError, LivemeshError, QuotaError, RemoteProtocolError

__all__ = [
    "DEFAULT_CACHE_TTL_S",
    "FALLBACK_MODELS",
    "LIVE_METHOD",
    "PREFERRED_MODELS",
    "LiveConnectConstraints",
    "ModelInfo",
    "ModelKind",
    "ModelResolver",
    "RestError",
    "create_ephemeral_token",
    "list_live_models",
    "resolve_model",
]

log = logging.getLogger("livemesh.rest")

LIVE_METHOD: Final = "bidiGenerateContent"
"""The generation method a model must list to be usable with the Live API."""

ModelKind: TypeAlias = Literal["text", "audio", "image"]

FALLBACK_MODELS: Final[Mapping[str, str]] = {
    "text": "gemini-2.0-flash-exp",
    "image": "gemini-2.0-flash-exp-image-generation",
    "audio": "gemini-2.5-flash-native-audio-preview-12-2025",
}
"""The rollout-safe choices (text, image, audio), used when no preferred model is listed for the
key (and on Vertex AI, which has no per-key list)."""

PREFERRED_MODELS: Final[Mapping[str, tuple[str, ...]]] = {
    # Current first. gemini-3.8-live is the stable Live model (ai.google.dev/gemini-api/docs/
    # models/gemini-3.8-live); it answers in AUDIO only (text through output transcription), so
    # "text" prefers the models that still answer in TEXT (native-audio models cannot either).
    "text": ("gemini-live-2.5-flash-preview", "gemini-2.0-flash-live-001"),
    "audio": (
        "gemini-3.8-live",
        "gemini-3.1-flash-live-preview",
        "gemini-2.5-flash-native-audio-latest",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-preview-09-2025",
    ),
    "image": (),
}
"""Live models preferred over the fallback when the key's model list includes them, current first."""

DEFAULT_CACHE_TTL_S: Final = 600.0
"""How long a :class:`ModelResolver` keeps a credential's model list, in seconds: long enough
that a pool starting many sessions asks once, short enough that a model newly rolled out to the
key is picked up within minutes."""
DEFAULT_TIMEOUT_S: Final = 30.0
"""Timeout of the httpx client opened when none is passed (pass your own client, or wrap the call
in ``trio.fail_after``, for another bound)."""
_MAX_PAGES: Final = 100
_MAX_REASON_CHARS: Final = 300
_TOKEN_API_VERSION: Final = "v1alpha"


class RestError(LivemeshError):
    """A REST call failed for a reason other than auth or quota.

    No response arrived (DNS, a refused connection, TLS, a timeout), or the server answered with
    an error status that is neither a refused credential (:class:`~livemesh.errors.AuthError`)
    nor quota (:class:`~livemesh.errors.QuotaError`), such as a 404 or a 5xx. Retrying later may
    help, which is why it has its own type. A :class:`ModelResolver` falls back to
    :data:`FALLBACK_MODELS` on it when ``fallback_on_error`` is true.

    Attributes:
        status: The HTTP status, or ``None`` when no response arrived.
        reason: The server's message with any credential scrubbed, or ``None`` when no response
            arrived (the message then names the failure).
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        """Describe a failed REST call.

        Args:
            message: What failed, for people (credentials already scrubbed).
            status: The HTTP status, if a response arrived.
            reason: The server's message, credentials scrubbed, if a response arrived.
        """
        super().__init__(message)
        self.status = status
        self.reason = reason


# --------------------------------------------------------------------------- models


@attrs.frozen
class ModelInfo:
    """One entry of ``GET /models``: what :func:`list_live_models` returns for each Live model.

    Only the fields livemesh uses are kept, and unknown fields are ignored, so a model list with
    fields newer than livemesh still parses. A field the server omitted (or sent with the wrong
    type) is ``None``.
    """

    name: str
    """The resource name, ``models/NAME`` (a bare name from the server gets the prefix)."""
    supported_generation_methods: tuple[str, ...] = ()
    """The methods the model serves; a Live model lists ``bidiGenerateContent``."""
    display_name: str | None = None
    """The name for people."""
    description: str | None = None
    """The server's description of the model."""
    version: str | None = None
    """The model's version, as the server states it."""
    base_model_id: str | None = None
    """The base model's id (for tuned models)."""
    input_token_limit: int | None = None
    """How many input tokens the model takes: its context window."""
    output_token_limit: int | None = None
    """How many tokens the model may answer with in one response."""

    @property
    def short_name(self) -> str:
        """The name without ``models/`` (what :func:`resolve_model` returns)."""
        return self.name.removeprefix("models/")

    @property
    def supports_live(self) -> bool:
        """Whether the model serves the Live API (lists ``bidiGenerateContent``)."""
        return LIVE_METHOD in self.supported_generation_methods

    @classmethod
    def from_json(cls, obj: Any) -> ModelInfo:
        """Parse one model object, tolerating missing and unknown fields (camel- or snake_case).

        Args:
            obj: One element of the ``models`` list, as decoded JSON.

        Returns:
            The model; fields missing or of the wrong type are ``None`` (or empty).

        Raises:
            RemoteProtocolError: ``obj`` is not an object, or has no ``name``.
        """
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
            raise RemoteProtocolError("model entry without a name in the models list")

        def get(camel: str, snake: str) -> Any:
            return obj.get(camel, obj.get(snake))

        def opt_str(camel: str, snake: str) -> str | None:
            value = get(camel, snake)
            return value if isinstance(value, str) else None

        def opt_int(camel: str, snake: str) -> int | None:
            value = get(camel, snake)
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, str) and value.isdigit():
                return int(value)
            return None

        methods = get("supportedGenerationMethods", "supported_generation_methods") or ()
        if not isinstance(methods, list | tuple):
            methods = ()
        name = obj["name"]
        return cls(
            name=name if name.startswith("models/") else "models/" + name,
            supported_generation_methods=tuple(m for m in methods if isinstance(m, str)),
            display_name=opt_str("displayName", "display_name"),
            description=opt_str("description", "description"),
            version=opt_str("version", "version"),
            base_model_id=opt_str("baseModelId", "base_model_id"),
            input_token_limit=opt_int("inputTokenLimit", "input_token_limit"),
            output_token_limit=opt_int("outputTokenLimit", "output_token_limit"),
        )


@attrs.frozen
class _ServerError:
    reason: str
    status: str  # google.rpc status name ("UNAUTHENTICATED"), "" if absent
    detail_reasons: tuple[str, ...]  # ErrorInfo reasons ("API_KEY_INVALID"), if any


def _server_error(response: httpx.Response, secrets: Sequence[str]) -> _ServerError:
    """The server's error (Google's ``{"error": {"message", "status", "details"}}`` or the raw
    body), its message scrubbed of credentials and truncated."""
    text, status, details = "", "", []
    try:
        body = orjson.loads(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            text = str(error.get("message") or error.get("status") or "")
            status = str(error.get("status") or "")
            for detail in error.get("details") or ():
                if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
                    details.append(detail["reason"])
        elif isinstance(error, str):
            text = error
    except orjson.JSONDecodeError:
        text = response.content[:2000].decode("utf-8", "replace").strip()
    text = redact(text, *secrets)
    if len(text) > _MAX_REASON_CHARS:
        text = text[:_MAX_REASON_CHARS] + "..."
    return _ServerError(text or response.reason_phrase, status, tuple(details))


_AUTH_STATUSES: Final = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
_AUTH_TEXTS: Final = ("api key not valid", "api key expired", "api_key_invalid")


def _is_auth_failure(status: int, error: _ServerError) -> bool:
    # Google answers a bad or expired API key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID),
    # not 401: look at the details and the text too, so callers can catch AuthError for all of them.
    if status in (401, 403) or error.status in _AUTH_STATUSES:
        return True
    if any(r.startswith("API_KEY_") for r in error.detail_reasons):
        return True
    return any(t in error.reason.lower() for t in _AUTH_TEXTS)


def _raise_for_status(what: str, response: httpx.Response, secrets: Sequence[str]) -> None:
    status = response.status_code
    if status < 400:
        return
    error = _server_error(response, secrets)
    message = f"{what} failed: HTTP {status}: {error.reason}"
    if _is_auth_failure(status, error):
        raise AuthError(message, code=status, reason=error.reason)
    if status == 429 or error.status == "RESOURCE_EXHAUSTED":
        raise QuotaError(message, code=status, reason=error.reason)
    raise RestError(message, status=status, reason=error.reason)


async def _request(
    what: str,
    auth: Auth,
    method: str,
    url: str,
    *,
    client: httpx.AsyncClient | None,
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
) -> Any:
    """One authenticated request returning decoded JSON, with errors translated at this boundary."""
    secrets = secrets_of(auth)
    headers = await rest_headers(auth)
    if json_body is not None:
        headers.append(("content-type", "application/json"))
    content = orjson.dumps(json_body) if json_body is not None else None
    log.debug("%s: %s %s", what, method, url)
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT_S) as own:
                response = await own.request(method, url, headers=headers, params=params, content=content)
        else:
            response = await client.request(method, url, headers=headers, params=params, content=content)
    except httpx.HTTPError as exc:
        # No response: name the failure; its text is scrubbed (it may quote the request).
        detail = redact(str(exc), *secrets)[:_MAX_REASON_CHARS]
        raise RestError(f"{what} failed: {type(exc).__name__}: {detail}") from None
    log.debug("%s: HTTP %d", what, response.status_code)
    _raise_for_status(what, response, secrets)
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise RemoteProtocolError(f"{what}: the server's response is not JSON") from None


def _check_rest_auth(auth: Auth, what: str) -> ApiKey | VertexAI:
    if isinstance(auth, EphemeralToken):
        raise ConfigError(f"{what} needs an API key (or Vertex AI); ephemeral tokens only open Live sessions")
    return auth


async def list_live_models(
    auth: Auth | str | None = None,
    *,
    base_url: str | None = None,
    api_version: str = "v1beta",
    client: httpx.AsyncClient | None = None,
    allow_insecure: bool = False,
    page_size: int = 1000,
) -> list[ModelInfo]:
    """The models this key may use with the Live API, following ``nextPageToken`` to the end.

    Availability varies by project and rollout, and a model the key cannot use is refused only
    at setup (1008): asking first lets an application pick a model that will work. Models whose
    ``supportedGenerationMethods`` lack ``bidiGenerateContent`` are left out.

    Gemini API only: Vertex AI has no per-key Live model list (:class:`ModelResolver` uses
    :data:`FALLBACK_MODELS` there), and ephemeral tokens cannot call REST.

    Args:
        auth: An :class:`~livemesh.auth.ApiKey`, an API key string, or ``None`` to read
            ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY`` from the environment.
        base_url: Another origin, such as the emulator's ``ws://127.0.0.1:PORT`` (``ws`` maps to
            ``http``); default the Gemini API's.
        api_version: ``"v1"``, ``"v1beta"`` or ``"v1alpha"``.
        client: An ``httpx.AsyncClient`` whose connections to reuse; default one opened and
            closed for this call, with a 30 second timeout.
        allow_insecure: Allow plain ``http://`` to a host that is not loopback (the key would
            cross the network in clear text).
        page_size: How many models to ask for per page, at least 1 (the service answers
            with at most 1000 per page whatever is asked; every page is fetched either way).

    Returns:
        The Live models, in the server's order.

    Raises:
        ConfigError: ``auth`` is Vertex AI, an ephemeral token, malformed, or ``None`` with no
            key in the environment; ``api_version`` is unknown; ``page_size`` is not an int >= 1;
            ``base_url`` is not a usable URL, or is plain ``http`` to a non-loopback host
            without ``allow_insecure``.
        AuthError: The key was refused (HTTP 401 or 403, or 400 ``API_KEY_INVALID``).
        QuotaError: HTTP 429 or ``RESOURCE_EXHAUSTED``.
        RestError: No response arrived, or another HTTP error.
        RemoteProtocolError: The response is not the expected JSON (not an object, an entry
            without a name, a repeated page token, more than 100 pages).
    """
    resolved = _check_rest_auth(resolve_auth(auth), "listing models")
    if isinstance(resolved, VertexAI):
        raise ConfigError("listing Live models is a Gemini API feature; Vertex AI has no per-key list")
    if api_version not in ("v1", "v1beta", "v1alpha"):
        raise ConfigError(f"api_version must be v1, v1beta or v1alpha, not {api_version!r}")
    check_int_at_least("page_size", page_size, 1)
    url = f"{rest_base_url(resolved, base_url=base_url, allow_insecure=allow_insecure)}/{api_version}/models"
    models: list[ModelInfo] = []
    page_token = ""
    seen_tokens: set[str] = set()
    for _ in range(_MAX_PAGES):
        params = {"pageSize": str(page_size)}
        if page_token:
            params["pageToken"] = page_token
        body = await _request("listing models", resolved, "GET", url, client=client, params=params)
        if not isinstance(body, dict):
            raise RemoteProtocolError("listing models: the response is not a JSON object")
        entries = body.get("models") or []
        if not isinstance(entries, list):
            raise RemoteProtocolError("listing models: 'models' is not a list")
        models.extend(m for m in map(ModelInfo.from_json, entries) if m.supports_live)
        page_token = body.get("nextPageToken") or ""
        if not isinstance(page_token, str):
            raise RemoteProtocolError("listing models: 'nextPageToken' is not a string")
        if not page_token:
            return models
        if page_token in seen_tokens:
            raise RemoteProtocolError("listing models: the server repeated a page token (pagination loop)")
        seen_tokens.add(page_token)
    raise RemoteProtocolError(f"listing models: more than {_MAX_PAGES} pages")


def choose_model(
    kind: ModelKind,
    available: Sequence[str],
    *,
    preferred: Mapping[str, Sequence[str]] = PREFERRED_MODELS,
    fallback: Mapping[str, str] = FALLBACK_MODELS,
) -> str:
    """The first of ``preferred[kind]`` present in ``available`` (names with or without
    ``models/``), else ``fallback[kind]``. Pure: the resolver's decision, testable alone."""
    if kind not in fallback:
        raise ConfigError(f"model kind must be one of {sorted(fallback)}, not {kind!r}")
    names = {name.removeprefix("models/") for name in available}
    for candidate in preferred.get(kind, ()):
        if candidate in names:
            return candidate
    return fallback[kind]


_CacheKey: TypeAlias = tuple[Auth, str, str]


@attrs.define
class _Inflight:
    """One listing in progress; concurrent callers for the same key wait on ``done``."""

    done: trio.Event = attrs.Factory(trio.Event)
    names: tuple[str, ...] | None = None
    error: BaseException | None = None


class ModelResolver:
    """Resolves Live models per credential, caching each key's Live model list for ``ttl_s``.

    Hold one per application (or per pool) and pass it around; there is no module-level cache.
    ``clock`` returns seconds (default :func:`trio.current_time`, so ``MockClock`` drives expiry in
    tests). At most ``max_entries`` credentials are cached (least recently used evicted). The cache
    holds auth objects as keys, never their secrets as text.

    Failures: an :class:`~livemesh.errors.AuthError` or :class:`~livemesh.errors.ConfigError`
    propagates (the key or the settings are bad; a session would fail too). Other failures
    (network, 5xx, 429, a malformed answer) fall back to :data:`FALLBACK_MODELS` with a warning
    when ``fallback_on_error`` is true (the default), and are not cached.

    Attributes:
        fetches: How many model lists were fetched (for tests and metrics).
    """

    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_CACHE_TTL_S,
        clock: Callable[[], float] = trio.current_time,
        max_entries: int = 128,
        preferred: Mapping[str, Sequence[str]] = PREFERRED_MODELS,
        fallback: Mapping[str, str] = FALLBACK_MODELS,
        fallback_on_error: bool = True,
        base_url: str | None = None,
        api_version: str = "v1beta",
        client: httpx.AsyncClient | None = None,
        allow_insecure: bool = False,
    ) -> None:
        """Set up an empty cache; nothing is fetched until a model is asked for.

        Args:
            ttl_s: How long a credential's model list is reused, in seconds (0: never cached).
            clock: Returns the current time in seconds; judges cache expiry.
            max_entries: How many credentials' lists to keep (least recently used evicted).
            preferred: Per kind, the Live models to prefer when the key's list has them, best
                first (default :data:`PREFERRED_MODELS`).
            fallback: Per kind, the model used when none of ``preferred`` is listed, on Vertex
                AI, and after a failure with ``fallback_on_error`` (default
                :data:`FALLBACK_MODELS`); its keys are the kinds :meth:`resolve` accepts.
            fallback_on_error: Whether a failed listing (other than auth or configuration)
                falls back instead of raising.
            base_url: Another origin, such as the emulator's URL (see :func:`list_live_models`).
            api_version: The REST version to list models with.
            client: An ``httpx.AsyncClient`` to reuse; default one per listing.
            allow_insecure: Allow plain ``http://`` to a host that is not loopback.

        Raises:
            ConfigError: ``ttl_s`` is negative or not finite, or ``max_entries`` is below 1.
        """
        if not (ttl_s >= 0 and math.isfinite(ttl_s)):
            raise ConfigError("ttl_s must be a finite number >= 0")
        if max_entries < 1:
            raise ConfigError("max_entries must be >= 1")
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._preferred = dict(preferred)
        self._fallback = dict(fallback)
        self._fallback_on_error = fallback_on_error
        self._base_url = base_url
        self._api_version = api_version
        self._client = client
        self._allow_insecure = allow_insecure
        self._cache: OrderedDict[_CacheKey, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._inflight: dict[_CacheKey, _Inflight] = {}
        self.fetches = 0

    def __repr__(self) -> str:
        return f"ModelResolver(ttl_s={self._ttl_s}, cached={len(self._cache)})"

    def invalidate(self, auth: Auth | str | None = None) -> None:
        """Forget cached model lists, so the next call asks the server again.

        Call it when a model the list offered was refused (a rollout changed), or after the
        project's access changed.

        Args:
            auth: The credential whose list to forget (an auth object or an API key string);
                ``None`` forgets every credential's list (it does not read the environment).

        Raises:
            ConfigError: ``auth`` is not a credential livemesh accepts.
        """
        if auth is None:
            self._cache.clear()
            return
        key = self._key(resolve_auth(auth))
        self._cache.pop(key, None)

    def _key(self, auth: Auth) -> _CacheKey:
        return (auth, self._base_url or "", self._api_version)

    async def live_model_names(self, auth: Auth | str | None = None) -> tuple[str, ...]:
        """The short names of the Live models for ``auth``, from the cache when fresh.

        Concurrent callers for one credential share one request: a pool starting a thousand
        sessions asks once. A failure is not cached; every caller waiting on the failed request
        gets its error (a :class:`RestError` if that request was cancelled).

        Args:
            auth: The credential, as :func:`list_live_models` takes it.

        Returns:
            Model names without ``models/``, in the server's order.

        Raises:
            ConfigError: As :func:`list_live_models` (Vertex AI, an ephemeral token, no key,
                bad settings).
            AuthError: The key was refused.
            QuotaError: HTTP 429 or ``RESOURCE_EXHAUSTED``.
            RestError: No response arrived, another HTTP error, or the shared request was
                cancelled.
            RemoteProtocolError: The response is not the expected JSON.
        """
        resolved = resolve_auth(auth)
        key = self._key(resolved)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl_s:
            self._cache.move_to_end(key)
            return hit[1]
        inflight = self._inflight.get(key)
        if inflight is not None:
            await inflight.done.wait()
            if inflight.error is not None:
                # A copy: one exception object raised in many tasks would share one traceback.
                raise copy.copy(inflight.error) from None
            assert inflight.names is not None
            return inflight.names
        inflight = self._inflight[key] = _Inflight()
        try:
            self.fetches += 1
            models = await list_live_models(
                resolved,
                base_url=self._base_url,
                api_version=self._api_version,
                client=self._client,
                allow_insecure=self._allow_insecure,
            )
            inflight.names = tuple(m.short_name for m in models)
        except BaseException as exc:
            # Waiters get the same error; a cancellation of the fetcher becomes a RestError for
            # them (they were not cancelled) so they can retry.
            inflight.error = (
                exc if isinstance(exc, Exception) else RestError("listing models was cancelled; retry")
            )
            raise
        finally:
            del self._inflight[key]
            inflight.done.set()
        self._cache[key] = (self._clock(), inflight.names)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return inflight.names

    async def resolve(self, kind: ModelKind, auth: Auth | str | None = None) -> str:
        """A Live model of ``kind`` that ``auth`` may use.

        The first of ``preferred[kind]`` in the key's (cached) list, else ``fallback[kind]``.
        Vertex AI and ephemeral tokens get the fallback without a request (Vertex has no per-key
        list, and tokens cannot call REST).

        Args:
            kind: ``"text"``, ``"audio"`` or ``"image"`` (the keys of ``fallback``).
            auth: The credential: an auth object, an API key string, or ``None`` to read the key
                from the environment.

        Returns:
            The model name, without ``models/``.

        Raises:
            ConfigError: ``kind`` is unknown, ``auth`` is malformed or missing, or the settings
                are bad.
            AuthError: The key was refused.
            QuotaError: HTTP 429 (only with ``fallback_on_error=False``).
            RestError: The listing failed otherwise (only with ``fallback_on_error=False``).
            RemoteProtocolError: The response is not the expected JSON (only with
                ``fallback_on_error=False``).
        """
        if kind not in self._fallback:
            raise ConfigError(f"model kind must be one of {sorted(self._fallback)}, not {kind!r}")
        resolved = resolve_auth(auth)
        if isinstance(resolved, VertexAI | EphemeralToken):
            # No per-key list to ask: Vertex has none, and tokens cannot call REST.
            return self._fallback[kind]
        try:
            names = await self.live_model_names(resolved)
        except (AuthError, ConfigError):
            raise
        except LivemeshError as exc:
            if not self._fallback_on_error:
                raise
            log.warning("model list unavailable (%s); using fallback %s", exc, self._fallback[kind])
            return self._fallback[kind]
        return choose_model(kind, names, preferred=self._preferred, fallback=self._fallback)


async def resolve_model(
    kind: ModelKind,
    auth: Auth | str | None = None,
    *,
    resolver: ModelResolver | None = None,
    base_url: str | None = None,
    api_version: str = "v1beta",
    client: httpx.AsyncClient | None = None,
    allow_insecure: bool = False,
) -> str:
    """A Live model name for ``kind`` usable with ``auth``: see :meth:`ModelResolver.resolve`.

    Without ``resolver`` a one-off uncached :class:`ModelResolver` asks the server (falling back
    to :data:`FALLBACK_MODELS`, with a warning, when the list cannot be fetched). Pass a
    long-lived ``resolver`` when many sessions start, so the list is fetched once.

    Args:
        kind: ``"text"``, ``"audio"`` or ``"image"``.
        auth: An auth object, an API key string, or ``None`` to read the key from the
            environment.
        resolver: The resolver whose cache and settings to use; the other keyword arguments
            must then be left at their defaults (they are the resolver's settings).
        base_url: Another origin, such as the emulator's URL (without ``resolver``).
        api_version: The REST version to list models with (without ``resolver``).
        client: An ``httpx.AsyncClient`` to reuse (without ``resolver``).
        allow_insecure: Allow plain ``http://`` to a host that is not loopback (without
            ``resolver``).

    Returns:
        The model name, without ``models/``.

    Raises:
        ConfigError: ``kind`` is unknown, ``auth`` is malformed or missing, a setting is bad,
            or settings were passed together with ``resolver``.
        AuthError: The key was refused.
        QuotaError: HTTP 429, only if ``resolver`` does not fall back on errors.
        RestError: The listing failed otherwise, only if ``resolver`` does not fall back.
        RemoteProtocolError: The response is not the expected JSON, only if ``resolver`` does
            not fall back.
    """
    if resolver is None:
        resolver = ModelResolver(
            base_url=base_url,
            api_version=api_version,
            client=client,
            allow_insecure=allow_insecure,
            ttl_s=0.0,
        )
    elif base_url is not None or client is not None or allow_insecure or api_version != "v1beta":
        raise ConfigError("pass base_url/client/api_version/allow_insecure to the ModelResolver, not here")
    return await resolver.resolve(kind, auth)


# --------------------------------------------------------------------------- ephemeral tokens


def _snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


_GENERATION_CONFIG_FIELDS: Final = frozenset(
    _snake_to_camel(f.name) for f in attrs.fields(wire.GenerationConfig)
)


def _model_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"LiveConnectConstraints.model must be a non-empty model name or None, not {value!r}"
        )


@attrs.frozen(kw_only=True)
class LiveConnectConstraints:
    """What sessions opened with the token are locked to (google-genai's ``LiveConnectConstraints``).

    A token handed to a browser or phone is used by code you do not control: constraints make the
    service enforce your model and settings on every session the token opens, whatever the
    client's own setup says. Pass them to :func:`create_ephemeral_token`.

    Raises:
        ConfigError: ``model`` is given but is not a non-empty string (an empty name would
            leave the token's sessions without the model lock you asked for).
    """

    model: str | None = attrs.field(default=None, validator=attrs.validators.optional(_model_name))
    """The model to lock (``NAME`` or ``models/NAME``); when given, it replaces ``setup``'s own."""
    setup: wire.Setup | Mapping[str, Any] | None = None
    """The session config to lock, as a :class:`livemesh.wire.Setup` (e.g.
    ``SessionConfig.setup(auth, handle=None)``) or as the setup's camelCase JSON object."""
    lock_additional_fields: Sequence[str] | None = None
    """The lock mode, as in the SDK:

    * ``None`` (default): the whole setup is locked (no ``fieldMask`` is sent);
    * ``()``: only the fields set in ``setup`` are locked (``fieldMask`` = those fields);
    * names: the fields set plus these (``"temperature"`` means ``generationConfig.temperature``;
      snake_case names are converted to the camelCase the API expects).
    """

    def setup_json(self, auth: Auth) -> dict[str, Any]:
        """The ``bidiGenerateContentSetup`` object of the token request.

        Args:
            auth: The credential minting the token; it decides the model's resource name.

        Returns:
            The setup as camelCase JSON, its model (``models/NAME``) first; empty when neither
            ``model`` nor ``setup`` is set.

        Raises:
            ConfigError: ``setup`` is neither a ``wire.Setup`` nor a mapping, or the model name
                (``model``, else the setup's own) is empty or malformed.
            EncodeError: The ``wire.Setup`` holds a value JSON cannot carry.
        """
        own: str | None = None
        if self.setup is None:
            body: dict[str, Any] = {}
        elif isinstance(self.setup, wire.Setup):
            body = orjson.loads(wire.encode_client(wire.ClientMessage(setup=self.setup)))["setup"]
            own = self.setup.model  # read here: the encoding leaves an empty string out
        elif isinstance(self.setup, Mapping):
            body = dict(self.setup)
            own = body.get("model")
        else:
            raise ConfigError("LiveConnectConstraints.setup must be a wire.Setup or a JSON object")
        model = self.model if self.model is not None else own
        body.pop("model", None)
        if model is not None:  # an empty name is refused, never dropped: the lock would go with it
            body = {"model": model_name(auth, model), **body}
        return body

    def field_mask(self, setup_json: Mapping[str, Any]) -> str | None:
        """The ``fieldMask`` string for the lock mode (see ``lock_additional_fields``).

        Fields are named two levels deep, as the SDK does (``generationConfig.temperature``,
        not ``generationConfig``), so a client may still set the fields left out.

        Args:
            setup_json: The setup object, as :meth:`setup_json` returned it.

        Returns:
            Comma-separated field paths, or ``None``: send no mask, so the whole setup is locked.

        Raises:
            ConfigError: ``lock_additional_fields`` is a single ``str`` rather than a sequence.
        """
        if self.lock_additional_fields is None:
            return None
        if isinstance(self.lock_additional_fields, str):
            raise ConfigError("lock_additional_fields must be a sequence of names, not a str")
        fields: list[str] = []
        for key, value in setup_json.items():
            # Two levels deep, like the SDK: generationConfig.temperature, not generationConfig.
            if isinstance(value, Mapping) and value:
                fields.extend(f"{key}.{sub}" for sub in value)
            else:
                fields.append(key)
        for name in self.lock_additional_fields:
            path = ".".join(_snake_to_camel(part) for part in name.split("."))
            if path in _GENERATION_CONFIG_FIELDS:
                path = f"generationConfig.{path}"
            if path not in fields:
                fields.append(path)
        return ",".join(fields)


def rfc3339(moment: datetime.datetime) -> str:
    """``2025-01-23T12:00:00.000000Z``: UTC, microseconds (what protobuf's Timestamp JSON accepts)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigError("token times must be timezone-aware datetimes (naive ones are ambiguous)")
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def _absolute(
    value: datetime.datetime | datetime.timedelta | None, now: datetime.datetime, what: str
) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.timedelta):
        if value <= datetime.timedelta(0):
            raise ConfigError(f"{what} must be in the future")
        return now + value
    raise ConfigError(f"{what} must be a datetime, a timedelta from now, or None")


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def create_ephemeral_token(
    auth: Auth | str | None = None,
    *,
    uses: int = 1,
    expire_time: datetime.datetime | datetime.timedelta | None = None,
    new_session_expire_time: datetime.datetime | datetime.timedelta | None = None,
    constraints: LiveConnectConstraints | None = None,
    base_url: str | None = None,
    client: httpx.AsyncClient | None = None,
    allow_insecure: bool = False,
    now: Callable[[], datetime.datetime] = _utc_now,
) -> EphemeralToken:
    """Mint an ephemeral token (``POST /v1alpha/auth_tokens``) for a client to open Live sessions.

    Call this on your backend with your API key; give the client only the returned token. A
    browser or phone then opens sessions without ever holding the key, for a short while and,
    with ``constraints``, only with the model and settings you chose.

    Args:
        auth: The API key (an :class:`~livemesh.auth.ApiKey`, a string, or ``None`` to read
            ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``). Only the Gemini API issues tokens.
        uses: How many sessions the token may start (a resume does not count; 0: no limit).
        expire_time: After it, the token's messages are refused (server default: 30 minutes).
            An aware ``datetime``, a ``timedelta`` from ``now()``, or ``None`` for the default.
        new_session_expire_time: After it, new sessions are refused (server default: 1
            minute). Same forms as ``expire_time``.
        constraints: The model and settings to lock the token's sessions to.
        base_url: Another origin, such as the emulator's URL; default the Gemini API's.
        client: An ``httpx.AsyncClient`` to reuse; default one opened for this call.
        allow_insecure: Allow plain ``http://`` to a host that is not loopback.
        now: The current time, which ``timedelta`` expiries count from (for tests).

    Returns:
        The token, with the expiry times the server reported (those requested, when the
        server's answer has none).

    Raises:
        ConfigError: ``auth`` is Vertex AI, an ephemeral token, malformed or missing; ``uses``
            is not an int >= 0; an expiry is naive, not in the future (as a ``timedelta``), of
            another type, or ``new_session_expire_time`` is after ``expire_time``;
            ``constraints`` are invalid; ``base_url`` is not usable or not secure.
        EncodeError: ``constraints.setup`` holds a value JSON cannot carry.
        AuthError: The key was refused.
        QuotaError: HTTP 429 or ``RESOURCE_EXHAUSTED``.
        RestError: No response arrived, or another HTTP error.
        RemoteProtocolError: The response is not JSON or names no token.
    """
    resolved = _check_rest_auth(resolve_auth(auth), "creating an ephemeral token")
    if isinstance(resolved, VertexAI):
        raise ConfigError("ephemeral tokens are a Gemini API feature; Vertex AI does not issue them")
    if isinstance(uses, bool) or not isinstance(uses, int) or uses < 0:
        raise ConfigError("uses must be an int >= 0 (0: unlimited, as the API defines it)")
    moment = now()
    expire = _absolute(expire_time, moment, "expire_time")
    new_session = _absolute(new_session_expire_time, moment, "new_session_expire_time")
    if expire is not None and new_session is not None and new_session > expire:
        raise ConfigError("new_session_expire_time must not be after expire_time")
    body: dict[str, Any] = {"uses": uses}
    if expire is not None:
        body["expireTime"] = rfc3339(expire)
    if new_session is not None:
        body["newSessionExpireTime"] = rfc3339(new_session)
    if constraints is not None:
        setup_json = constraints.setup_json(resolved)
        if setup_json:
            body["bidiGenerateContentSetup"] = setup_json
        mask = constraints.field_mask(setup_json)
        if mask:
            body["fieldMask"] = mask
    origin = rest_base_url(resolved, base_url=base_url, allow_insecure=allow_insecure)
    url = f"{origin}/{_TOKEN_API_VERSION}/auth_tokens"
    reply = await _request(
        "creating an ephemeral token", resolved, "POST", url, client=client, json_body=body
    )
    name = reply.get("name") if isinstance(reply, dict) else None
    if not isinstance(name, str) or not name:
        raise RemoteProtocolError("creating an ephemeral token: the response has no token name")
    log.info("created an ephemeral token (uses=%d, expires %s)", uses, reply.get("expireTime") or "default")
    return EphemeralToken(
        name,
        expire_time=_parse_time(reply.get("expireTime")) or expire,
        new_session_expire_time=_parse_time(reply.get("newSessionExpireTime")) or new_session,
    )
