"""What each bench session does, and how its losses are measured rather than assumed.

Three kinds of session, the same for both clients (only the library driving them differs):

* ``text``: numbered text turns ``"s12-t7 <filler>"`` back to back (closed loop, no think time);
  each reply must contain the turn's label.
* ``tools``: ``"call lookup {"sid": 12, "n": 7}"`` turns; the emulator's scripted model answers with
  a ``toolCall``, the client answers it, and the final text must contain ``"n": 7``.
* ``audio``: 16 kHz 16-bit PCM in 100 ms chunks, paced in real time (``audio_pace`` = 1; 0 sends as
  fast as flow control allows): ``speech_chunks`` of a tone, then silence until the model's answer
  (24 kHz audio plus output transcription) has completed. The emulator's VAD times speech in
  *audio* time, so every turn ends after ``SILENCE_MS`` of silence whatever the pace.

``mixed`` assigns kinds by :data:`MIX` weights, deterministically from ``--seed``.

At the end each session asks the emulator for ``stats`` (its context's consumed ``messages``,
``audio_bytes``, ``audio_chunks``, ``texts`` and the ``compressed_texts`` the sliding window cut,
``tool_responses``); :func:`check_stats` compares
that with what the session sent. A turn label missing from ``texts`` is lost, one present twice
is duplicated; audio chunks and tool responses are compared by count. The emulator is the judge,
so a client that silently drops input across a rotation shows up here.
"""

from __future__ import annotations

import array
import functools
import json
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import attrs

__all__ = [
    "CHUNK_MS",
    "CONTEXT_WINDOW_COMPRESSION",
    "INPUT_RATE",
    "KINDS",
    "MIX",
    "SILENCE_MS",
    "TOOL_NAME",
    "Check",
    "SessionPlan",
    "WorkloadSpec",
    "check_stats",
    "parse_stats",
    "plan_sessions",
    "silence_chunk",
    "speech_chunk",
    "text_turn",
    "tool_declaration",
    "tool_result",
    "tool_turn",
]

Kind = Literal["text", "tools", "audio"]
KINDS: Final[tuple[Kind, ...]] = ("text", "tools", "audio")
WorkloadName = Literal["text", "tools", "audio", "mixed"]
WORKLOADS: Final = ("text", "tools", "audio", "mixed")

MIX: Final[Mapping[Kind, float]] = {"text": 0.4, "tools": 0.3, "audio": 0.3}
"""Share of each session kind in the ``mixed`` workload."""

INPUT_RATE: Final = 16_000
CHUNK_MS: Final = 100
"""100 ms per audio message: what real-time voice clients send."""
SILENCE_MS: Final = 500
"""The emulator's default end-of-speech silence (high sensitivity): a turn ends after this much."""
INPUT_MIME: Final = f"audio/pcm;rate={INPUT_RATE}"
TOOL_NAME: Final = "lookup"
STATS_QUERY: Final = "stats"

_CHUNK_BYTES: Final = INPUT_RATE * 2 * CHUNK_MS // 1000

CONTEXT_WINDOW_COMPRESSION: Final[Mapping[str, Any]] = {"sliding_window": {}}
"""Both clients ask for the service's sliding window (default trigger and target), as any long
session must: a closed-loop text session answers hundreds of turns a second and would otherwise
fill the model's context window in seconds and be closed with 1007. The judge counts the turns the
window cut (``compressed_texts``) as consumed."""


@attrs.frozen(kw_only=True)
class WorkloadSpec:
    """Everything a runner process needs; JSON-able so it crosses the process boundary as argv."""

    url: str
    """WebSocket base URL of the server (``ws://`` / ``wss://host:port``), no path."""
    workload: WorkloadName = "mixed"
    sessions: int = 200
    duration_s: float = 30.0
    """How long sessions keep starting turns; then each finishes its turn and checks ``stats``."""
    seed: int = 0
    model: str = "gemini-2.5-flash-native-audio-preview-12-2025"
    api_key: str = attrs.field(default="bench-key", repr=False)
    api_version: str = "v1beta"
    ca_file: str | None = None
    """PEM of the CA that signed the server's certificate (the emulator's ``--ca-out``)."""
    speech_chunks: int = 10
    """Chunks of tone per audio turn (10 x 100 ms = 1 s of speech)."""
    audio_pace: float = 1.0
    """1.0 = real time; 0 = as fast as the client can send."""
    text_filler: int = 64
    """Characters of filler after each text turn's label (a realistic short utterance)."""
    start_spread_s: float = 1.0
    """Session starts are spread over this long, as real traffic arrives (and not all at once)."""
    turn_timeout_s: float = 30.0
    """A turn with no ``turnComplete`` after this long is an error (the session then stops)."""
    progress_interval_s: float = 0.5
    lifetime_s: float | None = None
    """The server's connection lifetime when known (the livemesh runner rotates before it)."""
    go_away_notice_s: float | None = None
    verify: bool = True
    """Check replies and ask ``stats`` at the end (only the emulator answers ``stats``)."""
    metrics_port: int | None = None
    """Serve the livemesh client's OpenTelemetry metrics for Prometheus on this loopback port."""

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkloadSpec:
        return cls(**json.loads(text))


@attrs.frozen
class SessionPlan:
    """One session's identity and kind; ``index`` labels its turns (``s{index}-t{n}``)."""

    index: int
    kind: Kind
    start_delay_s: float


def plan_sessions(spec: WorkloadSpec) -> list[SessionPlan]:
    """The sessions of a run, identical for both clients given the same spec (seeded)."""
    rng = random.Random(spec.seed)
    plans = []
    kinds: list[Kind]
    if spec.workload == "mixed":
        kinds = []
        for kind, share in MIX.items():
            kinds.extend([kind] * round(share * spec.sessions))
        while len(kinds) < spec.sessions:
            kinds.append("text")
        kinds = kinds[: spec.sessions]
        rng.shuffle(kinds)
    else:
        kinds = [spec.workload] * spec.sessions
    for index, kind in enumerate(kinds):
        plans.append(SessionPlan(index, kind, rng.uniform(0.0, spec.start_spread_s)))
    return plans


# ----------------------------------------------------------------------------- turns


def label(session: int, turn: int) -> str:
    return f"s{session}-t{turn}"


def text_turn(session: int, turn: int, filler: int) -> str:
    """A numbered utterance; the label comes first so ``recall``/``stats`` texts can be matched."""
    body = ("lorem ipsum dolor sit amet " * (filler // 27 + 1))[:filler]
    return f"{label(session, turn)} {body}".rstrip()


def tool_turn(session: int, turn: int) -> str:
    return f"call {TOOL_NAME} " + json.dumps({"sid": session, "n": turn})


def tool_result(args: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the bench's ``lookup`` tool returns: its arguments echoed, so the answer is checkable."""
    args = args or {}
    return {"sid": args.get("sid"), "n": args.get("n"), "ok": True}


def tool_reply_ok(reply: str, session: int, turn: int) -> bool:
    """The model's answer after the tool ran carries the tool's result (``NAME returned {...}``)."""
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end < start:
        return False
    try:
        value = json.loads(reply[start : end + 1])
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("sid") == session and value.get("n") == turn


def tool_declaration() -> dict[str, Any]:
    """The declared function, as JSON both clients accept (``FunctionDeclaration``)."""
    return {
        "name": TOOL_NAME,
        "description": "Look a record up (the bench echoes the arguments).",
        "parameters": {
            "type": "OBJECT",
            "properties": {"sid": {"type": "INTEGER"}, "n": {"type": "INTEGER"}},
            "required": ["sid", "n"],
        },
    }


@functools.cache
def speech_chunk() -> bytes:
    """100 ms of a loud 300 Hz tone (well above the VAD threshold at either sensitivity)."""
    samples = array.array(
        "h", (int(6000 * math.sin(2 * math.pi * 300 * i / INPUT_RATE)) for i in range(_CHUNK_BYTES // 2))
    )
    return samples.tobytes()


def silence_chunk() -> bytes:
    return bytes(_CHUNK_BYTES)


SILENCE_CHUNKS_TO_END: Final = math.ceil(SILENCE_MS / CHUNK_MS)
"""Silent chunks after which the emulator's VAD has ended the turn (the latency reference point)."""


# ----------------------------------------------------------------------------- checking


@attrs.define
class Check:
    """What one session sent, to be compared with the emulator's ``stats`` at the end."""

    kind: Kind
    session: int
    labels: list[str] = attrs.Factory(list)
    audio_chunks: int = 0
    audio_bytes: int = 0
    tool_responses: int = 0


@attrs.frozen
class Verdict:
    lost: int
    duplicated: int
    problems: tuple[str, ...]


def parse_stats(reply: str) -> dict[str, Any] | None:
    """The ``stats`` reply object, or None when the reply is not one (itself an error)."""
    start = reply.find("{")
    end = reply.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        value = json.loads(reply[start : end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) and "texts" in value else None


def _count_labels(texts: Sequence[str], labels: Sequence[str]) -> dict[str, int]:
    wanted = set(labels)
    counts = dict.fromkeys(labels, 0)
    for text in texts:
        head = text.split(" ", 1)[0]
        if head in wanted:
            counts[head] += 1
    return counts


def check_stats(check: Check, stats: Mapping[str, Any]) -> Verdict:
    """Lost and duplicated client messages of one session, judged by what the emulator consumed."""
    lost = duplicated = 0
    problems: list[str] = []
    # every user turn consumed, in order: those the sliding window cut, then those still in context
    texts = [str(t) for t in (*stats.get("compressed_texts", []), *stats.get("texts", []))]
    for name, count in _count_labels(texts, check.labels).items():
        if count == 0:
            lost += 1
            problems.append(f"turn {name} not in the server's context")
        elif count > 1:
            duplicated += count - 1
            problems.append(f"turn {name} consumed {count} times")
    for field, sent in (
        ("audio_chunks", check.audio_chunks),
        ("tool_responses", check.tool_responses),
    ):
        got = int(stats.get(field, 0))
        if got < sent:
            lost += sent - got
            problems.append(f"{field}: sent {sent}, server consumed {got}")
        elif got > sent:
            duplicated += got - sent
            problems.append(f"{field}: sent {sent}, server consumed {got}")
    got_bytes = int(stats.get("audio_bytes", 0))
    if got_bytes != check.audio_bytes and not problems:
        problems.append(f"audio_bytes: sent {check.audio_bytes}, server consumed {got_bytes}")
        if got_bytes < check.audio_bytes:
            lost += 1
        else:
            duplicated += 1
    unknown = int(stats.get("unknown_tool_responses", 0))
    if unknown:
        duplicated += unknown
        problems.append(f"{unknown} tool responses for unknown call ids")
    return Verdict(lost, duplicated, tuple(f"s{check.session}: {p}" for p in problems))
