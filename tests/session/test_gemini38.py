"""The session against the emulator's gemini-3.8-live: AUDIO answers that end on interactionStatus
IDLE, NON_BLOCKING calls by default with input flowing while tools run, a BLOCKING call cancelled
by new input, streamed arguments assembled before the tool runs, media parts in a tool's answer,
IN_PROGRESS never taken for a quiet point, and no ``mediaChunks`` on the wire, ever.

Every session here runs over a recording connection: each test ends by checking that no frame the
session wrote carried ``mediaChunks`` (the current model closes the connection with 1007 on it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import ConfigError
from livemesh.session import Session, SessionConfig, function_tool
from livemesh.transport import Connection, open_connection
from tests.session.conftest import make_config
from tests.session.test_audio import chunks, tone
from tests.session.workload import SILENCE

MODEL = "gemini-3.8-live"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


class Recorder:
    """Connects as the session would, keeping every client frame the session writes."""

    def __init__(self) -> None:
        self.sent: list[wire.ClientMessage] = []
        self.connections = 0

    @asynccontextmanager
    async def connect(self, url: str, headers: list[tuple[str, str]]) -> AsyncIterator[Connection]:
        async with open_connection(url, headers) as conn:
            self.connections += 1
            yield _Recording(conn, self.sent)  # type: ignore[misc]

    def of_kind(self, kind: str) -> list[wire.ClientMessage]:
        return [m for m in self.sent if m.kind == kind]


class _Recording:
    """A connection that notes the frames written through it (everything else passes through)."""

    def __init__(self, conn: Connection, sent: list[wire.ClientMessage]) -> None:
        self._conn = conn
        self._sent = sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def _note(self, frames: Sequence[bytes]) -> None:
        self._sent.extend(wire.decode_client(frame) for frame in frames)

    async def send(self, data: bytes) -> None:
        self._note([data])
        await self._conn.send(data)

    async def send_many(self, frames: Sequence[bytes]) -> None:
        self._note(frames)
        await self._conn.send_many(frames)

    async def send_fenced(self, frames: Sequence[bytes]) -> bytes:
        self._note(frames)
        return await self._conn.send_fenced(frames)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    assert recorder.sent, "the session sent nothing through the recorder"
    assert not [m for m in recorder.sent if m.realtime_input is not None and m.realtime_input.media_chunks]


def config_for(emu: Emulator, **options: Any) -> SessionConfig:
    options.setdefault("generation_config", {"response_modalities": ["AUDIO"]})
    options.setdefault("output_audio_transcription", {})
    return make_config(emu, model=MODEL, **options)


@asynccontextmanager
async def live(config: SessionConfig, recorder: Recorder) -> AsyncIterator[Session]:
    session = Session(config, connect=recorder.connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        try:
            yield session
        finally:
            await session.aclose()


async def model_turn(session: Session) -> tuple[str, wire.ServerContent]:
    """The output transcript up to the next turnComplete (whatever its interactionStatus)."""
    said: list[str] = []
    async for message in session:
        said.append(wire.output_transcript(message))
        content = message.server_content
        if content is not None and content.turn_complete:
            return "".join(said), content
    raise AssertionError("the session ended")  # pragma: no cover


async def stats(session: Session) -> dict[str, Any]:
    """The emulator's context counters, asked for as realtime text (ordered after earlier input)."""
    await session.send_realtime_input(text="stats")
    text, _ = await model_turn(session)
    result: dict[str, Any] = json.loads(text)
    return result


# ----------------------------------------------------------------------------- turns


async def test_an_audio_turn_ends_idle_and_ask_returns_the_transcript(
    emu: Emulator, recorder: Recorder
) -> None:
    config = config_for(emu, input_audio_transcription={})
    with trio.fail_after(10):
        async with live(config, recorder) as session:
            for chunk in chunks(tone(0.5)) + chunks(b"\x00\x00" * 16000):
                await session.send_realtime_input(audio=chunk)
            turn = await session.receive_turn()
            # a usage-only serverContent came first, then audio with its transcription in one message
            contents = [m for m in turn.messages if m.server_content is not None]
            (usage_only,) = [m for m in contents if m.server_content == wire.ServerContent()]
            assert usage_only.usage_metadata is not None
            spoken = [m for m in contents if m.server_content and m.server_content.model_turn]
            assert contents.index(usage_only) < contents.index(spoken[0])
            assert all(wire.output_transcript(m) and wire.extract_audio(m) for m in spoken)
            assert turn.input_transcript.startswith("[audio 0.5")
            assert turn.output_transcript.startswith("You said: [audio 0.5")
            assert turn.audio and turn.audio_chunks >= 2
            assert (turn.interaction_status, turn.model_turns, turn.text) == ("IDLE", 1, "")
            assert await session.ask("hello") == "You said: hello"
    assert recorder.of_kind("realtime_input")[0].realtime_input.audio is not None  # type: ignore[union-attr]


async def test_ask_refuses_audio_answers_it_cannot_read(emu: Emulator, recorder: Recorder) -> None:
    with trio.fail_after(10):
        async with live(config_for(emu, output_audio_transcription=None), recorder) as session:
            with pytest.raises(ConfigError, match="output_audio_transcription"):
                await session.ask("hello")
            assert not recorder.of_kind("client_content")  # refused before anything was sent
            await session.send_client_content("hello")  # the session is unharmed
            turn = await session.receive_turn()
            assert turn.audio and (turn.output_transcript, turn.interaction_status) == ("", "IDLE")


# ----------------------------------------------------------------------------- tools


async def test_a_call_is_non_blocking_by_default_and_input_flows_while_the_tool_runs(
    emu: Emulator, recorder: Recorder
) -> None:
    started, release = trio.Event(), trio.Event()

    async def lookup(q: int) -> dict[str, int]:
        started.set()
        await release.wait()
        return {"a": q + 1}

    with trio.fail_after(10):
        async with live(config_for(emu, tools=[lookup]), recorder) as session:
            await session.send_client_content('call lookup {"q": 1}')
            said, content = await model_turn(session)
            assert said == "Calling lookup."  # the model went on without the answer
            assert content.interaction_status == wire.InteractionStatus.IN_PROGRESS
            await started.wait()
            for _ in range(5):
                await session.send_realtime_input(audio=SILENCE)
            assert (await stats(session))["audio_chunks"] == 5  # not held behind the running call
            assert session.statistics().held == 0
            release.set()
            turn = await session.receive_turn()
            assert turn.output_transcript == 'lookup returned {"a": 2}'
            assert turn.interaction_status == wire.InteractionStatus.IDLE


async def test_new_input_cancels_a_blocking_call_instead_of_waiting_behind_it(
    emu: Emulator, recorder: Recorder
) -> None:
    started = trio.Event()
    outcome: list[str] = []

    async def approve() -> dict[str, bool]:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            outcome.append("cancelled")
        return {"ok": True}  # pragma: no cover

    tool = function_tool(approve, behavior=wire.Behavior.BLOCKING)
    with trio.fail_after(10):
        async with live(config_for(emu, tools=[tool]), recorder) as session:
            await session.send_client_content("call approve {}")
            await started.wait()
            for _ in range(3):
                await session.send_realtime_input(audio=SILENCE)
            await session.send_realtime_input(text="stats")  # new input: the service cancels the call
            turn = await session.receive_turn()
            assert turn.interrupted
            assert json.loads(turn.output_transcript)["audio_chunks"] == 3
            assert outcome == ["cancelled"]
            assert session.statistics().tool_cancellations == 1
            assert session.statistics().held == 0
    assert not recorder.of_kind("tool_response")  # a cancelled call is owed nothing


async def test_streamed_arguments_are_assembled_before_the_tool_runs(recorder: Recorder) -> None:
    seen: list[dict[str, Any]] = []

    def lookup(city: str, n: int, tags: list[str], where: dict[str, Any]) -> dict[str, str]:
        seen.append({"city": city, "n": n, "tags": tags, "where": where})
        return {"found": city}

    declared: list[wire.ToolCall] = []

    def on_tool_call(tool_call: wire.ToolCall) -> list[dict[str, Any]]:
        declared.append(tool_call)
        return [
            {"id": c.id, "name": c.name, "response": {"n": len(c.args or {})}}
            for c in tool_call.function_calls or []
        ]

    tools: list[Any] = [lookup, {"name": "other"}]
    args = {"city": "Paris", "n": 2, "tags": ["a", "b"], "where": {"lat": 48.5, "ok": True, "note": None}}
    async with open_emulator(EmulatorConfig(stream_function_args=True)) as emu:
        config = config_for(emu, tools=tools, callbacks={"on_tool_call": on_tool_call})
        with trio.fail_after(10):
            async with live(config, recorder) as session:
                await session.send_client_content(f"call lookup {json.dumps(args)}")
                turn = await session.receive_turn()
                assert seen == [args] and type(seen[0]["n"]) is int
                assert [(c.name, c.args) for c in turn.tool_calls] == [("lookup", args)]
                assert turn.output_transcript == 'Calling lookup.\nlookup returned {"found": "Paris"}'
                assert (
                    await session.ask('call other {"x": "y", "z": 1}')
                    == 'Calling other.\nother returned {"n": 2}'
                )
    assert [c.args for t in declared for c in t.function_calls or []] == [{"x": "y", "z": 1}]
    assert len(recorder.of_kind("tool_response")) == 2


async def test_a_tool_answers_with_media_parts(emu: Emulator, recorder: Recorder) -> None:
    def snapshot() -> wire.FunctionResponse:
        part = wire.FunctionResponsePart(inline_data=wire.Blob(data=JPEG, mime_type="image/jpeg"))
        return wire.FunctionResponse(response={"taken": True}, parts=[part])

    def frame() -> wire.Blob:
        return wire.Blob(data=JPEG, mime_type="image/jpeg")

    with trio.fail_after(10):
        async with live(config_for(emu, tools=[snapshot, frame]), recorder) as session:
            answer = await session.ask("call snapshot {}")
            assert answer == 'Calling snapshot.\nsnapshot returned {"taken": true}'
            assert await session.ask("call frame {}") == "Calling frame.\nframe returned {}"
    answers = [
        r
        for m in recorder.of_kind("tool_response")
        for r in m.tool_response.function_responses or []  # type: ignore[union-attr]
    ]
    assert [(r.name, r.response) for r in answers] == [("snapshot", {"taken": True}), ("frame", {})]
    for answer in answers:
        assert answer.id
        assert answer.parts == [
            wire.FunctionResponsePart(inline_data=wire.Blob(data=JPEG, mime_type="image/jpeg"))
        ]


async def test_send_tool_response_checks_every_key_and_takes_parts(emu: Emulator, recorder: Recorder) -> None:
    with trio.fail_after(10):
        async with live(config_for(emu, tools=[{"name": "lookup"}]), recorder) as session:
            await session.send_client_content("call lookup {}")
            async for message in session:
                if message.tool_call is not None:
                    (call,) = message.tool_call.function_calls or []
                    break
            with pytest.raises(ConfigError, match=r"'responses\[0\]\.respons' \(did you mean 'response'\?\)"):
                await session.send_tool_response({"id": call.id, "name": "lookup", "respons": {}})
            bad_part = {"inline_data": {"data": JPEG, "mimeType": "image/jpeg", "displayNme": "x"}}
            with pytest.raises(
                ConfigError, match=r"parts\[0\]\.inline_data\.displayNme' \(did you mean 'displayName'"
            ):
                await session.send_tool_response({"id": call.id, "parts": [bad_part]})
            assert not recorder.of_kind("tool_response")  # refused before anything was sent
            part = {"inline_data": {"data": JPEG, "mime_type": "image/jpeg"}}
            await session.send_tool_response(
                {"id": call.id, "name": "lookup", "response": {"a": 1}, "parts": [part]}
            )
            said, content = await model_turn(session)
            while content.interaction_status != wire.InteractionStatus.IDLE:
                said, content = await model_turn(session)
            assert said == 'lookup returned {"a": 1}'
    (sent,) = recorder.of_kind("tool_response")
    assert sent.tool_response is not None
    (answer,) = sent.tool_response.function_responses or []
    assert answer.parts == [
        wire.FunctionResponsePart(inline_data=wire.Blob(data=JPEG, mime_type="image/jpeg"))
    ]


# ----------------------------------------------------------------------------- moves and input


async def test_in_progress_is_not_a_quiet_point_a_rotation_waits_for_idle(recorder: Recorder) -> None:
    def lookup() -> dict[str, int]:
        return {"a": 1}

    # Each model turn starts speaking after a pause, so the result turn that follows IN_PROGRESS
    # has not begun when the rotation is asked for.
    emulator = EmulatorConfig(resumption_update_interval_s=0.05, first_chunk_delay_s=0.3)
    async with open_emulator(emulator) as emu:
        config = config_for(emu, tools=[lookup], session_resumption={})
        with trio.fail_after(10):
            async with live(config, recorder) as session:
                assert await session.ask("hello") == "You said: hello"
                await session.send_client_content("call lookup {}")
                said, content = await model_turn(session)
                assert said == "Calling lookup."
                assert content.interaction_status == wire.InteractionStatus.IN_PROGRESS
                assert not session.is_quiet
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(session.rotate)
                    said, content = await model_turn(session)
                    assert said == 'lookup returned {"a": 1}'
                    assert content.interaction_status == wire.InteractionStatus.IDLE
                assert session.connections == 2
                assert await session.ask("again") == "You said: again"
                counters = emu.stats(session.server_session_id or "")
                # the move waited for the interaction's end; the answer went out once
                assert (counters.connections, counters.disconnects_mid_turn) == (2, 0)
                assert counters.tool_responses == 1
                assert counters.texts == ("hello", "again")


async def test_media_chunks_are_sent_as_audio_and_video(emu: Emulator, recorder: Recorder) -> None:
    audio = wire.Blob(data=SILENCE, mime_type="audio/pcm;rate=16000")
    video = wire.Blob(data=JPEG, mime_type="image/jpeg")
    with trio.fail_after(10):
        async with live(config_for(emu), recorder) as session:
            await session.send(
                wire.ClientMessage(realtime_input=wire.RealtimeInput(media_chunks=[audio, video]))
            )
            await session.send_realtime_input(video=JPEG)
            await session.send_realtime_input(audio=SILENCE)
            counters = await stats(session)
            assert (counters["audio_chunks"], counters["video_frames"]) == (2, 2)
            assert session.connections == 1  # no 1007, no reconnect
    realtime = [m.realtime_input for m in recorder.of_kind("realtime_input")]
    assert [(rt.audio is not None, rt.video is not None) for rt in realtime if rt is not None][:4] == [
        (True, False),
        (False, True),
        (False, True),
        (True, False),
    ]
