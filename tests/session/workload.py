"""A numbered streaming workload: audio chunks and text turns, with hooks between them, and the
checks that prove nothing was lost or doubled (the emulator's stats are the ground truth)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import attrs
import trio

from livemesh.emulator.app import Emulator
from livemesh.session import Session

SILENCE = b"\x00\x00" * 1600  # 100 ms of 16 kHz silence: counted, never a VAD turn


@attrs.define
class Sent:
    audio_chunks: int = 0
    audio_bytes: int = 0
    turns: list[str] = attrs.Factory(list)

    @property
    def messages(self) -> int:
        return self.audio_chunks + len(self.turns)


async def drain(session: Session) -> None:
    """Consume the stream (a real app reads it; a full inbox would stall the session)."""
    async for _ in session:
        pass


async def stream(
    session: Session,
    *,
    chunks: int,
    turn_every: int,
    every: int = 0,
    hook: Callable[[int], Awaitable[None]] | None = None,
    pace: float = 0.002,
) -> Sent:
    """Send ``chunks`` audio chunks, a numbered text turn every ``turn_every``, calling ``hook(i)``
    every ``every`` chunks (to force moves mid-stream)."""
    sent = Sent()
    for i in range(chunks):
        await session.send_realtime_input(audio=SILENCE)
        sent.audio_chunks += 1
        sent.audio_bytes += len(SILENCE)
        if turn_every and i % turn_every == 0:
            text = f"turn {i}"
            await session.send_client_content(text)
            sent.turns.append(text)
        if hook is not None and every and i and i % every == 0:
            await hook(i)
        await trio.sleep(pace)  # pacing the producer like a microphone, not waiting on a race
    return sent


async def wait_until(session: Session, predicate: Callable[[], bool]) -> None:
    """Wait (bounded) for a condition on the session's counters; re-checked on every state change."""
    with trio.fail_after(10):
        await session._wait_for(predicate)


async def server_stats(session: Session, emu: Emulator) -> dict[str, object]:
    """Ask the scripted model for its stats through the session (so every earlier message has
    been consumed) and check they agree with the emulator's own bookkeeping."""
    with trio.fail_after(10):
        await session.send_client_content("stats")
        while True:
            turn = await session.receive_turn()
            if turn.text.startswith("{"):
                break
    stats: dict[str, object] = json.loads(turn.text)
    assert session.server_session_id is not None
    direct = emu.stats(session.server_session_id)
    assert stats["messages"] == direct.messages
    return stats


def loss_and_doubles(sent: Sent, stats: dict[str, object]) -> tuple[int, int]:
    """(messages lost, messages doubled) judged from the server's context."""
    texts = list(stats["texts"])  # type: ignore[call-overload]
    lost_turns = sum(1 for t in sent.turns if t not in texts)
    doubled_turns = sum(texts.count(t) - 1 for t in set(texts) if texts.count(t) > 1)
    audio = int(stats["audio_chunks"])  # type: ignore[call-overload]
    lost_audio = max(0, sent.audio_chunks - audio)
    doubled_audio = max(0, audio - sent.audio_chunks)
    return lost_turns + lost_audio, doubled_turns + doubled_audio
