"""The session core (sans-I/O) on gemini-3.8-live, frame by frame: what no emulator timing can
stage for certain. A turnComplete with interactionStatus IN_PROGRESS followed by a fresh
resumable handle is no quiet point (the interaction goes on); streamed arguments open one call in
the ledger, whole; the ledger never holds input on this model, and still does on older ones."""

from __future__ import annotations

from typing import Any

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.session import RotationPolicy, SessionConfig
from livemesh.session.builders import build_realtime_input
from livemesh.session.core import SessionCore, Step
from livemesh.session.lifecycle import core_config


class Driver:
    """A connected core and the frames it is fed (arrival numbers and times kept in order)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("model", "gemini-3.8-live")
        options.setdefault("generation_config", {"response_modalities": ["AUDIO"]})
        config = SessionConfig(
            auth=ApiKey("test-key-123"),
            session_resumption={},
            rotation=RotationPolicy(timer=False, prove_by_ping=False),
            **options,
        )
        self.core = SessionCore(core_config(config))
        self.now = 0.0
        self.index = -1
        self.handles = 0
        core = self.core
        core.start()
        core.dial(self.now)
        core.setup_answered(0.01, 100)
        core.opened(self.now)

    def frame(self, message: wire.ServerMessage) -> int:
        self.now += 0.01
        self.index += 1
        return self.core.frame(message, self.now, self.now, self.index, 100)

    def content(self, **fields: Any) -> int:
        return self.frame(wire.ServerMessage(server_content=wire.ServerContent(**fields)))

    def handle(self) -> int:
        self.handles += 1
        update = wire.SessionResumptionUpdate(new_handle=f"h{self.handles}", resumable=True)
        return self.frame(wire.ServerMessage(session_resumption_update=update))

    def spoken_turn(self, status: str) -> None:
        part = wire.Part(inline_data=wire.Blob(data=b"\x00\x00", mime_type="audio/pcm;rate=24000"))
        self.content(
            model_turn=wire.Content(parts=[part]), output_transcription=wire.Transcription(text="hi")
        )
        self.content(generation_complete=True)
        self.content(turn_complete=True, interaction_status=status)

    def tick(self, later: float = 0.0) -> Step:
        self.now += later
        return self.core.tick(self.now)


def test_in_progress_then_a_fresh_handle_is_no_quiet_point_the_move_waits_for_idle() -> None:
    driver = Driver()
    core = driver.core
    driver.handle()
    assert core.is_quiet
    driver.spoken_turn(wire.InteractionStatus.IN_PROGRESS)
    driver.handle()  # resumable, after the turnComplete: quiet by every other measure
    assert not core.is_quiet and not core.is_idle
    core.request_move("requested", None)
    for later in (0.0, 0.5, 1.0):
        assert driver.tick(later) is Step.WAIT  # never leaves mid-interaction
    driver.spoken_turn(wire.InteractionStatus.IDLE)
    driver.handle()
    assert core.is_quiet
    assert driver.tick(2.0) is Step.LEAVE


def test_an_interaction_without_status_ends_at_turn_complete_as_before() -> None:
    driver = Driver(model="gemini-2.0-flash-live-001", generation_config={"response_modalities": ["TEXT"]})
    driver.content(model_turn=wire.Content(parts=[wire.Part(text="hi")]))
    driver.content(turn_complete=True)
    driver.handle()
    assert driver.core.is_quiet


def test_streamed_arguments_open_one_whole_call() -> None:
    driver = Driver(tools=[{"name": "lookup"}], callbacks={"on_tool_call": lambda call: None})
    core = driver.core
    arg = wire.PartialArg(json_path="$.city", string_value="Par", will_continue=True)
    pieces = [
        wire.FunctionCall(id="c1", name="lookup", partial_args=[arg], will_continue=True),
        wire.FunctionCall(
            id="c1", partial_args=[wire.PartialArg(json_path="$.city", string_value="is")], will_continue=True
        ),
        wire.FunctionCall(id="c1", will_continue=False),
    ]
    for piece in pieces[:-1]:
        driver.frame(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[piece])))
        assert len(core.ledger) == 0 and not core.callback_calls
    driver.frame(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[pieces[-1]])))
    assert [p.call for p in core.ledger.pending] == [
        wire.FunctionCall(id="c1", name="lookup", args={"city": "Paris"})
    ]
    assert core.callback_calls == [[wire.FunctionCall(id="c1", name="lookup", args={"city": "Paris"})]]
    assert not core.ledger.pending[0].blocking  # NON_BLOCKING by default on this model


def held_after_a_blocking_call(**options: Any) -> bool:
    tools = [{"name": "approve", "behavior": "BLOCKING"}, {"name": "lookup"}]
    driver = Driver(tools=tools, callbacks={"on_tool_call": lambda call: None}, **options)
    core = driver.core
    call = wire.FunctionCall(id="c1", name="approve", args={})
    driver.frame(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[call])))
    assert core.ledger.pending[0].blocking
    core.take(build_realtime_input(audio=b"\x00\x00", manual_vad=False))
    return not core.sendable()


def test_the_ledger_holds_no_input_where_new_input_cancels_a_blocking_call() -> None:
    assert not held_after_a_blocking_call()
    older = {"model": "gemini-2.5-flash-native-audio-preview-12-2025"}
    assert held_after_a_blocking_call(**older)
    assert not held_after_a_blocking_call(**older, hold_input_during_tool_calls=False)


def test_a_call_declared_without_behavior_blocks_only_on_older_models() -> None:
    for model, blocking in (("gemini-3.8-live", False), ("gemini-2.0-flash-live-001", True)):
        driver = Driver(
            model=model, tools=[{"name": "lookup"}], callbacks={"on_tool_call": lambda call: None}
        )
        call = wire.FunctionCall(id="c1", name="lookup", args={})
        driver.frame(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=[call])))
        assert driver.core.ledger.pending[0].blocking is blocking
