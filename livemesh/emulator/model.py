"""The scripted model: what the emulator answers, as pure functions (no I/O, no time).

Words a user turn may be (after stripping whitespace):

* ``recall`` → ``json.dumps(texts)``: every user turn text still in the context, in order
  (commands excluded; an audio turn appears as its transcription ``"[audio 1.20s, 38400 bytes]"``).
* ``stats`` → ``json.dumps({"messages", "audio_bytes", "audio_chunks", "video_frames", "turns",
  "texts", "tool_responses", "unknown_tool_responses"})`` for this session's context.
* ``call NAME {json args}`` with NAME a declared function → a ``toolCall``; its response is answered
  as ``"NAME returned {json response}"``.
* anything else T → ``"You said: T"``.

In AUDIO modality the same text drives a 440 Hz tone of ``len(text) / speech_chars_per_s`` seconds
(24 kHz 16-bit PCM) plus, if enabled, ``outputTranscription`` chunks of the text.
"""

from __future__ import annotations

import array
import json
import math
from functools import cache
from typing import Any, Final

import attrs

RECALL: Final = "recall"
STATS: Final = "stats"
OUTPUT_RATE: Final = 24_000
TONE_HZ: Final = 440


@attrs.frozen
class Say:
    text: str


@attrs.frozen
class Recall:
    pass


@attrs.frozen
class Stats:
    pass


@attrs.frozen
class Call:
    name: str
    args: dict[str, Any]


Command = Say | Recall | Stats | Call


def classify(text: str, declared: frozenset[str]) -> Command:
    """What a user text turn asks the scripted model for."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered == RECALL:
        return Recall()
    if lowered == STATS:
        return Stats()
    if lowered.startswith("call "):
        name, _, rest = stripped[5:].strip().partition(" ")
        if name in declared:
            return Call(name, _parse_args(rest.strip()))
    return Say(text)


def is_command(text: str, declared: frozenset[str]) -> bool:
    """Commands are queries to the emulator, not content: they are not kept in the context."""
    return not isinstance(classify(text, declared), Say)


def _parse_args(rest: str) -> dict[str, Any]:
    if not rest:
        return {}
    try:
        value = json.loads(rest)
    except ValueError:
        return {"input": rest}
    return value if isinstance(value, dict) else {"input": value}


def say_reply(text: str) -> str:
    return f"You said: {text}"


def tool_result_text(name: str, response: dict[str, Any] | None) -> str:
    return f"{name} returned {json.dumps(response or {}, sort_keys=True)}"


def audio_turn_text(duration_s: float, nbytes: int) -> str:
    """The emulator's "transcription" of an audio turn (no speech recogniser: duration and size)."""
    return f"[audio {duration_s:.2f}s, {nbytes} bytes]"


def split_chunks(text: str, count: int) -> list[str]:
    """``text`` in ``count`` contiguous pieces (fewer if the text is shorter), joined back exactly."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


@cache
def _one_second_tone() -> bytes:
    # 440 whole periods in one second: repeating it is seamless.
    samples = array.array(
        "h", (int(8000 * math.sin(2 * math.pi * TONE_HZ * i / OUTPUT_RATE)) for i in range(OUTPUT_RATE))
    )
    return samples.tobytes()


def tone(duration_s: float) -> bytes:
    """``duration_s`` of 24 kHz 16-bit little-endian mono PCM (an even number of bytes)."""
    nbytes = 2 * round(duration_s * OUTPUT_RATE)
    second = _one_second_tone()
    whole, rest = divmod(nbytes, len(second))
    return second * whole + second[:rest]


def split_bytes(data: bytes, count: int) -> list[bytes]:
    """``data`` in ``count`` pieces, each an even number of bytes (whole 16-bit samples)."""
    samples = len(data) // 2
    count = max(1, min(count, samples))
    size, extra = divmod(samples, count)
    pieces, start = [], 0
    for index in range(count):
        end = start + 2 * (size + (1 if index < extra else 0))
        pieces.append(data[start:end])
        start = end
    return pieces


def text_tokens(text: str) -> int:
    """Rough token count (4 characters a token), as usage metadata needs a plausible number."""
    return max(1, (len(text) + 3) // 4)


AUDIO_TOKENS_PER_S: Final = 25
VIDEO_TOKENS_PER_FRAME: Final = 258
