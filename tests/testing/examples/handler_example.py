"""Property tests of an agent's message handler and its tools, fed by drawn server traffic."""

import trio
from hypothesis import given, settings

import livemesh
from livemesh import wire
from livemesh.testing import ScriptedServerFactory
from livemesh.testing import strategies as lst


class Transcript:
    """The agent's message handler: the text of each finished turn, and how many were cut short."""

    def __init__(self) -> None:
        self.turns: list[str] = []
        self.interrupted = 0
        self._pieces: list[str] = []

    def on_message(self, message: wire.ServerMessage) -> None:
        self._pieces.append(wire.extract_text(message) or wire.output_transcript(message))
        content = message.server_content
        if content is not None and content.interrupted:
            self.interrupted += 1
        if content is not None and content.turn_complete:
            self.turns.append("".join(self._pieces))
            self._pieces.clear()


TOOLS = {"get_time": lambda: {"time": "12:00"}}


def answer(tool_call: wire.ToolCall) -> list[wire.FunctionResponse]:
    """The agent's tools: every call gets an answer, even a call of a tool it does not have."""
    return [
        wire.FunctionResponse(
            id=call.id,
            name=call.name,
            response=TOOLS[call.name]() if call.name in TOOLS else {"error": f"no tool {call.name}"},
        )
        for call in tool_call.function_calls or []
    ]


@given(message=lst.server_messages())
def test_the_handler_survives_any_server_message(message: wire.ServerMessage) -> None:
    Transcript().on_message(message)


@settings(max_examples=25, deadline=None)  # each example opens a server and a session
@given(stream=lst.server_streams())
async def test_the_handler_and_the_tools_keep_up_with_any_session(
    stream: list[wire.ServerMessage], scripted_server: ScriptedServerFactory
) -> None:
    transcript = Transcript()
    # The server answers the setup, plays the stream, and waits for the answer to each toolCall.
    async with scripted_server(stream, await_tool_responses=True) as server:
        async with livemesh.open_session(
            model="gemini-live-2.5-flash-preview",  # a model that answers in text
            auth="test-key",
            base_url=server.url,
            response_modalities=["TEXT"],
            callbacks=livemesh.Callbacks(on_tool_call=answer),
            # The stream is all this server will ever send (no later handle, no second
            # connection): no resumption, and a drawn goAway does not move the session.
            session_resumption=False,
            rotation=livemesh.RotationPolicy(on_go_away=False),
        ) as session:
            with trio.fail_after(10):
                for _ in stream:  # the session hands over every message, setupComplete too
                    transcript.on_message(await session.receive())
    turns_ended = [m for m in stream if m.server_content is not None and m.server_content.turn_complete]
    assert len(transcript.turns) == len(turns_ended)
    assert server.unanswered_calls() == []
