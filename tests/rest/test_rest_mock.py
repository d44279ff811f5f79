"""The REST client's request shapes and error mapping, against httpx.MockTransport (no sockets)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing

from livemesh import wire
from livemesh.auth import ApiKey, EphemeralToken, VertexAI
from livemesh.errors import AuthError, ConfigError, QuotaError, RemoteProtocolError
from livemesh.rest import (
    FALLBACK_MODELS,
    LiveConnectConstraints,
    ModelInfo,
    ModelResolver,
    RestError,
    choose_model,
    create_ephemeral_token,
    list_live_models,
    resolve_model,
    rfc3339,
)

SENTINEL = "SENTINEL-KEY-9f3a1c"
KEY = ApiKey(SENTINEL)
BASE = "https://gen.test"
NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _model(name: str, *methods: str) -> dict[str, Any]:
    return {"name": f"models/{name}", "supportedGenerationMethods": list(methods), "displayName": name}


def _models_handler(pages: list[list[dict[str, Any]]], seen: list[httpx.Request]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        index = int(request.url.params.get("pageToken") or "0")
        body: dict[str, Any] = {"models": pages[index]}
        if index + 1 < len(pages):
            body["nextPageToken"] = str(index + 1)
        return httpx.Response(200, json=body)

    return handler


async def test_list_live_models_filters_and_paginates() -> None:
    seen: list[httpx.Request] = []
    pages = [
        [
            _model("gemini-2.5-flash", "generateContent"),
            _model("gemini-2.0-flash-exp", "bidiGenerateContent"),
        ],
        [],
        [_model("gemini-live-2.5-flash-preview", "generateContent", "bidiGenerateContent")],
    ]
    async with _client(_models_handler(pages, seen)) as client:
        models = await list_live_models(KEY, base_url=BASE, client=client)
    assert [m.name for m in models] == ["models/gemini-2.0-flash-exp", "models/gemini-live-2.5-flash-preview"]
    assert [m.short_name for m in models] == ["gemini-2.0-flash-exp", "gemini-live-2.5-flash-preview"]
    assert len(seen) == 3
    for request in seen:
        assert request.method == "GET"
        assert request.url.path == "/v1beta/models"
        assert request.headers["x-goog-api-key"] == SENTINEL
        assert SENTINEL not in str(request.url)  # the key travels in a header, never the URL
    assert [r.url.params.get("pageToken") for r in seen] == [None, "1", "2"]


async def test_list_live_models_api_version_and_tolerant_parsing() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "models": [
                    {
                        "name": "bare-name",
                        "supported_generation_methods": ["bidiGenerateContent"],
                        "inputTokenLimit": "131072",
                        "future": {"x": 1},
                    },
                ]
            },
        )

    async with _client(handler) as client:
        (model,) = await list_live_models(KEY, base_url=BASE, client=client, api_version="v1")
    assert seen[0].url.path == "/v1/models"
    assert model == ModelInfo(
        name="models/bare-name",
        supported_generation_methods=("bidiGenerateContent",),
        input_token_limit=131072,
    )


async def test_pagination_loop_is_detected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"models": [], "nextPageToken": "same"})

    async with _client(handler) as client:
        with pytest.raises(RemoteProtocolError, match="repeated a page token"):
            await list_live_models(KEY, base_url=BASE, client=client)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (429, QuotaError),
        (400, RestError),
        (500, RestError),
        (503, RestError),
    ],
)
async def test_http_errors_are_typed_and_scrubbed(
    status: int, error: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        # A server that echoes the key back in its message: it must still not reach the error.
        body = {"error": {"code": status, "message": f"API key {SENTINEL} not valid", "status": "X"}}
        return httpx.Response(status, json=body)

    async with _client(handler) as client:
        with pytest.raises(error) as info:
            await list_live_models(KEY, base_url=BASE, client=client)
    exc = info.value
    assert str(status) in str(exc)
    assert "API key <redacted> not valid" in str(exc)
    assert SENTINEL not in str(exc) and SENTINEL not in repr(exc)
    assert SENTINEL not in repr(exc.args) and SENTINEL not in repr(vars(exc))
    if isinstance(exc, AuthError | QuotaError):
        assert exc.code == status
        assert exc.reason == "API key <redacted> not valid"
    else:
        assert isinstance(exc, RestError) and exc.status == status
    assert SENTINEL not in caplog.text


async def test_non_json_error_body_and_non_json_success() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("pageToken"):
            return httpx.Response(200, content=b"<html>")
        return httpx.Response(502, content=b"Bad gateway " + SENTINEL.encode())

    async with _client(handler) as client:
        with pytest.raises(RestError, match="HTTP 502: Bad gateway <redacted>"):
            await list_live_models(KEY, base_url=BASE, client=client)

    async with _client(lambda r: httpx.Response(200, content=b"<html>")) as client:
        with pytest.raises(RemoteProtocolError, match="not JSON"):
            await list_live_models(KEY, base_url=BASE, client=client)


async def test_transport_errors_become_rest_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect ({SENTINEL})", request=request)

    async with _client(handler) as client:
        with pytest.raises(RestError) as info:
            await list_live_models(KEY, base_url=BASE, client=client)
    assert info.value.status is None
    assert "ConnectError" in str(info.value) and SENTINEL not in str(info.value)


async def test_rest_refuses_tokens_vertex_listing_and_plain_http() -> None:
    with pytest.raises(ConfigError, match="ephemeral tokens only open Live sessions"):
        await list_live_models(EphemeralToken("auth_tokens/x"), base_url=BASE)
    with pytest.raises(ConfigError, match="Vertex"):
        await list_live_models(VertexAI(project="p", token_provider=_bearer), base_url=BASE)
    with pytest.raises(ConfigError, match="allow_insecure"):
        await list_live_models(KEY, base_url="http://gen.test")


@pytest.mark.parametrize("page_size", [0, -5, 2.5, True, "50"])
async def test_a_bad_page_size_is_refused_before_any_request(page_size: object) -> None:
    seen: list[httpx.Request] = []
    async with _client(_models_handler([[]], seen)) as client:
        with pytest.raises(ConfigError, match=f"page_size must be an int >= 1, not {page_size!r}"):
            await list_live_models(KEY, base_url=BASE, client=client, page_size=page_size)  # type: ignore[arg-type]
        assert seen == []
        await list_live_models(KEY, base_url=BASE, client=client, page_size=1)
        assert seen[0].url.params["pageSize"] == "1"


async def _bearer() -> str:
    return "ya29.bearer"


# --------------------------------------------------------------------------- resolution


def test_choose_model() -> None:
    assert choose_model("text", []) == "gemini-2.0-flash-exp"
    assert choose_model("image", ["models/x"]) == "gemini-2.0-flash-exp-image-generation"
    assert choose_model("audio", []) == "gemini-2.5-flash-native-audio-preview-12-2025"
    both = ["models/gemini-2.0-flash-live-001", "models/gemini-live-2.5-flash-preview"]
    assert choose_model("text", both) == "gemini-live-2.5-flash-preview"
    assert choose_model("text", both[:1]) == "gemini-2.0-flash-live-001"
    audio = ["gemini-2.5-flash-native-audio-preview-09-2025", "gemini-2.5-flash-native-audio-latest"]
    assert choose_model("audio", audio) == "gemini-2.5-flash-native-audio-latest"
    current = ["models/gemini-3.1-flash-live-preview", "models/gemini-3.8-live", *audio]
    assert choose_model("audio", current) == "gemini-3.8-live"  # the current model first
    assert choose_model("text", current) == "gemini-2.0-flash-exp"  # 3.8 answers in audio only
    assert choose_model("audio", audio, preferred={"audio": ("mine",)}, fallback={"audio": "fb"}) == "fb"
    with pytest.raises(ConfigError, match="kind"):
        choose_model("video", [])  # type: ignore[arg-type]


async def test_resolver_caches_per_key_and_expires() -> None:
    seen: list[httpx.Request] = []
    pages = [[_model("gemini-live-2.5-flash-preview", "bidiGenerateContent")]]
    now = [0.0]
    async with _client(_models_handler(pages, seen)) as client:
        resolver = ModelResolver(base_url=BASE, client=client, ttl_s=60, clock=lambda: now[0])
        assert await resolver.resolve("text", KEY) == "gemini-live-2.5-flash-preview"
        assert await resolver.resolve("audio", KEY) == FALLBACK_MODELS["audio"]
        assert len(seen) == 1
        other = ApiKey("other-key")
        await resolver.resolve("text", other)
        assert len(seen) == 2
        assert seen[1].headers["x-goog-api-key"] == "other-key"
        now[0] = 59.0
        await resolver.resolve("text", KEY)
        assert len(seen) == 2
        now[0] = 61.0
        await resolver.resolve("text", KEY)
        assert len(seen) == 3
        resolver.invalidate(KEY)
        await resolver.resolve("text", KEY)
        assert len(seen) == 4
        assert resolver.fetches == 4
        assert SENTINEL not in repr(resolver)


async def test_resolver_shares_one_request_between_concurrent_callers() -> None:
    release = trio.Event()
    seen: list[httpx.Request] = []

    async def slow_handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await release.wait()
        return httpx.Response(
            200, json={"models": [_model("gemini-2.0-flash-live-001", "bidiGenerateContent")]}
        )

    results: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow_handler)) as client:
        resolver = ModelResolver(base_url=BASE, client=client)

        async def one() -> None:
            results.append(await resolver.resolve("text", KEY))

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(one)
                await trio.testing.wait_all_tasks_blocked()
                release.set()
    assert results == ["gemini-2.0-flash-live-001"] * 20
    assert len(seen) == 1


async def test_resolver_error_policy(caplog: pytest.LogCaptureFixture) -> None:
    status = [500]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status[0], json={"error": {"message": f"boom {SENTINEL}"}})

    async with _client(handler) as client:
        resolver = ModelResolver(base_url=BASE, client=client)
        assert await resolver.resolve("audio", KEY) == FALLBACK_MODELS["audio"]
        assert await resolver.resolve("audio", KEY) == FALLBACK_MODELS["audio"]
        assert resolver.fetches == 2  # failures are not cached
        status[0] = 401
        with pytest.raises(AuthError):
            await resolver.resolve("audio", KEY)
        strict = ModelResolver(base_url=BASE, client=client, fallback_on_error=False)
        status[0] = 503
        with pytest.raises(RestError):
            await strict.resolve("text", KEY)
    assert "using fallback" in caplog.text
    assert SENTINEL not in caplog.text


async def test_resolver_without_listing_for_vertex_and_tokens() -> None:
    resolver = ModelResolver(base_url=BASE)
    vertex = VertexAI(project="p", token_provider=_bearer)
    assert await resolver.resolve("text", vertex) == FALLBACK_MODELS["text"]
    assert await resolver.resolve("image", EphemeralToken("auth_tokens/t")) == FALLBACK_MODELS["image"]
    assert resolver.fetches == 0
    with pytest.raises(ConfigError):
        await resolver.resolve("video", KEY)  # type: ignore[arg-type]


async def test_resolve_model_function() -> None:
    seen: list[httpx.Request] = []
    pages = [[_model("gemini-2.5-flash-native-audio-latest", "bidiGenerateContent")]]
    async with _client(_models_handler(pages, seen)) as client:
        assert await resolve_model("audio", KEY, base_url=BASE, client=client) == (
            "gemini-2.5-flash-native-audio-latest"
        )
        assert await resolve_model("audio", KEY, base_url=BASE, client=client)
        assert len(seen) == 2  # uncached without a resolver
        resolver = ModelResolver(base_url=BASE, client=client)
        await resolve_model("audio", KEY, resolver=resolver)
        await resolve_model("text", KEY, resolver=resolver)
        assert len(seen) == 3
        with pytest.raises(ConfigError):
            await resolve_model("audio", KEY, resolver=resolver, base_url=BASE)


# --------------------------------------------------------------------------- ephemeral tokens


def _token_handler(seen: list[httpx.Request], reply: dict[str, Any] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply or {"name": "auth_tokens/SENTINEL-TOKEN"})

    return handler


async def test_create_token_minimal_request_shape() -> None:
    seen: list[httpx.Request] = []
    async with _client(_token_handler(seen)) as client:
        token = await create_ephemeral_token(KEY, base_url=BASE, client=client)
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/v1alpha/auth_tokens"
    assert request.headers["x-goog-api-key"] == SENTINEL
    assert request.headers["content-type"] == "application/json"
    assert orjson.loads(request.content) == {"uses": 1}
    assert token == EphemeralToken("auth_tokens/SENTINEL-TOKEN")
    assert "SENTINEL-TOKEN" not in repr(token)


async def test_create_token_full_request_shape() -> None:
    seen: list[httpx.Request] = []
    reply = {
        "name": "auth_tokens/abc",
        "expireTime": "2026-01-02T03:34:05.678901Z",
        "newSessionExpireTime": "2026-01-02T03:05:05.678901Z",
    }
    setup = wire.Setup(
        model="models/ignored",
        generation_config=wire.GenerationConfig(response_modalities=["AUDIO"], temperature=0.7),
        session_resumption=wire.SessionResumptionConfig(),
    )
    constraints = LiveConnectConstraints(model="gemini-2.5-flash-native-audio-preview-12-2025", setup=setup)
    async with _client(_token_handler(seen, reply)) as client:
        token = await create_ephemeral_token(
            KEY,
            uses=3,
            expire_time=datetime.timedelta(minutes=30),
            new_session_expire_time=NOW + datetime.timedelta(minutes=1),
            constraints=constraints,
            base_url=BASE,
            client=client,
            now=lambda: NOW,
        )
    body = orjson.loads(seen[0].content)
    assert body == {
        "uses": 3,
        "expireTime": "2026-01-02T03:34:05.678901Z",
        "newSessionExpireTime": "2026-01-02T03:05:05.678901Z",
        "bidiGenerateContentSetup": {
            "model": "models/gemini-2.5-flash-native-audio-preview-12-2025",
            "generationConfig": {"responseModalities": ["AUDIO"], "temperature": 0.7},
            "sessionResumption": {},
        },
    }
    assert token.expire_time == NOW + datetime.timedelta(minutes=30)
    assert token.new_session_expire_time == NOW + datetime.timedelta(minutes=1)


def test_field_masks_follow_the_sdk_modes() -> None:
    setup = {
        "generationConfig": {"temperature": 0.7, "responseModalities": ["TEXT"]},
        "systemInstruction": {},
    }
    auth = KEY
    whole = LiveConnectConstraints(model="m", setup=setup)
    assert whole.field_mask(whole.setup_json(auth)) is None
    set_only = LiveConnectConstraints(model="m", setup=setup, lock_additional_fields=())
    assert set_only.field_mask(set_only.setup_json(auth)) == (
        "model,generationConfig.temperature,generationConfig.responseModalities,systemInstruction"
    )
    extra = LiveConnectConstraints(setup=setup, lock_additional_fields=["top_p", "temperature", "tools"])
    assert extra.field_mask(extra.setup_json(auth)) == (
        "generationConfig.temperature,generationConfig.responseModalities,systemInstruction,"
        "generationConfig.topP,tools"
    )
    with pytest.raises(ConfigError):
        LiveConnectConstraints(lock_additional_fields="temperature").field_mask({})


@pytest.mark.parametrize("model", ["", "   ", 3])
def test_an_empty_constraint_model_is_refused_not_dropped(model: object) -> None:
    # model="" used to remove the setup's own model from the token's lock, silently.
    with pytest.raises(ConfigError, match=r"LiveConnectConstraints\.model must be a non-empty model name"):
        LiveConnectConstraints(model=model, setup={"model": "models/gemini-live"})  # type: ignore[arg-type]


def test_an_empty_model_in_the_constraint_setup_is_refused_not_dropped() -> None:
    for setup in ({"model": "", "systemInstruction": {}}, wire.Setup(model="")):
        with pytest.raises(ConfigError, match="model must be a name"):
            LiveConnectConstraints(setup=setup).setup_json(KEY)
    kept = LiveConnectConstraints(setup={"model": "gemini-live", "systemInstruction": {}})
    assert kept.setup_json(KEY) == {"model": "models/gemini-live", "systemInstruction": {}}


async def test_create_token_sends_field_mask() -> None:
    seen: list[httpx.Request] = []
    constraints = LiveConnectConstraints(
        model="gemini-2.0-flash-exp",
        setup=wire.Setup(generation_config=wire.GenerationConfig(temperature=0.2)),
        lock_additional_fields=[],
    )
    async with _client(_token_handler(seen)) as client:
        await create_ephemeral_token(KEY, constraints=constraints, base_url=BASE, client=client)
    body = orjson.loads(seen[0].content)
    assert body["fieldMask"] == "model,generationConfig.temperature"


async def test_create_token_validation() -> None:
    for uses in (-1, True, 1.5):
        with pytest.raises(ConfigError, match="uses"):
            await create_ephemeral_token(KEY, uses=uses, base_url=BASE)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timezone-aware"):
        await create_ephemeral_token(KEY, expire_time=datetime.datetime(2030, 1, 1), base_url=BASE)
    with pytest.raises(ConfigError, match="future"):
        await create_ephemeral_token(KEY, expire_time=datetime.timedelta(0), base_url=BASE)
    with pytest.raises(ConfigError, match="after expire_time"):
        await create_ephemeral_token(
            KEY,
            expire_time=datetime.timedelta(minutes=1),
            new_session_expire_time=datetime.timedelta(minutes=2),
            base_url=BASE,
        )
    with pytest.raises(ConfigError, match="Vertex"):
        await create_ephemeral_token(VertexAI(project="p", token_provider=_bearer))
    with pytest.raises(ConfigError, match="ephemeral tokens only open Live sessions"):
        await create_ephemeral_token(EphemeralToken("auth_tokens/x"))


async def test_create_token_bad_replies() -> None:
    async with _client(lambda r: httpx.Response(200, json={"nope": 1})) as client:
        with pytest.raises(RemoteProtocolError, match="no token name"):
            await create_ephemeral_token(KEY, base_url=BASE, client=client)
    async with _client(lambda r: httpx.Response(429, json={"error": {"message": "slow down"}})) as client:
        with pytest.raises(QuotaError, match="HTTP 429: slow down"):
            await create_ephemeral_token(KEY, base_url=BASE, client=client)


def test_rfc3339() -> None:
    assert rfc3339(NOW) == "2026-01-02T03:04:05.678901Z"
    tz = datetime.timezone(datetime.timedelta(hours=2))
    assert rfc3339(datetime.datetime(2026, 1, 2, 5, 0, tzinfo=tz)) == "2026-01-02T03:00:00.000000Z"


def test_constraints_keep_the_setups_model_unless_overridden() -> None:
    setup = wire.Setup(model="gemini-2.0-flash-exp")
    assert LiveConnectConstraints(setup=setup).setup_json(KEY) == {"model": "models/gemini-2.0-flash-exp"}
    assert LiveConnectConstraints(model="m", setup=setup).setup_json(KEY) == {"model": "models/m"}
    assert LiveConnectConstraints().setup_json(KEY) == {}


async def test_cancelled_fetch_fails_waiters_cleanly_and_is_retried() -> None:
    release = trio.Event()
    calls: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            await trio.sleep_forever()
        await release.wait()
        return httpx.Response(
            200, json={"models": [_model("gemini-2.0-flash-live-001", "bidiGenerateContent")]}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        resolver = ModelResolver(base_url=BASE, client=client, fallback_on_error=False)
        waiter_error: list[BaseException] = []

        async def waiter() -> None:
            try:
                await resolver.resolve("text", KEY)
            except RestError as exc:
                waiter_error.append(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                fetch_scope = trio.CancelScope()

                async def fetcher() -> None:
                    with fetch_scope:
                        await resolver.resolve("text", KEY)

                nursery.start_soon(fetcher)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                fetch_scope.cancel()
            assert len(waiter_error) == 1 and "cancelled" in str(waiter_error[0])
            release.set()
            assert await resolver.resolve("text", KEY) == "gemini-2.0-flash-live-001"
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("status", "error_body", "expected"),
    [
        (
            400,
            {"message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"},
            AuthError,
        ),
        (400, {"message": "x", "details": [{"reason": "API_KEY_INVALID"}]}, AuthError),
        (400, {"message": "API key expired. Please renew the API key."}, AuthError),
        (400, {"message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}, RestError),
        (500, {"message": "x", "status": "UNAUTHENTICATED"}, AuthError),
        (503, {"message": "x", "status": "RESOURCE_EXHAUSTED"}, QuotaError),
    ],
)
async def test_google_error_shapes(
    status: int, error_body: dict[str, Any], expected: type[Exception]
) -> None:
    async with _client(lambda r: httpx.Response(status, json={"error": error_body})) as client:
        with pytest.raises(expected):
            await list_live_models(KEY, base_url=BASE, client=client)


async def test_unlimited_uses_is_zero() -> None:
    seen: list[httpx.Request] = []
    async with _client(_token_handler(seen)) as client:
        await create_ephemeral_token(KEY, uses=0, base_url=BASE, client=client)
    assert orjson.loads(seen[0].content) == {"uses": 0}


async def test_concurrent_waiters_share_the_fetchers_error_as_copies() -> None:
    release = trio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(401, json={"error": {"message": "nope", "status": "UNAUTHENTICATED"}})

    errors: list[AuthError] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        resolver = ModelResolver(base_url=BASE, client=client)

        async def one() -> None:
            try:
                await resolver.resolve("text", KEY)
            except AuthError as exc:
                errors.append(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(one)
                await trio.testing.wait_all_tasks_blocked()
                release.set()
    assert len(errors) == 5 and len({id(e) for e in errors}) == 5
    assert all(e.code == 401 and e.reason == "nope" for e in errors)
    assert resolver.fetches == 1
