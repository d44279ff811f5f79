"""Moves under real-time audio: how much input a session loses or doubles across forced moves.

Each session streams 100 ms audio chunks in real time (speech, then silence, like a caller) and a
numbered text turn every ``--turn-every`` seconds, while the emulator forces a move every
``--every`` seconds: a ``goAway`` (planned: the session must lose and double nothing) or an abrupt
drop (``--drops``: on the Gemini API the session cannot know which in-flight messages the last
handle covers, and reports what may be lost or doubled). At the end the emulator (in this
process) is asked what each session's context consumed: it is the judge. (Asking the model
``stats`` at the end, as this bench first did, left many sessions without an answer under load,
and their turns were counted as lost.)

    python bench/moves.py                         # Gemini API, goAways, 20 sessions x 30 s
    python bench/moves.py --flavour vertex --drops
    python bench/moves.py --sessions 50 --seconds 60 --every 1.5

Prints one line per flavour/mode and a JSON object with the totals. Not a test: no assertion,
the numbers go to the closing note / README.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from livemesh.auth import ApiKey, VertexAI
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.emulator.context import SessionStats
from livemesh.limits import ServiceLimits
from livemesh.session import RetryPolicy, RotationPolicy, Session, open_session

CHUNK_S = 0.1
SPEECH = b"".join(
    int(6000 * math.sin(2 * math.pi * 300 * i / 16000)).to_bytes(2, "little", signed=True)
    for i in range(1600)
)
SILENCE = bytes(3200)


@attrs.define
class Tally:
    chunks: int = 0
    turns: list[str] = attrs.Factory(list)
    server_id: str | None = None
    stats: SessionStats | None = None
    metrics: Any = None


async def _token() -> str:
    return "bench-token"


async def speak(
    session: Session,
    tally: Tally | Any,
    index: int,
    end: float,
    turn_every: float,
    each_chunk: Callable[[float], Awaitable[None]] | None = None,
) -> None:
    """A caller until ``end``: real-time audio in 100 ms chunks, 1.5 s of speech then 1.5 s of
    silence (like a caller pausing between phrases), and a numbered text turn every
    ``turn_every`` s; ``each_chunk(now)`` runs after each chunk. Counts into ``tally.chunks`` and
    ``tally.turns``."""
    start = trio.current_time()
    next_turn = start + turn_every
    k = 0
    while trio.current_time() < end:
        chunk = SPEECH if (k % 30) < 15 else SILENCE
        await session.send_realtime_input(audio=chunk)
        tally.chunks += 1
        now = trio.current_time()
        if now >= next_turn:
            text = f"s{index} turn {len(tally.turns)}"
            await session.send_client_content(text)
            tally.turns.append(text)
            next_turn += turn_every
        if each_chunk is not None:
            await each_chunk(now)
        k += 1
        await trio.sleep_until(start + k * CHUNK_S)


async def run_session(emu: Emulator, args: argparse.Namespace, index: int, out: list[Tally]) -> None:
    options: dict[str, Any] = {}
    if args.flavour == "vertex":
        options.update(
            auth=VertexAI(project="p", token_provider=_token), session_resumption={"transparent": True}
        )
    else:
        options.update(auth=ApiKey("bench-key"), session_resumption=True)
    tally = Tally()
    async with open_session(
        model="gemini-2.0-flash-live-001",
        base_url=emu.url,
        generation_config={"response_modalities": ["TEXT"]},
        retry=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.1),
        rotation=RotationPolicy(timer=False, quiet_timeout_s=args.every / 3, handle_timeout_s=args.every / 2),
        **options,
    ) as session:
        end = trio.current_time() + args.seconds

        async def drain() -> None:
            async for _ in session:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await speak(session, tally, index, end, args.turn_every)
            nursery.cancel_scope.cancel()
        await session.aclose()  # flushes what is queued and waits for a handle covering it
        tally.server_id = session.server_session_id
        tally.metrics = session.statistics()
    out.append(tally)


async def disrupt(emu: Emulator, args: argparse.Namespace, done: trio.Event) -> None:
    while not done.is_set():
        with trio.move_on_after(args.every):
            await done.wait()
        if done.is_set():
            return
        if args.drops:
            await emu.drop()
        else:
            await emu.send_go_away(time_left=args.notice)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    config = EmulatorConfig(
        resumption_update_interval_s=args.handle_interval, limits=ServiceLimits(connection_lifetime_s=3600)
    )
    tallies: list[Tally] = []
    async with open_emulator(config) as emu:
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(disrupt, emu, args, done)
            async with trio.open_nursery() as sessions:
                for i in range(args.sessions):
                    sessions.start_soon(run_session, emu, args, i, tallies)
            done.set()
        for t in tallies:
            if t.server_id is not None:
                t.stats = emu.stats(t.server_id)
    sent = sum(t.chunks for t in tallies)
    consumed = sum(t.stats.audio_chunks for t in tallies if t.stats)
    lost = sum(max(0, t.chunks - t.stats.audio_chunks) for t in tallies if t.stats)
    doubled = sum(max(0, t.stats.audio_chunks - t.chunks) for t in tallies if t.stats)
    turns_lost = turns_doubled = 0
    for t in tallies:
        texts = list(t.stats.texts) if t.stats else []
        turns_lost += sum(1 for x in t.turns if x not in texts)
        turns_doubled += sum(texts.count(x) - 1 for x in t.turns if texts.count(x) > 1)
    stalls = [t.metrics.max_move_stall_s for t in tallies if t.metrics]
    return {
        "flavour": args.flavour,
        "mode": "drops" if args.drops else "goAway",
        "sessions": len(tallies),
        "seconds": args.seconds,
        "every_s": args.every,
        "chunks_sent": sent,
        "chunks_consumed": consumed,
        "chunks_lost": lost,
        "chunks_doubled": doubled,
        "sessions_with_loss_or_double": sum(
            1 for t in tallies if t.stats is None or t.stats.audio_chunks != t.chunks
        ),
        "sessions_unjudged": sum(1 for t in tallies if t.stats is None),
        "turns": sum(len(t.turns) for t in tallies),
        "turns_lost": turns_lost,
        "turns_doubled": turns_doubled,
        "moves": sum(t.metrics.rotations + t.metrics.drops for t in tallies if t.metrics),
        "replay_ambiguous": sum(t.metrics.replay_ambiguous for t in tallies if t.metrics),
        "replay_skipped": sum(t.metrics.replay_skipped for t in tallies if t.metrics),
        "replay_overflow": sum(t.metrics.replay_overflow for t in tallies if t.metrics),
        "drops": sum(t.metrics.drops for t in tallies if t.metrics),
        "rotations": sum(t.metrics.rotations for t in tallies if t.metrics),
        "max_stall_s_median": round(statistics.median(stalls), 3) if stalls else None,
        "max_stall_s_max": round(max(stalls), 3) if stalls else None,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flavour", choices=("gemini", "vertex"), default="gemini")
    parser.add_argument("--drops", action="store_true", help="abrupt drops instead of goAways")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=1.5, help="seconds between forced moves")
    parser.add_argument("--notice", type=float, default=1.0, help="goAway timeLeft in seconds")
    parser.add_argument("--turn-every", type=float, default=2.0)
    parser.add_argument("--handle-interval", type=float, default=0.25, help="emulator's periodic handles")
    return parser.parse_args(argv)


if __name__ == "__main__":
    result = trio.run(main, parse(sys.argv[1:]))
    print(json.dumps(result))
