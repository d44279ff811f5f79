"""Composite strategies: realistic Live API traffic, as lists of messages in protocol order.

The field-derived strategies (:mod:`livemesh.testing.derived`) draw any valid message on its own;
these draw what a session really exchanges, in the order the service documents it
(ai.google.dev/api/live): a model turn is ``modelTurn`` chunks, then ``generationComplete``, then
``turnComplete`` carrying ``usageMetadata``; a barge-in is ``interrupted`` then ``turnComplete``
with no ``generationComplete``; ``toolCallCancellation`` follows an interruption and names calls
of that turn; a ``goAway`` warns before the connection ends and a last handle may follow it;
resumption handles arrive after turns, and ``{"newHandle": "", "resumable": false}`` while one
runs. Tool call ids and handles are unique within one drawn stream.

Client traffic mirrors it: a setup first (model, one response modality, function declarations,
resumption), then user turns (text turns, realtime text, audio ending with ``audioStreamEnd``,
or manual activity signals around audio) and tool responses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import attrs
from hypothesis import strategies as st

from livemesh.testing._fields import fields_of
from livemesh.testing.derived import JSON_OBJECTS
from livemesh.wire import messages as m

__all__ = [
    "ResponseModality",
    "cancelled_tool_calls",
    "client_streams",
    "go_aways",
    "interrupted_turns",
    "model_turns",
    "server_streams",
    "setups",
    "tool_call_turns",
    "tool_responses",
    "user_turns",
]

ResponseModality = Literal["TEXT", "AUDIO"]
"""A response modality: the model answers in text parts, or in 24 kHz PCM audio."""

WORDS = st.text(
    st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs")), min_size=1, max_size=24
)
"""Text a person or a model might say: any printable Unicode, never empty."""
IDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=16)
"""Tool call ids and resumption handles: opaque non-empty strings."""
FUNCTION_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
"""Function names as the API accepts them (letters, digits, underscores)."""
MODEL_NAMES = st.sampled_from(
    ["gemini-3.8-live", "gemini-3.1-flash-live-preview", "gemini-2.5-flash-native-audio-preview-12-2025"]
)
TOKENS = st.integers(0, 100_000)

OUTPUT_RATE = 24_000
INPUT_RATE = 16_000


def _pcm(max_samples: int = 240) -> st.SearchStrategy[bytes]:
    """16-bit little-endian PCM: an even number of bytes."""
    return st.integers(1, max_samples).flatmap(lambda n: st.binary(min_size=2 * n, max_size=2 * n))


def _has(cls: type, name: str) -> bool:
    return any(f.name == name for f in fields_of(cls))


def _set_if_known(obj: Any, **values: Any) -> Any:
    """``obj`` with the fields its class has set (a field a wire version lacks is skipped)."""
    known = {k: v for k, v in values.items() if _has(type(obj), k)}
    return attrs.evolve(obj, **known) if known else obj


def _fresh(draw: st.DrawFn, strategy: st.SearchStrategy[str], used: set[str]) -> str:
    """A value of ``strategy`` not in ``used`` (then added to it): ids unique within a stream."""
    value = draw(strategy.filter(lambda v: v not in used))
    used.add(value)
    return value


@attrs.define
class _Ids:
    """What must stay unique within one drawn stream."""

    calls: set[str] = attrs.Factory(set)
    handles: set[str] = attrs.Factory(set)


# ----------------------------------------------------------------------------- server pieces


def _usage(draw: st.DrawFn, modality: str) -> m.UsageMetadata:
    prompt, response = draw(TOKENS), draw(TOKENS)
    thoughts = draw(st.one_of(st.none(), TOKENS))
    usage = m.UsageMetadata(
        prompt_token_count=prompt,
        response_token_count=response,
        total_token_count=prompt + response + (thoughts or 0),
        prompt_tokens_details=[m.ModalityTokenCount(modality="TEXT", token_count=prompt)],
        response_tokens_details=[m.ModalityTokenCount(modality=modality, token_count=response)],
    )
    if thoughts is not None:
        usage.thoughts_token_count = thoughts
    return usage


def _chunk(draw: st.DrawFn, modality: str) -> m.ServerMessage:
    role = draw(st.sampled_from([None, "model"]))
    if modality == "TEXT":
        part = m.Part(text=draw(WORDS))
        return m.ServerMessage(server_content=m.ServerContent(model_turn=m.Content(parts=[part], role=role)))
    audio = m.Part(inline_data=m.Blob(data=draw(_pcm()), mime_type=f"audio/pcm;rate={OUTPUT_RATE}"))
    content = m.ServerContent(model_turn=m.Content(parts=[audio], role=role))
    if draw(st.booleans()):  # current models send the transcript with the audio, in one message
        content.output_transcription = m.Transcription(text=draw(WORDS))
    return m.ServerMessage(server_content=content)


def _chunks(draw: st.DrawFn, modality: str, min_size: int) -> list[m.ServerMessage]:
    return [_chunk(draw, modality) for _ in range(draw(st.integers(min_size, 4)))]


def _turn_complete(draw: st.DrawFn, modality: str, *, usage: bool) -> m.ServerMessage:
    content = _set_if_known(
        m.ServerContent(turn_complete=True),
        interaction_status=draw(st.sampled_from([None, "IDLE"])),
    )
    return m.ServerMessage(server_content=content, usage_metadata=_usage(draw, modality) if usage else None)


def _modality(draw: st.DrawFn, modality: ResponseModality | None) -> str:
    return modality if modality is not None else draw(st.sampled_from(["TEXT", "AUDIO"]))


def _model_turn(draw: st.DrawFn, modality: str) -> list[m.ServerMessage]:
    return [
        *_chunks(draw, modality, 1),
        m.ServerMessage(server_content=m.ServerContent(generation_complete=True)),
        _turn_complete(draw, modality, usage=True),
    ]


def _interrupted_turn(draw: st.DrawFn, modality: str) -> list[m.ServerMessage]:
    return [
        *_chunks(draw, modality, 0),
        m.ServerMessage(server_content=m.ServerContent(interrupted=True)),
        _turn_complete(draw, modality, usage=draw(st.booleans())),
    ]


def _calls(draw: st.DrawFn, ids: _Ids) -> list[m.FunctionCall]:
    return [
        m.FunctionCall(id=_fresh(draw, IDS, ids.calls), name=draw(FUNCTION_NAMES), args=draw(JSON_OBJECTS))
        for _ in range(draw(st.integers(1, 3)))
    ]


def _tool_call_turn(draw: st.DrawFn, modality: str, ids: _Ids) -> list[m.ServerMessage]:
    # The client answers between the call and the turn that uses the answer (BLOCKING calls).
    call = m.ServerMessage(tool_call=m.ToolCall(function_calls=_calls(draw, ids)))
    return [call, *_model_turn(draw, modality)]


def _cancelled_tool_call(draw: st.DrawFn, modality: str, ids: _Ids) -> list[m.ServerMessage]:
    calls = _calls(draw, ids)
    cancelled = draw(st.lists(st.sampled_from([c.id or "" for c in calls]), min_size=1, unique=True))
    return [
        m.ServerMessage(tool_call=m.ToolCall(function_calls=calls)),
        *_chunks(draw, modality, 0),
        m.ServerMessage(server_content=m.ServerContent(interrupted=True)),
        m.ServerMessage(tool_call_cancellation=m.ToolCallCancellation(ids=cancelled)),
        _turn_complete(draw, modality, usage=draw(st.booleans())),
    ]


def _handle(draw: st.DrawFn, ids: _Ids) -> m.ServerMessage:
    handle = _fresh(draw, IDS, ids.handles)
    return m.ServerMessage(
        session_resumption_update=m.SessionResumptionUpdate(new_handle=handle, resumable=True)
    )


NOT_RESUMABLE = m.SessionResumptionUpdate(new_handle="", resumable=False)


def _go_away(draw: st.DrawFn, ids: _Ids, *, resumption: bool) -> list[m.ServerMessage]:
    millis = draw(st.integers(0, 60_000))  # the service warns about 60 s ahead
    out = [m.ServerMessage(go_away=m.GoAway(time_left=m.Duration(millis / 1000)))]
    if resumption:
        out.append(_handle(draw, ids))
    return out


# ----------------------------------------------------------------------------- server strategies


T = TypeVar("T")


def _drawn(make: Callable[[st.DrawFn], T]) -> st.SearchStrategy[T]:
    """A strategy whose values ``make(draw)`` builds (``st.composite`` without the decorator, so
    a public function checks its arguments when called, not when hypothesis first draws)."""

    @st.composite
    def strategy(draw: st.DrawFn) -> T:
        return make(draw)

    return strategy()


def _check_modality(modality: ResponseModality | None) -> None:
    if modality not in (None, "TEXT", "AUDIO"):
        raise ValueError(f"modality must be 'TEXT', 'AUDIO' or None, not {modality!r}")


def model_turns(modality: ResponseModality | None = None) -> st.SearchStrategy[list[m.ServerMessage]]:
    """One model turn: ``modelTurn`` chunks, ``generationComplete``, ``turnComplete`` with usage.

    Text chunks carry a text part; audio chunks a 24 kHz PCM ``inlineData`` part, with or
    without its output transcription in the same message.

    Args:
        modality: ``"TEXT"`` or ``"AUDIO"``; drawn when ``None``.

    Returns:
        A strategy for the turn's server messages, in order.

    Raises:
        ValueError: ``modality`` is neither.
    """
    _check_modality(modality)
    return _drawn(lambda draw: _model_turn(draw, _modality(draw, modality)))


def interrupted_turns(modality: ResponseModality | None = None) -> st.SearchStrategy[list[m.ServerMessage]]:
    """A model turn cut short by the user: chunks (maybe none), ``interrupted``, ``turnComplete``.

    No ``generationComplete``: the model did not finish.

    Args:
        modality: ``"TEXT"`` or ``"AUDIO"``; drawn when ``None``.

    Returns:
        A strategy for the turn's server messages, in order.

    Raises:
        ValueError: ``modality`` is neither.
    """
    _check_modality(modality)
    return _drawn(lambda draw: _interrupted_turn(draw, _modality(draw, modality)))


def tool_call_turns(modality: ResponseModality | None = None) -> st.SearchStrategy[list[m.ServerMessage]]:
    """A ``toolCall`` of one to three function calls, then the model turn that follows the answer.

    Args:
        modality: ``"TEXT"`` or ``"AUDIO"``; drawn when ``None``.

    Returns:
        A strategy for the server messages, in order (the client's answer goes between the first
        and the second).

    Raises:
        ValueError: ``modality`` is neither.
    """
    _check_modality(modality)
    return _drawn(lambda draw: _tool_call_turn(draw, _modality(draw, modality), _Ids()))


def cancelled_tool_calls(
    modality: ResponseModality | None = None,
) -> st.SearchStrategy[list[m.ServerMessage]]:
    """A tool call and its cancellation: ``toolCall``, chunks, ``interrupted``,
    ``toolCallCancellation`` naming some of the call's ids, ``turnComplete``.

    Args:
        modality: ``"TEXT"`` or ``"AUDIO"``; drawn when ``None``.

    Returns:
        A strategy for the server messages, in order.

    Raises:
        ValueError: ``modality`` is neither.
    """
    _check_modality(modality)
    return _drawn(lambda draw: _cancelled_tool_call(draw, _modality(draw, modality), _Ids()))


def go_aways(resumption: bool = True) -> st.SearchStrategy[list[m.ServerMessage]]:
    """A ``goAway`` (up to 60 s left, in whole milliseconds), then a resumable handle.

    Args:
        resumption: Whether the handle follows (the session asked for resumption).

    Returns:
        A strategy for the server messages, in order.
    """
    return _drawn(lambda draw: _go_away(draw, _Ids(), resumption=resumption))


SEGMENTS = ("model_turn", "interrupted_turn", "tool_call_turn", "cancelled_tool_call")
"""The kinds of exchange :func:`server_streams` strings together."""


def server_streams(
    modality: ResponseModality | None = None,
    *,
    resumption: bool = True,
    max_turns: int = 4,
    go_away: bool | None = None,
    segments: Sequence[str] = SEGMENTS,
) -> st.SearchStrategy[list[m.ServerMessage]]:
    """A session's whole server stream on one connection, as the service sends it.

    ``setupComplete`` first (with a session id, or without), maybe a message carrying only usage
    (current models send one before the first turn), then turns of the kinds in ``segments``. With
    ``resumption`` a handle follows ``setupComplete`` and every completed turn, and
    ``{"newHandle": "", "resumable": false}`` may open a turn. It may end with a ``goAway``
    (and a last handle).

    Args:
        modality: ``"TEXT"`` or ``"AUDIO"`` for the whole session; drawn when ``None``.
        resumption: Whether the session asked for resumption (handles are sent).
        max_turns: At most this many turns (zero or more).
        go_away: End with a ``goAway``: always, never, or (``None``) drawn.
        segments: The kinds of turn to draw from (see :data:`SEGMENTS`).

    Returns:
        A strategy for the stream's server messages, in order.

    Raises:
        ValueError: A bad ``modality``, ``segments`` naming an unknown kind, or a negative
            ``max_turns``.
    """
    _check_modality(modality)
    chosen = list(segments)
    unknown = [s for s in chosen if s not in SEGMENTS]
    if unknown or not chosen:
        raise ValueError(f"segments must be a non-empty selection of {SEGMENTS}, got {chosen}")
    if max_turns < 0:
        raise ValueError("max_turns must be >= 0")

    def make(draw: st.DrawFn) -> list[m.ServerMessage]:
        mod = _modality(draw, modality)
        ids = _Ids()
        session_id = draw(st.one_of(st.none(), IDS))
        stream = [m.ServerMessage(setup_complete=m.SetupComplete(session_id=session_id))]
        if resumption:
            stream.append(_handle(draw, ids))
        if draw(st.booleans()):
            stream.append(m.ServerMessage(usage_metadata=_usage(draw, mod)))
        makers: dict[str, Callable[[], list[m.ServerMessage]]] = {
            "model_turn": lambda: _model_turn(draw, mod),
            "interrupted_turn": lambda: _interrupted_turn(draw, mod),
            "tool_call_turn": lambda: _tool_call_turn(draw, mod, ids),
            "cancelled_tool_call": lambda: _cancelled_tool_call(draw, mod, ids),
        }
        for _ in range(draw(st.integers(0, max_turns))):
            if resumption and draw(st.booleans()):
                stream.append(m.ServerMessage(session_resumption_update=attrs.evolve(NOT_RESUMABLE)))
            stream.extend(makers[draw(st.sampled_from(chosen))]())
            if resumption:
                stream.append(_handle(draw, ids))
        if go_away if go_away is not None else draw(st.booleans()):
            stream.extend(_go_away(draw, ids, resumption=resumption))
        return stream

    return _drawn(make)


# ----------------------------------------------------------------------------- client strategies


def _schema(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(FUNCTION_NAMES, max_size=3, unique=True))
    types = st.sampled_from(["STRING", "INTEGER", "NUMBER", "BOOLEAN"])
    return {"type": "OBJECT", "properties": {name: {"type": draw(types)} for name in names}}


def _declarations(draw: st.DrawFn) -> list[m.FunctionDeclaration]:
    names = draw(st.lists(FUNCTION_NAMES, min_size=1, max_size=3, unique=True))
    return [
        m.FunctionDeclaration(
            name=name,
            description=draw(st.one_of(st.none(), WORDS)),
            parameters=_schema(draw),
            behavior=draw(st.sampled_from([None, "BLOCKING", "NON_BLOCKING"])),
        )
        for name in names
    ]


def _setup(
    draw: st.DrawFn, modality: ResponseModality | None, resume_handle: str | None, manual_vad: bool | None
) -> m.ClientMessage:
    mod = _modality(draw, modality)
    manual = draw(st.booleans()) if manual_vad is None else manual_vad
    setup = m.Setup(
        model=f"models/{draw(MODEL_NAMES)}",
        generation_config=m.GenerationConfig(response_modalities=[mod]),
    )
    if draw(st.booleans()):
        setup.system_instruction = m.Content(parts=[m.Part(text=draw(WORDS))])
    if draw(st.booleans()):
        setup.tools = [m.Tool(function_declarations=_declarations(draw))]
    if resume_handle is not None or draw(st.booleans()):
        setup.session_resumption = m.SessionResumptionConfig(handle=resume_handle)
    if draw(st.booleans()):
        setup.context_window_compression = m.ContextWindowCompressionConfig(sliding_window=m.SlidingWindow())
    if mod == "AUDIO" and draw(st.booleans()):
        setup.output_audio_transcription = m.AudioTranscriptionConfig()
    if draw(st.booleans()):
        setup.input_audio_transcription = m.AudioTranscriptionConfig()
    if manual:
        detection = m.AutomaticActivityDetection(disabled=True)
        setup.realtime_input_config = m.RealtimeInputConfig(automatic_activity_detection=detection)
    return m.ClientMessage(setup=setup)


def setups(
    modality: ResponseModality | None = None,
    *,
    resume_handle: str | None = None,
    manual_vad: bool | None = None,
) -> st.SearchStrategy[m.ClientMessage]:
    """A realistic first client message: ``setup`` with a model, one response modality, maybe
    function declarations, a system instruction, transcription and resumption.

    Args:
        modality: The response modality; drawn when ``None``.
        resume_handle: Resume from this handle (``sessionResumption.handle``).
        manual_vad: Turn automatic activity detection off (the client then sends
            ``activityStart``/``activityEnd``); drawn when ``None``.

    Returns:
        A strategy for the setup message.

    Raises:
        ValueError: ``modality`` is not ``"TEXT"``, ``"AUDIO"`` or ``None``.
    """
    _check_modality(modality)
    return _drawn(lambda draw: _setup(draw, modality, resume_handle, manual_vad))


def _audio(draw: st.DrawFn) -> list[m.ClientMessage]:
    blob = st.builds(m.Blob, data=_pcm(320), mime_type=st.just(f"audio/pcm;rate={INPUT_RATE}"))
    return [
        m.ClientMessage(realtime_input=m.RealtimeInput(audio=draw(blob)))
        for _ in range(draw(st.integers(1, 4)))
    ]


def _user_turn(draw: st.DrawFn, manual_vad: bool) -> list[m.ClientMessage]:
    kind = draw(st.sampled_from(["client_content", "realtime_text", "audio"]))
    if kind == "client_content":
        turn = m.Content(role="user", parts=[m.Part(text=draw(WORDS))])
        return [m.ClientMessage(client_content=m.ClientContent(turns=[turn], turn_complete=True))]
    if kind == "realtime_text":
        return [m.ClientMessage(realtime_input=m.RealtimeInput(text=draw(WORDS)))]
    if manual_vad:
        return [
            m.ClientMessage(realtime_input=m.RealtimeInput(activity_start=m.ActivityStart())),
            *_audio(draw),
            m.ClientMessage(realtime_input=m.RealtimeInput(activity_end=m.ActivityEnd())),
        ]
    return [*_audio(draw), m.ClientMessage(realtime_input=m.RealtimeInput(audio_stream_end=True))]


def user_turns(manual_vad: bool = False) -> st.SearchStrategy[list[m.ClientMessage]]:
    """One user turn: a ``clientContent`` text turn, realtime text, or audio chunks (16 kHz PCM)
    ended by ``audioStreamEnd`` (automatic activity detection) or framed by
    ``activityStart``/``activityEnd`` (manual).

    Args:
        manual_vad: Whether the setup turned automatic activity detection off.

    Returns:
        A strategy for the turn's client messages, in order.
    """
    return _drawn(lambda draw: _user_turn(draw, manual_vad))


def tool_responses(calls: Sequence[m.FunctionCall]) -> st.SearchStrategy[list[m.ClientMessage]]:
    """Answers to ``calls``: one ``toolResponse`` for all of them, or one per call, in call order.

    Args:
        calls: The function calls to answer (from a ``toolCall``); each answer carries its id and
            name and a JSON object as the response.

    Returns:
        A strategy for the client messages that answer every call exactly once.
    """

    calls = list(calls)
    return _drawn(lambda draw: _answers(draw, calls))


def _answers(draw: st.DrawFn, calls: Sequence[m.FunctionCall]) -> list[m.ClientMessage]:
    responses = [m.FunctionResponse(id=c.id, name=c.name, response=draw(JSON_OBJECTS)) for c in calls]
    if not responses:
        return []
    if draw(st.booleans()):
        return [m.ClientMessage(tool_response=m.ToolResponse(function_responses=responses))]
    return [m.ClientMessage(tool_response=m.ToolResponse(function_responses=[r])) for r in responses]


def client_streams(
    modality: ResponseModality | None = None,
    *,
    resume_handle: str | None = None,
    max_turns: int = 4,
) -> st.SearchStrategy[list[m.ClientMessage]]:
    """A session's whole client stream on one connection: the setup, then user turns, with tool
    responses (to calls of the model's, ids unique) between some of them.

    Args:
        modality: The response modality; drawn when ``None``.
        resume_handle: Resume from this handle.
        max_turns: At most this many user turns (zero or more).

    Returns:
        A strategy for the stream's client messages, in order.

    Raises:
        ValueError: A bad ``modality``, or a negative ``max_turns``.
    """
    _check_modality(modality)
    if max_turns < 0:
        raise ValueError("max_turns must be >= 0")

    def make(draw: st.DrawFn) -> list[m.ClientMessage]:
        setup = _setup(draw, modality, resume_handle, None)
        assert setup.setup is not None
        config = setup.setup.realtime_input_config
        detection = config.automatic_activity_detection if config is not None else None
        manual = bool(detection is not None and detection.disabled)
        ids = _Ids()
        stream = [setup]
        for _ in range(draw(st.integers(0, max_turns))):
            stream.extend(_user_turn(draw, manual))
            if draw(st.booleans()):
                stream.extend(_answers(draw, _calls(draw, ids)))
        return stream

    return _drawn(make)
