"""Our ephemeral-token request against the official SDK's, for the same settings (the oracle).

google-genai is used only here, in tests; it sends through an httpx client we hand it, so both
requests are captured by the same MockTransport.
"""

from __future__ import annotations

import datetime
import warnings
from typing import Any

import httpx
import orjson
from google import genai
from google.genai import types

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.rest import LiveConnectConstraints, create_ephemeral_token

EXPIRE = datetime.datetime(2026, 1, 2, 3, 34, 5, tzinfo=datetime.UTC)
NEW_SESSION = datetime.datetime(2026, 1, 2, 3, 5, 5, tzinfo=datetime.UTC)


def _capture() -> tuple[list[httpx.Request], httpx.AsyncClient]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"name": "auth_tokens/x"})

    return seen, httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Times as datetimes (RFC 3339 spellings differ: ``Z`` vs ``+00:00``); mask paths camelCase
    (the SDK leaves additional generationConfig names snake_case; protobuf JSON wants camel)."""
    out = dict(body)
    for key in ("expireTime", "newSessionExpireTime"):
        if key in out:
            out[key] = datetime.datetime.fromisoformat(out[key])
    if "fieldMask" in out:
        out["fieldMask"] = out["fieldMask"].replace("top_p", "topP")
    return out


async def _sdk_body(config: types.CreateAuthTokenConfig) -> dict[str, Any]:
    seen, client = _capture()
    async with client:
        sdk = genai.Client(
            api_key="K",
            http_options=types.HttpOptions(
                api_version="v1alpha", base_url="https://gen.test", httpx_async_client=client
            ),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "token creation is experimental"
            await sdk.aio.auth_tokens.create(config=config)
    (request,) = seen
    assert request.url.path == "/v1alpha/auth_tokens"
    assert request.headers["x-goog-api-key"] == "K"
    return _normalise(orjson.loads(request.content))


async def _our_body(**kwargs: Any) -> dict[str, Any]:
    seen, client = _capture()
    async with client:
        await create_ephemeral_token(ApiKey("K"), base_url="https://gen.test", client=client, **kwargs)
    (request,) = seen
    assert request.url.path == "/v1alpha/auth_tokens"
    assert request.headers["x-goog-api-key"] == "K"
    return _normalise(orjson.loads(request.content))


async def test_plain_token_matches_the_sdk() -> None:
    sdk = await _sdk_body(
        types.CreateAuthTokenConfig(uses=1, expire_time=EXPIRE, new_session_expire_time=NEW_SESSION)
    )
    ours = await _our_body(uses=1, expire_time=EXPIRE, new_session_expire_time=NEW_SESSION)
    assert ours == sdk


async def test_constrained_token_matches_the_sdk_in_every_lock_mode() -> None:
    sdk_constraints = types.LiveConnectConstraints(
        model="gemini-2.0-flash-exp",
        config=types.LiveConnectConfig(
            response_modalities=[types.Modality.TEXT],
            temperature=0.5,
            session_resumption=types.SessionResumptionConfig(),
        ),
    )
    setup = wire.Setup(
        generation_config=wire.GenerationConfig(response_modalities=["TEXT"], temperature=0.5),
        session_resumption=wire.SessionResumptionConfig(),
    )
    for lock in (None, [], ["top_p"]):
        sdk = await _sdk_body(
            types.CreateAuthTokenConfig(
                uses=2, live_connect_constraints=sdk_constraints, lock_additional_fields=lock
            )
        )
        ours = await _our_body(
            uses=2,
            constraints=LiveConnectConstraints(
                model="gemini-2.0-flash-exp", setup=setup, lock_additional_fields=lock
            ),
        )
        assert ours == sdk, lock
