"""The official SDK (google-genai, asyncio) against the emulator over TLS, unchanged.

The emulator runs in the trio test; the SDK runs in a worker thread with its own asyncio loop,
trusting the emulator's throwaway CA through ``SSL_CERT_FILE`` (as a user would).
"""

from __future__ import annotations

import array
import asyncio
import json
import math
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from google import genai
from google.genai import errors, types

from livemesh.emulator import Emulator, EmulatorConfig, ServiceLimits, open_emulator

T = TypeVar("T")
MODEL = "gemini-live-2.5-flash-preview"


@pytest.fixture
def ca_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return str(path)


def sdk(emu: Emulator, key: str = "test-key", version: str = "v1beta") -> genai.Client:
    return genai.Client(api_key=key, http_options={"base_url": emu.http_url, "api_version": version})


async def in_asyncio(fn: Callable[[], Awaitable[T]]) -> T:
    """Run an asyncio coroutine function in a worker thread, bounded by 10 s."""

    async def bounded() -> T:
        return await asyncio.wait_for(fn(), 10)

    with trio.fail_after(15):
        return await trio.to_thread.run_sync(lambda: asyncio.run(bounded()), abandon_on_cancel=True)


async def collect_turn(session: Any) -> list[types.LiveServerMessage]:
    messages = []
    async for message in session.receive():
        messages.append(message)
    return messages


def tls_config(ca_file: str, **fields: Any) -> EmulatorConfig:
    return EmulatorConfig(tls=True, ca_out=ca_file, **fields)


async def test_text_turn(ca_file: str) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:
        assert emu.url.startswith("wss://")

        async def scenario() -> str:
            config = {"response_modalities": ["TEXT"]}
            async with sdk(emu).aio.live.connect(model=MODEL, config=config) as session:
                await session.send_client_content(turns={"role": "user", "parts": [{"text": "hello"}]})
                return "".join(m.text or "" for m in await collect_turn(session))

        assert await in_asyncio(scenario) == "You said: hello"


async def test_audio_in_out_with_transcription(ca_file: str) -> None:
    speech = array.array("h", (int(6000 * math.sin(i / 5)) for i in range(16_000 // 2))).tobytes()

    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> tuple[str, str, int]:
            config = types.LiveConnectConfig(
                response_modalities=["AUDIO"],
                input_audio_transcription=types.AudioTranscriptionConfig(),
                output_audio_transcription=types.AudioTranscriptionConfig(),
            )
            async with sdk(emu).aio.live.connect(model=MODEL, config=config) as session:
                for start in range(0, len(speech), 3200):
                    blob = types.Blob(data=speech[start : start + 3200], mime_type="audio/pcm;rate=16000")
                    await session.send_realtime_input(audio=blob)
                await session.send_realtime_input(audio_stream_end=True)
                heard, said, audio = "", "", 0
                for message in await collect_turn(session):
                    content = message.server_content
                    if content and content.input_transcription:
                        heard += content.input_transcription.text or ""
                    if content and content.output_transcription:
                        said += content.output_transcription.text or ""
                    audio += len(message.data or b"")
                return heard, said, audio

        heard, said, audio = await in_asyncio(scenario)
        assert heard == "[audio 0.50s, 16000 bytes]"
        assert said == "You said: " + heard
        assert audio > 0 and audio % 2 == 0


async def test_tool_round_trip(ca_file: str) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> str:
            config = types.LiveConnectConfig(
                response_modalities=["TEXT"],
                tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="lookup")])],
            )
            async with sdk(emu).aio.live.connect(model=MODEL, config=config) as session:
                await session.send_client_content(
                    turns={"role": "user", "parts": [{"text": 'call lookup {"q": 1}'}]}
                )
                async for message in session.receive():
                    if message.tool_call:
                        (call,) = message.tool_call.function_calls or []
                        assert call.args == {"q": 1}
                        response = types.FunctionResponse(id=call.id, name=call.name, response={"a": 2})
                        await session.send_tool_response(function_responses=[response])
                        break
                return "".join(m.text or "" for m in await collect_turn(session))

        assert await in_asyncio(scenario) == 'lookup returned {"a": 2}'


async def test_resumption_and_go_away(ca_file: str) -> None:
    limits = ServiceLimits(connection_lifetime_s=1.0, go_away_notice_s=0.9)
    async with open_emulator(tls_config(ca_file, limits=limits)) as emu:

        async def scenario() -> tuple[float, list[str]]:
            client = sdk(emu)
            config = types.LiveConnectConfig(
                response_modalities=["TEXT"], session_resumption=types.SessionResumptionConfig()
            )
            handle, time_left = None, 0.0
            async with client.aio.live.connect(model=MODEL, config=config) as session:
                await session.send_client_content(
                    turns={"role": "user", "parts": [{"text": "my name is Alice"}]}
                )
                while not time_left:  # receive() stops at each turnComplete
                    async for message in session.receive():
                        update = message.session_resumption_update
                        if update and update.resumable and update.new_handle:
                            handle = update.new_handle
                        if message.go_away:
                            left = message.go_away.time_left
                            time_left = float(str(left).rstrip("s")) if left else -1  # "0.9s"
                            break
            config.session_resumption = types.SessionResumptionConfig(handle=handle)
            async with client.aio.live.connect(model=MODEL, config=config) as session:
                await session.send_client_content(turns={"role": "user", "parts": [{"text": "recall"}]})
                text = "".join(m.text or "" for m in await collect_turn(session))
            return time_left, json.loads(text)

        time_left, recalled = await in_asyncio(scenario)
        assert 0 < time_left <= 0.9
        assert recalled == ["my name is Alice"]


@pytest.mark.filterwarnings("ignore:The SDK's ephemeral token support is experimental")
async def test_ephemeral_token_one_use(ca_file: str) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> tuple[str, int]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                token = await sdk(emu, version="v1alpha").aio.auth_tokens.create(config={"uses": 1})
            assert token.name and token.name.startswith("auth_tokens/")
            client = sdk(emu, key=token.name, version="v1alpha")
            config = {"response_modalities": ["TEXT"]}
            async with client.aio.live.connect(model=MODEL, config=config) as session:
                await session.send_client_content(turns={"role": "user", "parts": [{"text": "token"}]})
                text = "".join(m.text or "" for m in await collect_turn(session))
            try:
                async with client.aio.live.connect(model=MODEL, config=config) as session:
                    await collect_turn(session)
            except errors.APIError as exc:
                return text, exc.code
            return text, 0

        assert await in_asyncio(scenario) == ("You said: token", 1008)


async def test_model_listing(ca_file: str) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> dict[str, list[str]]:
            pager = await sdk(emu).aio.models.list()
            return {m.name or "": list(m.supported_actions or []) async for m in pager}

        models = await in_asyncio(scenario)
        assert "bidiGenerateContent" in models[f"models/{MODEL}"]
        assert "bidiGenerateContent" not in models["models/gemini-2.5-flash"]
        assert models["models/gemini-3.8-live"] == ["countTokens", "bidiGenerateContent"]  # Live only
        assert next(iter(models)) == "models/gemini-3.8-live"  # current models first


@pytest.mark.parametrize(
    ("model", "modalities", "code"),
    [("gemini-2.5-flash", ["TEXT"], 1008), (MODEL, ["TEXT", "AUDIO"], 1007)],
)
async def test_error_closes_are_api_errors(
    ca_file: str, model: str, modalities: list[str], code: int
) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> tuple[int, str]:
            try:
                async with sdk(emu).aio.live.connect(
                    model=model, config={"response_modalities": modalities}
                ) as s:
                    await collect_turn(s)
            except errors.APIError as exc:
                return exc.code, str(exc)
            return 0, ""

        got, text = await in_asyncio(scenario)
        assert got == code
        if code == 1008:
            assert "is not found for API version v1beta" in text


async def test_vertex_express_transparent_resumption(ca_file: str) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> list[int]:
            client = genai.Client(
                vertexai=True, api_key="k", http_options={"base_url": emu.http_url, "api_version": "v1beta1"}
            )
            config = types.LiveConnectConfig(
                response_modalities=["TEXT"],
                session_resumption=types.SessionResumptionConfig(transparent=True),
            )
            indices = []
            async with client.aio.live.connect(model="gemini-live-2.5-flash", config=config) as session:
                await session.send_client_content(turns={"role": "user", "parts": [{"text": "a"}]})
                await session.send_client_content(turns={"role": "user", "parts": [{"text": "b"}]})
                while not indices or indices[-1] < 1:
                    async for message in session.receive():
                        update = message.session_resumption_update
                        if update and update.resumable:
                            index = update.last_consumed_client_message_index
                            indices.append(-1 if index is None else int(index))
                            break
            return indices

        indices = await in_asyncio(scenario)
        assert indices[0] == -1 and indices[-1] == 1


# ----------------------------------------------------------------------------- gemini-3.8-live

CURRENT = "gemini-3.8-live"


async def test_current_model_audio_turn_ends_with_interaction_status_idle(ca_file: str) -> None:
    speech = array.array("h", (int(6000 * math.sin(i / 5)) for i in range(16_000 // 2))).tobytes()

    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> tuple[list[types.LiveServerMessage], str, int]:
            config = types.LiveConnectConfig(
                response_modalities=["AUDIO"],
                output_audio_transcription=types.AudioTranscriptionConfig(language_codes=["en-US"]),
            )
            async with sdk(emu).aio.live.connect(model=CURRENT, config=config) as session:
                for start in range(0, len(speech), 3200):
                    blob = types.Blob(data=speech[start : start + 3200], mime_type="audio/pcm;rate=16000")
                    await session.send_realtime_input(audio=blob)
                await session.send_realtime_input(audio_stream_end=True)
                messages = await collect_turn(session)  # receive() stops at interactionStatus IDLE
                said = "".join(
                    m.server_content.output_transcription.text or ""
                    for m in messages
                    if m.server_content and m.server_content.output_transcription
                )
                together = sum(
                    1
                    for m in messages
                    if m.data and m.server_content and m.server_content.output_transcription
                )
                return messages, said, together

        messages, said, together = await in_asyncio(scenario)
        last = messages[-1].server_content
        assert last is not None and last.turn_complete
        assert last.interaction_status == types.InteractionStatus.IDLE
        assert said == "You said: [audio 0.50s, 16000 bytes]"
        assert together >= 2  # audio and its transcription in one message


async def test_current_model_tool_call_is_non_blocking_by_default(ca_file: str) -> None:
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> tuple[str, str]:
            config = types.LiveConnectConfig(
                response_modalities=["AUDIO"],
                output_audio_transcription=types.AudioTranscriptionConfig(),
                tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="lookup")])],
            )
            said, before_answer = "", ""
            async with sdk(emu).aio.live.connect(model=CURRENT, config=config) as session:
                await session.send_client_content(
                    turns={"role": "user", "parts": [{"text": 'call lookup {"q": 1}'}]}
                )
                call = None
                async for message in session.receive():  # one interaction: until IDLE
                    content = message.server_content
                    if message.tool_call:
                        (call,) = message.tool_call.function_calls or []
                    if content and content.output_transcription:
                        said += content.output_transcription.text or ""
                    if content and content.turn_complete and call is not None and not before_answer:
                        assert content.interaction_status == types.InteractionStatus.IN_PROGRESS
                        before_answer = said  # the model went on talking while the call was open
                        response = types.FunctionResponse(id=call.id, name=call.name, response={"a": 2})
                        await session.send_tool_response(function_responses=[response])
            return before_answer, said

        before_answer, said = await in_asyncio(scenario)
        assert before_answer == "Calling lookup."
        assert said == 'Calling lookup.lookup returned {"a": 2}'


@pytest.mark.filterwarnings("ignore:Setting .LiveConnectConfig.generation_config. is deprecated")
async def test_current_model_refuses_an_unknown_setup_field_with_the_services_code(ca_file: str) -> None:
    """The SDK sends ``generation_config.model_selection_config`` under its Python name on the
    Gemini API (the API's is ``modelConfig``): the service refuses the name it does not know."""
    async with open_emulator(tls_config(ca_file)) as emu:

        async def scenario() -> tuple[int, str]:
            config = types.LiveConnectConfig(
                response_modalities=["AUDIO"],
                generation_config=types.GenerationConfig(
                    model_selection_config=types.ModelSelectionConfig(feature_selection_preference="BALANCED")
                ),
            )
            try:
                async with sdk(emu).aio.live.connect(model=CURRENT, config=config) as session:
                    await collect_turn(session)
            except errors.APIError as exc:
                return exc.code, str(exc)
            return 0, ""

        code, text = await in_asyncio(scenario)
        assert code == 1007
        assert 'Unknown name "model_selection_config"' in text
