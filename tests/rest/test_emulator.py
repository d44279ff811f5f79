"""auth + endpoints + rest against the in-process emulator: real sockets on 127.0.0.1.

The Live side is driven with raw trio-websocket and the livemesh codec, connecting with exactly
the URL and headers :mod:`livemesh.endpoints` builds, so these tests prove the emulator (and the
SDK-shaped service it mimics) accepts them.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from livemesh import wire
from livemesh.auth import ApiKey, Auth, EphemeralToken, VertexAI
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.config import DEFAULT_LIVE_MODELS
from livemesh.endpoints import live_headers, live_url, model_name
from livemesh.errors import AuthError, ConfigError
from livemesh.rest import (
    FALLBACK_MODELS,
    LiveConnectConstraints,
    ModelResolver,
    RestError,
    create_ephemeral_token,
    list_live_models,
    resolve_model,
)

SENTINEL = "SENTINEL-KEY-9f3a1c"
KEY = ApiKey(SENTINEL)
TIMEOUT = 10
BAD_TOKEN = "Request had invalid authentication credentials."


@asynccontextmanager
async def live(
    auth: Auth, base_url: str, setup: wire.Setup, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[WebSocketConnection]:
    """A Live connection opened with livemesh's URL and headers; ``setup`` already sent."""
    url = live_url(auth, base_url=base_url)
    headers = [(k.encode(), v.encode()) for k, v in await live_headers(auth)]
    async with open_websocket_url(url, ssl_context, extra_headers=headers) as ws:
        await ws.send_message(wire.encode_client(wire.ClientMessage(setup=setup)).decode())
        yield ws


async def recv(ws: WebSocketConnection) -> wire.ServerMessage:
    return wire.decode_server(await ws.get_message())


async def expect_setup_complete(ws: WebSocketConnection) -> wire.ServerMessage:
    message = await recv(ws)
    assert message.setup_complete is not None, message
    return message


async def expect_close(ws: WebSocketConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    reason = info.value.reason
    return reason.code, reason.reason or ""


def text_setup(auth: Auth, model: str, **fields: object) -> wire.Setup:
    fields.setdefault("generation_config", wire.GenerationConfig(response_modalities=["TEXT"]))
    return wire.Setup(model=model_name(auth, model), **fields)  # type: ignore[arg-type]


async def say(ws: WebSocketConnection, text: str) -> None:
    turn = wire.Content(parts=[wire.Part(text=text)], role="user")
    message = wire.ClientMessage(client_content=wire.ClientContent(turns=[turn], turn_complete=True))
    await ws.send_message(wire.encode_client(message).decode())


async def reply_parts(ws: WebSocketConnection) -> list[wire.Part]:
    """Every model-turn part up to turnComplete."""
    parts: list[wire.Part] = []
    while True:
        message = await recv(ws)
        content = message.server_content
        if content is None:
            continue
        if content.model_turn is not None:
            parts.extend(content.model_turn.parts or [])
        if content.turn_complete:
            return parts


# --------------------------------------------------------------------------- models


async def test_list_live_models_from_the_emulator() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            models = await list_live_models(KEY, base_url=emu.http_url)
            assert [m.short_name for m in models] == list(DEFAULT_LIVE_MODELS)
            assert all(m.supports_live for m in models)
            # The Live URL works as the REST base too (same port), and v1 answers as well.
            again = await list_live_models(KEY, base_url=emu.url, api_version="v1")
            assert again == models


async def test_resolution_prefers_newer_models_when_listed() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            resolver = ModelResolver(base_url=emu.http_url)
            text = await resolver.resolve("text", KEY)
            audio = await resolver.resolve("audio", KEY)
            image = await resolver.resolve("image", KEY)
            assert (text, audio, image) == (
                "gemini-live-2.5-flash-preview",
                "gemini-3.8-live",
                FALLBACK_MODELS["image"],
            )
            assert resolver.fetches == 1
            # The resolved text model really opens a session.
            async with live(KEY, emu.url, text_setup(KEY, text)) as ws:
                await expect_setup_complete(ws)
                await say(ws, "hello")
                assert "".join(p.text or "" for p in await reply_parts(ws)) == "You said: hello"


async def test_resolution_falls_back_when_preferred_models_are_missing() -> None:
    only_fallbacks = tuple(FALLBACK_MODELS.values())
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig(live_models=only_fallbacks)) as emu:
            for kind in ("text", "audio", "image"):
                assert await resolve_model(kind, KEY, base_url=emu.http_url) == FALLBACK_MODELS[kind]
            text = await resolve_model("text", KEY, base_url=emu.http_url)
            async with live(KEY, emu.url, text_setup(KEY, text)) as ws:
                await expect_setup_complete(ws)
            # What the resolver protects against: a preferred model this key cannot use.
            async with live(KEY, emu.url, text_setup(KEY, "gemini-live-2.5-flash-preview")) as ws:
                code, reason = await expect_close(ws)
            assert code == 1008
            assert reason.startswith(
                "models/gemini-live-2.5-flash-preview is not found for API version v1beta"
            )


async def test_bad_key_is_an_auth_error_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig(api_keys=frozenset({"the-good-key"}))) as emu:
            with pytest.raises(AuthError) as info:
                await list_live_models(KEY, base_url=emu.http_url)
            assert "API key not valid" in str(info.value)
            with pytest.raises(AuthError):
                await create_ephemeral_token(KEY, base_url=emu.http_url)
            # The resolver does not hide a bad key behind a fallback.
            with pytest.raises(AuthError):
                await resolve_model("text", KEY, base_url=emu.http_url)
            # And the Live side refuses it with the real close code.
            async with live(KEY, emu.url, text_setup(KEY, "gemini-2.0-flash-exp")) as ws:
                assert await expect_close(ws) == (1008, "API key not valid. Please pass a valid API key.")
            assert len(await list_live_models(ApiKey("the-good-key"), base_url=emu.http_url)) > 0
    for text in (str(info.value), repr(info.value), repr(info.value.args), caplog.text):
        assert SENTINEL not in text


# --------------------------------------------------------------------------- ephemeral tokens


async def test_token_one_use_and_resume_is_free() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            token = await create_ephemeral_token(
                KEY, uses=1, expire_time=datetime.timedelta(minutes=30), base_url=emu.http_url
            )
            assert token.name.startswith("auth_tokens/")
            assert token.expire_time is not None and token.new_session_expire_time is not None
            assert token.new_session_expire_time <= token.expire_time
            assert live_url(token, base_url=emu.url).endswith(
                "v1alpha.GenerativeService.BidiGenerateContentConstrained"
            )
            setup = text_setup(
                token, "gemini-2.0-flash-exp", session_resumption=wire.SessionResumptionConfig()
            )
            handle = None
            async with live(token, emu.url, setup) as ws:
                await expect_setup_complete(ws)
                while handle is None:
                    update = (await recv(ws)).session_resumption_update
                    if update is not None and update.resumable and update.new_handle:
                        handle = update.new_handle
            # A second new session is refused: the one use is spent.
            async with live(token, emu.url, setup) as ws:
                assert await expect_close(ws) == (1008, BAD_TOKEN)
            # Resuming the first session is not a use.
            resume = text_setup(
                token, "gemini-2.0-flash-exp", session_resumption=wire.SessionResumptionConfig(handle=handle)
            )
            async with live(token, emu.url, resume) as ws:
                await expect_setup_complete(ws)


async def test_token_with_more_uses() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            token = await create_ephemeral_token(KEY, uses=2, base_url=emu.http_url)
            setup = text_setup(token, "gemini-2.0-flash-exp")
            for _ in range(2):
                async with live(token, emu.url, setup) as ws:
                    await expect_setup_complete(ws)
            async with live(token, emu.url, setup) as ws:
                assert await expect_close(ws) == (1008, BAD_TOKEN)


async def test_expired_tokens_are_refused() -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            no_new_sessions = await create_ephemeral_token(
                KEY, new_session_expire_time=past, base_url=emu.http_url
            )
            expired = await create_ephemeral_token(KEY, expire_time=past, base_url=emu.http_url)
            for token in (no_new_sessions, expired):
                async with live(token, emu.url, text_setup(token, "gemini-2.0-flash-exp")) as ws:
                    assert await expect_close(ws) == (1008, BAD_TOKEN)
            # A made-up token is refused the same way.
            fake = EphemeralToken("auth_tokens/not-issued")
            async with live(fake, emu.url, text_setup(fake, "gemini-2.0-flash-exp")) as ws:
                assert await expect_close(ws) == (1008, BAD_TOKEN)


async def test_constraints_override_the_clients_setup() -> None:
    """The token's locked fields win over what the client asks for (the service ignores the
    client's values for locked fields, per google-genai's docs): a client asking for TEXT on
    another model gets the locked model answering in AUDIO."""
    locked = wire.Setup(generation_config=wire.GenerationConfig(response_modalities=["AUDIO"]))
    constraints = LiveConnectConstraints(model="gemini-2.5-flash-native-audio-preview-12-2025", setup=locked)
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            token = await create_ephemeral_token(KEY, constraints=constraints, base_url=emu.http_url)
            async with live(token, emu.url, text_setup(token, "gemini-2.0-flash-exp")) as ws:
                await expect_setup_complete(ws)
                await say(ws, "hello")
                parts = await reply_parts(ws)
            assert parts and all(p.inline_data is not None and p.text is None for p in parts)
            assert all(p.inline_data.mime_type == "audio/pcm;rate=24000" for p in parts if p.inline_data)


async def test_constraint_naming_an_unusable_model_is_refused() -> None:
    constraints = LiveConnectConstraints(model="gemini-2.5-pro")  # listed, but not a Live model
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig()) as emu:
            token = await create_ephemeral_token(KEY, constraints=constraints, base_url=emu.http_url)
            async with live(token, emu.url, text_setup(token, "gemini-2.0-flash-exp")) as ws:
                code, reason = await expect_close(ws)
            assert code == 1008
            assert reason.startswith("models/gemini-2.5-pro is not found for API version v1alpha")


# --------------------------------------------------------------------------- Vertex AI


async def test_vertex_path_and_bearer_header() -> None:
    tokens = iter(["ya29.good", "ya29.stale"])

    async def provider() -> str:
        return next(tokens)

    vertex = VertexAI(project="proj", location="us-central1", token_provider=provider)
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig(bearer_tokens=frozenset({"ya29.good"}))) as emu:
            setup = text_setup(vertex, "gemini-2.0-flash-exp")
            assert (
                setup.model
                == "projects/proj/locations/us-central1/publishers/google/models/gemini-2.0-flash-exp"
            )
            async with live(vertex, emu.url, setup) as ws:
                await expect_setup_complete(ws)
                await say(ws, "hi")
                assert "".join(p.text or "" for p in await reply_parts(ws)) == "You said: hi"
            # The provider is asked again for the next connection; a refused bearer is 1008.
            async with live(vertex, emu.url, setup) as ws:
                assert await expect_close(ws) == (1008, BAD_TOKEN)


# --------------------------------------------------------------------------- TLS


async def test_tls_is_verified_by_default() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig(tls=True)) as emu:
            assert emu.http_url.startswith("https://") and emu.ca_pem is not None
            with pytest.raises(RestError, match="ConnectError"):
                await list_live_models(KEY, base_url=emu.http_url)  # the throwaway CA is not trusted
            context = ssl.create_default_context(cadata=emu.ca_pem.decode())
            async with httpx.AsyncClient(verify=context) as client:
                assert await list_live_models(KEY, base_url=emu.http_url, client=client)
                token = await create_ephemeral_token(KEY, base_url=emu.http_url, client=client)
            async with live(
                token, emu.url, text_setup(token, "gemini-2.0-flash-exp"), ssl_context=context
            ) as ws:
                await expect_setup_complete(ws)


# --------------------------------------------------------------------------- secrets


async def test_sentinel_never_leaks_through_a_whole_flow(caplog: pytest.LogCaptureFixture) -> None:
    """Key and token through listing, resolving, minting and a constrained session, with every
    logger at DEBUG (httpx, httpcore, trio-websocket, livemesh): neither secret shows up in a log
    line, a repr or an exception."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    wrong = ApiKey("SENTINEL-WRONG-KEY-77")
    with trio.fail_after(TIMEOUT):
        async with open_emulator(EmulatorConfig(api_keys=frozenset({SENTINEL}))) as emu:
            resolver = ModelResolver(base_url=emu.http_url)
            texts.append(repr(resolver))
            model = await resolver.resolve("text", KEY)
            token = await create_ephemeral_token(KEY, base_url=emu.http_url, uses=1)
            texts += [repr(token), str(token), repr(KEY), str(KEY)]
            async with live(token, emu.url, text_setup(token, model)) as ws:
                await expect_setup_complete(ws)
            async with live(token, emu.url, text_setup(token, model)) as ws:
                await expect_close(ws)
            with pytest.raises(ConfigError) as config_error:
                await list_live_models(token.name, base_url=emu.http_url)  # a token cannot list
            with pytest.raises(AuthError) as auth_error:
                await resolver.resolve("audio", wrong)
            async with live(wrong, emu.url, text_setup(wrong, model)) as ws:
                await expect_close(ws)
    for error in (config_error.value, auth_error.value):
        texts += [str(error), repr(error), repr(error.args), repr(vars(error))]
    secrets = (SENTINEL, wrong.key, token.name, token.name.removeprefix("auth_tokens/"))
    for text in [*texts, caplog.text]:
        for secret in secrets:
            assert secret not in text
