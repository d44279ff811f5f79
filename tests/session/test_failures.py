"""Typed failures: refused setups, bad credentials, quota, malformed frames, exhausted retries, bad
arguments at the call, and secrets that never leak."""

from __future__ import annotations

import json
import logging

import pytest
import trio

from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, FaultConfig, ServiceLimits, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import (
    AuthError,
    ConfigError,
    ContextWindowError,
    LocalProtocolError,
    QuotaError,
    ReconnectError,
    RemoteProtocolError,
    SessionClosedError,
    SetupRejectedError,
)
from livemesh.session import RetryPolicy, SessionConfig, open_session
from tests.session.conftest import make_config

SECRET = "sk-SECRET-do-not-leak-42"


async def test_unknown_model_is_a_setup_rejection(emu: Emulator) -> None:
    with trio.fail_after(5), pytest.raises(SetupRejectedError) as info:
        async with open_session(make_config(emu, model="gemini-live-9-imaginary")):
            pass  # pragma: no cover
    assert info.value.code == 1008
    assert "not found" in (info.value.reason or "")


async def test_bad_key_is_an_auth_error_and_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with open_emulator(EmulatorConfig(api_keys=frozenset({"the-good-key"}))) as emu:
        config = make_config(emu, auth=ApiKey(SECRET))
        with trio.fail_after(5), pytest.raises(AuthError) as info:
            async with open_session(config):
                pass  # pragma: no cover
    for text in (str(info.value), repr(info.value), repr(config), str(config), caplog.text):
        assert SECRET not in text
    assert info.value.code == 1008


async def test_quota_close_is_a_quota_error() -> None:
    async with open_emulator(EmulatorConfig(max_concurrent_per_key=1)) as emu:
        with trio.fail_after(5):
            async with open_session(make_config(emu)):
                with pytest.raises(QuotaError) as info:
                    async with open_session(make_config(emu)):
                        pass  # pragma: no cover
    assert info.value.code == 1011
    assert "RESOURCE_EXHAUSTED" in (info.value.reason or "")


async def test_malformed_frames_fail_only_that_session(emu: Emulator) -> None:
    bad_config = EmulatorConfig(faults=FaultConfig(malformed_probability=1.0))
    async with open_emulator(bad_config) as bad_emu:
        outcome: dict[str, object] = {}

        async def broken() -> None:
            with pytest.raises(RemoteProtocolError) as info:
                async with open_session(make_config(bad_emu)) as session:
                    await session.send_client_content("hello")
                    await trio.sleep_forever()  # cancelled when the session fails
            outcome["broken"] = info.value

        async def healthy() -> None:
            async with open_session(make_config(emu)) as session:
                for i in range(3):
                    outcome[f"healthy{i}"] = await session.ask(f"hi {i}")

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(broken)
                nursery.start_soon(healthy)
    assert isinstance(outcome["broken"], RemoteProtocolError)
    assert "malformed server frame" in str(outcome["broken"])
    assert outcome["healthy2"] == "You said: hi 2"


async def test_retries_are_bounded_when_the_service_is_gone() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()  # nothing listens there now
    config = SessionConfig(
        model="gemini-2.0-flash-live-001",
        auth=ApiKey("k"),
        base_url=f"ws://127.0.0.1:{port}",
        retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002),
    )
    with trio.fail_after(5), pytest.raises(ReconnectError) as info:
        async with open_session(config):
            pass  # pragma: no cover
    assert "gave up after 2" in str(info.value)


async def test_two_modalities_refused_before_connecting(emu: Emulator) -> None:
    with pytest.raises(ConfigError, match="one response modality"):
        async with open_session(
            make_config(emu), generation_config={"response_modalities": ["TEXT", "AUDIO"]}
        ):
            pass  # pragma: no cover
    with pytest.raises(ConfigError, match="one response modality"):
        SessionConfig.from_dict({"model": "m", "response_modalities": ["TEXT", "AUDIO"]})
    assert emu.session_ids() == []


async def test_bad_send_arguments_fail_at_the_call(emu: Emulator) -> None:
    with trio.fail_after(5):
        async with open_session(make_config(emu)) as session:
            before = session.statistics().messages_out
            with pytest.raises(ConfigError):
                await session.send_realtime_input(audio=b"\x00\x00", text="two at once")
            with pytest.raises(ConfigError):
                await session.send_realtime_input(audio=b"\x00")  # odd byte count: not 16-bit PCM
            with pytest.raises(ConfigError):
                await session.send_realtime_input()
            with pytest.raises(LocalProtocolError):
                await session.send_realtime_input(activity_start=True)  # automatic VAD is on
            with pytest.raises(ConfigError):
                await session.send_client_content(42)
            with pytest.raises(ConfigError):
                await session.send_tool_response([{"name": "f", "response": {}}])  # no id
            with pytest.raises(ConfigError):
                await session.send_client_content({"role": "user", "parts": [{"text": {"not": "text"}}]})
            assert session.statistics().messages_out == before
            assert await session.ask("ok") == "You said: ok"
    with pytest.raises(SessionClosedError):
        await session.send_client_content("after close")


async def test_a_server_echoing_the_key_never_gets_it_into_errors_or_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import trio_websocket

    caplog.set_level(logging.DEBUG)

    async def echoing_server(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()  # the setup
        await ws.aclose(1008, f"API key {SECRET} not valid.")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, echoing_server, "127.0.0.1", 0, None)
            config = SessionConfig(
                model="gemini-2.0-flash-live-001",
                auth=ApiKey(SECRET),
                base_url=f"ws://127.0.0.1:{server.port}",
            )
            with pytest.raises(AuthError) as info:
                async with open_session(config):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()
    assert info.value.code == 1008
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("livemesh"))
    for text in (str(info.value), repr(info.value), info.value.reason or "", ours):
        assert SECRET not in text
    assert "<redacted>" in str(info.value)


async def test_a_server_that_never_answers_setup_is_retried_then_given_up() -> None:
    import trio_websocket

    attempts = 0

    async def mute_server(request: trio_websocket.WebSocketRequest) -> None:
        nonlocal attempts
        attempts += 1
        ws = await request.accept()
        await ws.get_message()
        await trio.sleep_forever()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, mute_server, "127.0.0.1", 0, None)
            config = SessionConfig(
                model="gemini-2.0-flash-live-001",
                auth=ApiKey("k"),
                base_url=f"ws://127.0.0.1:{server.port}",
                setup_timeout=0.2,
                retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02),
            )
            with pytest.raises(ReconnectError, match="setupComplete"):
                async with open_session(config):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()
    assert attempts == 3


async def test_a_context_past_its_window_ends_with_a_context_window_error() -> None:
    """Without compression the service ends a session whose context outgrew the model's window:
    the error says so (it is not a setup rejection, and resuming would only repeat it)."""
    limits = ServiceLimits(context_window_default=200)
    async with open_emulator(EmulatorConfig(limits=limits)) as emu:
        with trio.fail_after(10), pytest.raises(ContextWindowError) as info:
            async with open_session(make_config(emu)) as session:
                for n in range(100):  # ~12 tokens a turn: the window is full long before the end
                    await session.ask(f"turn number {n} of a long conversation")
        assert info.value.code == 1007
        assert "context window" in str(info.value) and "context_window_compression" in str(info.value)
        assert not isinstance(info.value, SetupRejectedError)
        # The same conversation with compression is unlimited: the oldest turns are cut instead.
        config = make_config(emu, context_window_compression={"sliding_window": {}})
        with trio.fail_after(10):
            async with open_session(config) as session:
                for n in range(100):
                    await session.ask(f"turn number {n} of a long conversation")
                stats = json.loads(await session.ask("stats"))
        assert stats["compressions"] >= 1
        assert stats["compressed_texts"] + stats["texts"] == [
            f"turn number {n} of a long conversation" for n in range(100)
        ]
