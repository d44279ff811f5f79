"""One interaction gathered from the message stream (the common receive loop, done once).

An interaction ends where google-genai 3.6.1's ``AsyncSession.receive()`` ends it
(``live.py``, ``_is_interaction_complete``): on a ``serverContent`` whose ``interactionStatus`` is
IDLE, or, when the model sends no ``interactionStatus``, on ``turnComplete``. On models that send
it (gemini-3.8-live), a ``turnComplete`` with IN_PROGRESS is not the end: another model turn
follows (the result of a NON_BLOCKING call, or the answer to the input that interrupted), and
:class:`Turn` gathers them all. On older models an interaction is one model turn.

What the builder takes in stride: several parts in one ``serverContent`` (audio with its
transcription, text with audio), a ``serverContent`` that carries only ``usageMetadata`` (sent
before the first turn on current models), and function calls whose arguments arrive in pieces
(``Turn.tool_calls`` holds each call once, whole: :class:`~livemesh.wire.StreamedCalls`).
:class:`TurnBuilder` is sans-IO: feed it messages, it says when the interaction is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs

from livemesh import models, wire
from livemesh.errors import ConfigError
from livemesh.wire import helpers

if TYPE_CHECKING:
    from livemesh.session.config import SessionConfig

__all__ = ["Turn", "TurnBuilder", "check_can_ask", "ends_interaction"]


_ENDS: Final = frozenset({wire.InteractionStatus.IDLE, wire.InteractionStatus.REQUIRES_ACTION})


def ends_interaction(content: wire.ServerContent) -> bool:
    """Whether ``content`` ends an interaction.

    As google-genai's ``receive()`` decides, with one difference for values it does not define.

    Args:
        content: One ``serverContent``.

    Returns:
        True if its ``interactionStatus`` is IDLE (or REQUIRES_ACTION, which the SDK documents as
        a deprecated spelling of IDLE); False if it is IN_PROGRESS (more model output follows).
        Otherwise (no status, UNSPECIFIED, or a value newer than livemesh, whose meaning is
        unknown: waiting for an IDLE that may never come would hang the caller) whether it is a
        ``turnComplete``.
    """
    status = content.interaction_status
    if status in _ENDS:
        return True
    if status == wire.InteractionStatus.IN_PROGRESS:
        return False
    return bool(content.turn_complete)


@attrs.frozen(kw_only=True)
class Turn:
    """What the model said in one interaction, and what happened around it."""

    text: str = ""
    """The model's text; when the interaction spans several model turns, one line per turn."""
    audio: bytes = b""
    """Output audio (24 kHz 16-bit PCM mono), chunks joined."""
    audio_chunks: int = 0
    input_transcript: str = ""
    output_transcript: str = ""
    """The transcription of the model's audio, one line per model turn like :attr:`text`."""
    interrupted: bool = False
    """A model turn of the interaction was interrupted."""
    tool_calls: tuple[wire.FunctionCall, ...] = ()
    """The calls the model made, each once with its whole ``args`` (streamed ones assembled)."""
    usage: wire.UsageMetadata | None = None
    """The newest usage report of the interaction."""
    model_turns: int = 0
    """The ``turnComplete`` messages the interaction spans (more than one on models that send
    ``interactionStatus`` IN_PROGRESS between turns)."""
    interaction_status: str | None = None
    """The ``interactionStatus`` that ended it (``None`` on models that send none)."""
    messages: tuple[wire.ServerMessage, ...] = ()


def _lines(turns: list[list[str]]) -> str:
    """Each model turn's pieces joined, the turns of one interaction on lines of their own."""
    return "\n".join(text for text in ("".join(pieces) for pieces in turns) if text)


class TurnBuilder:
    """Accumulates server messages until an interaction ends (see :func:`ends_interaction`)."""

    def __init__(self) -> None:
        self._text: list[list[str]] = [[]]  # one list of pieces per model turn
        self._audio: list[bytes] = []
        self._input: list[str] = []
        self._output: list[list[str]] = [[]]
        self._interrupted = False
        self._calls: list[wire.FunctionCall] = []
        self._streamed = wire.StreamedCalls()
        self._usage: wire.UsageMetadata | None = None
        self._model_turns = 0
        self._status: str | None = None
        self._messages: list[wire.ServerMessage] = []

    def add(self, message: wire.ServerMessage) -> bool:
        """Take one message.

        Args:
            message: The next server message.

        Returns:
            True when it ended the interaction.

        Raises:
            RemoteProtocolError: A streamed function call's pieces cannot be assembled.
        """
        self._messages.append(message)
        if message.usage_metadata is not None:
            self._usage = message.usage_metadata
        if message.tool_call is not None:
            self._calls.extend(self._streamed.feed_tool_call(message.tool_call))
        if message.tool_call_cancellation is not None:
            self._streamed.discard(message.tool_call_cancellation.ids or ())
        content = message.server_content
        if content is None:
            return False
        text = helpers.extract_text(content)
        if text:
            self._text[-1].append(text)
        self._audio.extend(helpers.extract_audio(content))
        said = helpers.input_transcript(content)
        if said:
            self._input.append(said)
        spoken = helpers.output_transcript(content)
        if spoken:
            self._output[-1].append(spoken)
        if content.interrupted:
            self._interrupted = True
        if content.turn_complete:
            self._model_turns += 1
        if content.interaction_status is not None:
            self._status = content.interaction_status
        ended = ends_interaction(content)
        if content.turn_complete and not ended:  # IN_PROGRESS: the next model turn is a new line
            self._text.append([])
            self._output.append([])
        return ended

    def build(self) -> Turn:
        """The interaction gathered so far.

        Returns:
            A :class:`Turn` of every message taken.
        """
        return Turn(
            text=_lines(self._text),
            audio=b"".join(self._audio),
            audio_chunks=len(self._audio),
            input_transcript="".join(self._input),
            output_transcript=_lines(self._output),
            interrupted=self._interrupted,
            tool_calls=tuple(self._calls),
            usage=self._usage,
            model_turns=self._model_turns,
            interaction_status=self._status,
            messages=tuple(self._messages),
        )


def check_can_ask(config: SessionConfig) -> None:
    """Refuse ``ask()`` on a session whose answers have no text to return.

    Args:
        config: The session's configuration.

    Raises:
        ConfigError: The session answers in AUDIO without ``output_audio_transcription``.
    """
    modality = config.response_modality
    audio_only = models.behavior_of(config.model).audio_only
    audio = modality == wire.Modality.AUDIO or (modality is None and audio_only)
    if audio and config.output_audio_transcription is None:
        raise ConfigError(
            "ask() returns the answer's text, which for an AUDIO answer is its transcription: "
            "open the session with output_audio_transcription={} (or read the audio with "
            "receive_turn())"
        )
