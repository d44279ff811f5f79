"""The scripted server: setup handling, playback, actions, faults, recording, and a livemesh
session driven by drawn streams through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest
import trio
import trio.testing
from hypothesis import given
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

import livemesh
from livemesh import wire
from livemesh.testing import (
    ClientProtocolError,
    Close,
    Drop,
    Expect,
    ScriptedServer,
    open_scripted_server,
)
from livemesh.testing import strategies as lst
from livemesh.wire import messages as m
from tests.testing.budget import NETWORK

SETUP = m.ClientMessage(setup=m.Setup(model="models/gemini-3.8-live"))
HELLO = m.ClientMessage(client_content=wire.client_content("hello"))
SETUP_COMPLETE = m.ServerMessage(setup_complete=m.SetupComplete())


def _text(text: str) -> m.ServerMessage:
    return m.ServerMessage(server_content=m.ServerContent(model_turn=m.Content(parts=[m.Part(text=text)])))


DONE = m.ServerMessage(server_content=m.ServerContent(turn_complete=True))
CALL = m.ServerMessage(tool_call=m.ToolCall(function_calls=[m.FunctionCall(id="c1", name="f", args={})]))


def _answer(*ids: str) -> m.ClientMessage:
    responses = [m.FunctionResponse(id=i, name="f", response={}) for i in ids]
    return m.ClientMessage(tool_response=m.ToolResponse(function_responses=responses))


@asynccontextmanager
async def _client(server: ScriptedServer, query: str = "") -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(server.live_url + query) as ws:
        yield ws


async def _send(ws: WebSocketConnection, message: m.ClientMessage) -> None:
    await ws.send_message(wire.encode_client(message).decode())


async def _next(ws: WebSocketConnection) -> m.ServerMessage:
    frame = await ws.get_message()
    assert isinstance(frame, bytes | bytearray), "server messages travel as binary frames"
    return wire.decode_server(bytes(frame))


async def test_the_setup_is_answered_then_the_script_is_played_and_recorded() -> None:
    script = [_text("a"), _text("b"), DONE]
    async with open_scripted_server(script) as server:
        async with _client(server, "?key=sekrit-key") as ws:
            await _send(ws, SETUP)
            assert await _next(ws) == SETUP_COMPLETE
            assert [await _next(ws) for _ in script] == script
            await _send(ws, HELLO)
            with trio.fail_after(5):
                await server.wait_for(lambda: len(server.received) == 1)
        with trio.fail_after(5):
            await server.wait_played()
            await server.wait_for(lambda: server.connections[0].closed)
    (conn,) = server.connections
    assert conn.setup == SETUP.setup and conn.received == [HELLO] == server.received
    assert conn.sent == [SETUP_COMPLETE, *script] == server.sent
    assert conn.path == "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    assert conn.close_code == 1000 and conn.played and not conn.errors
    assert "sekrit" not in repr(conn) + repr(server) + conn.path


async def test_a_script_may_bring_its_own_setup_complete() -> None:
    own = m.ServerMessage(setup_complete=m.SetupComplete(session_id="s-1"))
    async with open_scripted_server([own, DONE]) as server, _client(server) as ws:
        await _send(ws, SETUP)
        assert await _next(ws) == own
        assert await _next(ws) == DONE


async def test_without_answer_setup_a_script_can_refuse_the_session() -> None:
    refusal = Close(1008, "Requested entity was not found.")
    async with open_scripted_server([refusal], answer_setup=False) as server, _client(server) as ws:
        await _send(ws, SETUP)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
    assert closed.value.reason is not None
    assert (closed.value.reason.code, closed.value.reason.reason) == (1008, "Requested entity was not found.")
    assert server.connections[0].sent == []


async def test_raw_frames_go_out_exactly_as_given() -> None:
    script = [b'{"goAway": {"timeLeft": "1s"}}', '{"setupComplete": {}}', {"zzNew": {"a": 1}}]
    async with open_scripted_server(script) as server, _client(server) as ws:
        await _send(ws, SETUP)
        await ws.get_message()
        assert await ws.get_message() == b'{"goAway": {"timeLeft": "1s"}}'
        assert await ws.get_message() == '{"setupComplete": {}}'
        assert orjson.loads(await ws.get_message()) == {"zzNew": {"a": 1}}


async def test_text_frames_when_asked() -> None:
    async with open_scripted_server([DONE], frames="text") as server, _client(server) as ws:
        await _send(ws, SETUP)
        assert isinstance(await ws.get_message(), str)
        assert wire.decode_server(await ws.get_message()) == DONE


async def test_expect_holds_the_script_until_the_client_sends_a_match() -> None:
    async with open_scripted_server([CALL, Expect("tool_response"), DONE]) as server, _client(server) as ws:
        conn_sent = lambda: server.connections[0].sent  # noqa: E731
        await _send(ws, SETUP)
        await _next(ws)
        assert await _next(ws) == CALL
        await _send(ws, HELLO)  # not a tool response: the script must keep waiting
        with trio.fail_after(5):
            await server.wait_for(lambda: len(server.received) == 1)
        await trio.testing.wait_all_tasks_blocked()
        assert conn_sent() == [SETUP_COMPLETE, CALL]
        await _send(ws, _answer("c1"))
        assert await _next(ws) == DONE


async def test_expect_where_and_any_kind() -> None:
    wanted = Expect(where=lambda message: message.tool_response is not None)
    assert not wanted.matches(HELLO) and wanted.matches(_answer("x"))
    assert Expect().matches(HELLO)
    assert not Expect("tool_response", where=lambda _: False).matches(_answer("x"))


async def test_close_and_drop_end_a_connection_as_the_service_would() -> None:
    async with open_scripted_server([Close(1011, "Internal error occurred.")], [Drop()]) as server:
        async with _client(server) as ws:
            await _send(ws, SETUP)
            await _next(ws)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason is not None and closed.value.reason.code == 1011
        async with _client(server) as ws:
            await _send(ws, SETUP)
            await _next(ws)
            with pytest.raises(ConnectionClosed) as dropped:
                await ws.get_message()
            assert dropped.value.reason is not None and dropped.value.reason.code == 1006  # no close frame


async def test_connections_play_their_scripts_in_order_then_idle() -> None:
    async with open_scripted_server([_text("first")], [_text("second")]) as server:
        for expected in ("first", "second", None):
            async with _client(server) as ws:
                await _send(ws, SETUP)
                assert await _next(ws) == SETUP_COMPLETE
                if expected is not None:
                    assert wire.extract_text(await _next(ws)) == expected
                await _send(ws, HELLO)
                with trio.fail_after(5):
                    await server.wait_for(lambda: len(server.received) == len(server.connections))
        with trio.fail_after(5):
            await server.wait_played()
    assert [c.index for c in server.connections] == [0, 1, 2]
    assert server.connections[2].sent == [SETUP_COMPLETE]


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        ([wire.encode_client(HELLO)], "the first message is 'client_content', not 'setup'"),
        ([b"{not json"], "does not decode"),
        ([wire.encode_client(SETUP), wire.encode_client(SETUP)], "a second 'setup'"),
    ],
)
async def test_a_client_that_breaks_the_protocol_is_closed_1007_and_fails_the_block(
    frames: list[bytes], error: str
) -> None:
    with pytest.raises(ClientProtocolError, match=error):
        async with open_scripted_server() as server, _client(server) as ws:
            for frame in frames:
                await ws.send_message(frame)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
            assert closed.value.reason is not None and closed.value.reason.code == 1007
    async with open_scripted_server(strict=False) as server, _client(server) as ws:
        await ws.send_message(b"{not json")
        with trio.fail_after(5):
            await server.wait_for(lambda: server.connections[0].closed)
    assert server.connections[0].errors


async def test_faults_now() -> None:
    async with open_scripted_server() as server:
        async with _client(server) as ws:
            await _send(ws, SETUP)
            await _next(ws)
            await server.send_go_away(time_left=2.5)
            assert (await _next(ws)).go_away == m.GoAway(time_left=m.Duration(2.5))
            await server.send(_text("now"), connection=0)
            assert wire.extract_text(await _next(ws)) == "now"
            await server.drop()
            with pytest.raises(ConnectionClosed) as dropped:
                await ws.get_message()
            assert dropped.value.reason is not None and dropped.value.reason.code == 1006
        async with _client(server) as ws:
            await _send(ws, SETUP)
            await _next(ws)
            await server.close(1011, "The service is currently unavailable.", connection=1)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason is not None and closed.value.reason.code == 1011
        with pytest.raises(ValueError, match="no connection 7"):
            await server.drop(connection=7)


async def test_unanswered_calls_leave_out_the_answered_and_the_cancelled() -> None:
    two = m.ServerMessage(
        tool_call=m.ToolCall(
            function_calls=[m.FunctionCall(id="c2", name="f"), m.FunctionCall(id="c3", name="f")]
        )
    )
    cancel = m.ServerMessage(tool_call_cancellation=m.ToolCallCancellation(ids=["c3"]))
    async with open_scripted_server([CALL, two, cancel]) as server, _client(server) as ws:
        await _send(ws, SETUP)
        for _ in range(4):
            await _next(ws)
        assert server.unanswered_calls() == ["c1", "c2"]
        await _send(ws, _answer("c2"))
        with trio.fail_after(5):
            await server.wait_for(lambda: server.unanswered_calls() == ["c1"])


async def test_bad_arguments_fail_at_the_call() -> None:
    with pytest.raises(TypeError, match="script step"):
        async with open_scripted_server([42]):  # type: ignore[list-item]
            pass
    with pytest.raises(ValueError, match="frames"):
        async with open_scripted_server(frames="xml"):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match="close code"):
        Close(1006)
    with pytest.raises(ValueError, match="123 bytes"):
        Close(1011, "x" * 124)


async def test_an_error_in_the_block_comes_out_as_itself() -> None:
    with pytest.raises(KeyError):
        async with open_scripted_server():
            raise KeyError("mine")


# ----------------------------------------------------------------------------- a livemesh session


def _session(server: ScriptedServer, **options: object) -> livemesh.SessionConfig:
    return livemesh.SessionConfig.build(
        model="gemini-live-2.5-flash-preview",  # a text model: the script plays text
        auth="test-key",
        base_url=server.url,
        response_modalities=["TEXT"],
        # A script plays what it was given and nothing more (no later handle, no second
        # connection): resumption off, and a drawn goAway does not move the session.
        session_resumption=False,
        rotation=livemesh.RotationPolicy(on_go_away=False, timer=False),
        **options,
    )


HANDLE = m.ServerMessage(
    session_resumption_update=m.SessionResumptionUpdate(new_handle="h-1", resumable=True)
)


async def test_a_session_reads_a_non_ascii_server_frame() -> None:
    """A binary frame holding UTF-8 beyond ASCII (the service's frames are binary JSON)."""
    async with open_scripted_server([Expect("client_content"), _text("café ☕"), DONE, HANDLE]) as server:
        async with livemesh.open_session(_session(server)) as session:
            with trio.fail_after(5):
                assert await session.ask("hello") == "café ☕"


def _answer_all(tool_call: wire.ToolCall) -> list[wire.FunctionResponse]:
    return [
        wire.FunctionResponse(id=c.id, name=c.name, response={"ok": True})
        for c in tool_call.function_calls or []
    ]


@NETWORK
@given(stream=lst.server_streams())
async def test_a_session_hands_over_every_message_and_answers_every_call(
    stream: list[m.ServerMessage],
) -> None:
    callbacks = livemesh.Callbacks(on_tool_call=_answer_all)
    async with open_scripted_server(stream, await_tool_responses=True) as server:
        async with livemesh.open_session(_session(server, callbacks=callbacks)) as session:
            with trio.fail_after(10):
                received = [await session.receive() for _ in stream]  # setupComplete included
                await server.wait_for(lambda: not server.unanswered_calls())
    assert received == stream
