"""One model turn gathered from the message stream (the common receive loop, done once).

A turn ends with ``turnComplete`` (after ``generationComplete``, or after ``interrupted`` on a
barge-in). :class:`TurnBuilder` is sans-IO: feed it messages, it says when the turn is complete.
"""

from __future__ import annotations

import attrs

from livemesh import wire
from livemesh.wire import helpers

__all__ = ["Turn", "TurnBuilder"]


@attrs.frozen(kw_only=True)
class Turn:
    """What the model said in one turn, and what happened around it."""

    text: str = ""
    audio: bytes = b""
    """Output audio (24 kHz 16-bit PCM mono), chunks joined."""
    audio_chunks: int = 0
    input_transcript: str = ""
    output_transcript: str = ""
    interrupted: bool = False
    tool_calls: tuple[wire.FunctionCall, ...] = ()
    usage: wire.UsageMetadata | None = None
    messages: tuple[wire.ServerMessage, ...] = ()


class TurnBuilder:
    """Accumulates server messages until a ``turnComplete``."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._audio: list[bytes] = []
        self._input: list[str] = []
        self._output: list[str] = []
        self._interrupted = False
        self._calls: list[wire.FunctionCall] = []
        self._usage: wire.UsageMetadata | None = None
        self._messages: list[wire.ServerMessage] = []

    def add(self, message: wire.ServerMessage) -> bool:
        """Take one message; True when it completed the turn."""
        self._messages.append(message)
        if message.usage_metadata is not None:
            self._usage = message.usage_metadata
        if message.tool_call is not None:
            self._calls.extend(message.tool_call.function_calls or [])
        content = message.server_content
        if content is None:
            return False
        text = helpers.extract_text(content)
        if text:
            self._text.append(text)
        self._audio.extend(helpers.extract_audio(content))
        said = helpers.input_transcript(content)
        if said:
            self._input.append(said)
        spoken = helpers.output_transcript(content)
        if spoken:
            self._output.append(spoken)
        if content.interrupted:
            self._interrupted = True
        return bool(content.turn_complete)

    def build(self) -> Turn:
        return Turn(
            text="".join(self._text),
            audio=b"".join(self._audio),
            audio_chunks=len(self._audio),
            input_transcript="".join(self._input),
            output_transcript="".join(self._output),
            interrupted=self._interrupted,
            tool_calls=tuple(self._calls),
            usage=self._usage,
            messages=tuple(self._messages),
        )
