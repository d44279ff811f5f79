"""Pooled real-time audio callers while the service recycles connections and sends random goAways.

Each pooled session streams 100 ms audio chunks in real time (1.5 s of speech, then 1.5 s of
silence, like a caller pausing between phrases), sends a numbered text turn every ``--turn-every``
seconds and, once, a turn that makes the model call a BLOCKING tool the session runs itself. The
emulator ends every connection after ``--lifetime`` seconds (its own goAway comes
``--notice-max`` before), and a disruptor sends goAways at random moments to random sessions
with a notice drawn uniformly from ``--notice-min``..``--notice-max`` seconds. The pool rotates
sessions before the lifetime, the sessions move on every goAway.

At the end the emulator (in this process) says what each session's context consumed: it is the
judge. A chunk consumed twice is *doubled*, one never consumed *lost*; the same for turns.

    python bench/recycle.py                                  # Gemini API, 25 sessions x 30 s
    python bench/recycle.py --flavour vertex
    python bench/recycle.py --sessions 50 --seconds 60 --notice-min 4 --notice-max 8

Prints one JSON object with the totals. Not a test: no assertion.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from typing import Any

import attrs
import trio
from moves import (  # the same caller (speech, pacing, text turns) and Vertex token as bench/moves.py
    _token,
    speak,
)

from livemesh.auth import ApiKey, VertexAI
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.emulator.context import SessionStats
from livemesh.limits import ServiceLimits
from livemesh.pool import RestartPolicy, open_pool
from livemesh.pool.pool import Pool
from livemesh.session import RetryPolicy, SessionConfig, function_tool


@attrs.define
class Tally:
    chunks: int = 0
    turns: list[str] = attrs.Factory(list)
    tool_calls: int = 0
    server_id: str | None = None
    stats: SessionStats | None = None
    metrics: Any = None
    error: str | None = None


async def lookup(n: int) -> dict[str, Any]:
    """The BLOCKING tool: takes a moment, like a real lookup."""
    await trio.sleep(0.2)
    return {"n": n, "ok": True}


def session_config(emu: Emulator, args: argparse.Namespace, index: int) -> SessionConfig:
    options: dict[str, Any] = {}
    if args.flavour == "vertex":
        options.update(
            auth=VertexAI(project="p", token_provider=_token), session_resumption={"transparent": True}
        )
    else:
        options.update(auth=ApiKey("bench-key"), session_resumption=True)
    return SessionConfig(
        model="gemini-2.0-flash-live-001",
        base_url=emu.url,
        generation_config={"response_modalities": ["TEXT"]},
        retry=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.1),
        tools=[function_tool(lookup)],
        session_id=f"caller-{index}",
        **options,
    )


async def caller(emu: Emulator, pool: Pool, args: argparse.Namespace, index: int, out: list[Tally]) -> None:
    tally = Tally()
    out.append(tally)
    rng = random.Random(args.seed * 1000 + index)
    await trio.sleep(rng.uniform(0, 1.0))
    try:
        async with pool.session(session_config(emu, args, index)) as session:
            end = trio.current_time() + args.seconds
            tool_at: float | None = trio.current_time() + rng.uniform(1.0, max(1.0, args.seconds - 3.0))

            async def drain() -> None:
                async for message in session:
                    if message.tool_call is not None:
                        tally.tool_calls += len(message.tool_call.function_calls or ())

            async def call_once(now: float) -> None:
                nonlocal tool_at
                if tool_at is not None and now >= tool_at:
                    await session.send_client_content(f'call lookup {{"n": {index}}}')
                    tool_at = None

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                await speak(session, tally, index, end, args.turn_every, call_once)
                nursery.cancel_scope.cancel()
            await session.aclose()  # flushes what is queued and waits for a handle covering it
            tally.server_id = session.server_session_id
            tally.metrics = session.statistics()
    except Exception as exc:
        tally.error = f"{type(exc).__name__}: {exc}"


async def disrupt(emu: Emulator, args: argparse.Namespace, done: trio.Event) -> None:
    """goAways at random moments to random live sessions, each with a random notice."""
    rng = random.Random(args.seed)
    while not done.is_set():
        with trio.move_on_after(rng.expovariate(1.0 / args.go_away_every)):
            await done.wait()
        if done.is_set():
            return
        ids = emu.session_ids()
        if ids:
            await emu.send_go_away(
                time_left=rng.uniform(args.notice_min, args.notice_max), session_id=rng.choice(ids)
            )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    limits = ServiceLimits(connection_lifetime_s=args.lifetime, go_away_notice_s=args.notice_max)
    config = EmulatorConfig(resumption_update_interval_s=args.handle_interval, limits=limits)
    tallies: list[Tally] = []
    async with open_emulator(config) as emu:
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(disrupt, emu, args, done)
            async with open_pool(
                max_sessions=args.sessions, limits=limits, seed=args.seed, restart=RestartPolicy()
            ) as pool:
                async with trio.open_nursery() as sessions:
                    for i in range(args.sessions):
                        sessions.start_soon(caller, emu, pool, args, i, tallies)
            done.set()
        for t in tallies:
            if t.server_id is not None:
                t.stats = emu.stats(t.server_id)
    judged = [t for t in tallies if t.stats is not None]
    sent = sum(t.chunks for t in tallies)
    lost = sum(max(0, t.chunks - t.stats.audio_chunks) for t in judged if t.stats)
    doubled = sum(max(0, t.stats.audio_chunks - t.chunks) for t in judged if t.stats)
    turns_lost = turns_doubled = 0
    for t in judged:
        texts = list(t.stats.texts) if t.stats else []
        turns_lost += sum(1 for x in t.turns if x not in texts)
        turns_doubled += sum(texts.count(x) - 1 for x in t.turns if texts.count(x) > 1)
    metrics = [t.metrics for t in tallies if t.metrics is not None]
    return {
        "flavour": args.flavour,
        "sessions": len(tallies),
        "seconds": args.seconds,
        "lifetime_s": args.lifetime,
        "notice_s": [args.notice_min, args.notice_max],
        "handle_interval_s": args.handle_interval,
        "chunks_sent": sent,
        "chunks_lost": lost,
        "chunks_doubled": doubled,
        "turns": sum(len(t.turns) for t in tallies),
        "turns_lost": turns_lost,
        "turns_doubled": turns_doubled,
        "tool_calls": sum(t.tool_calls for t in tallies),
        "sessions_unjudged": len(tallies) - len(judged),
        "errors": [t.error for t in tallies if t.error][:5],
        "moves": sum(m.rotations + m.drops for m in metrics),
        "go_aways": sum(m.go_aways for m in metrics),
        "replay_ambiguous": sum(m.replay_ambiguous for m in metrics),
        "replay_skipped": sum(m.replay_skipped for m in metrics),
        "holds_released": sum(m.holds_released for m in metrics),
        "max_stall_s": round(max((m.max_move_stall_s for m in metrics), default=0.0), 3),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flavour", choices=("gemini", "vertex"), default="gemini")
    parser.add_argument("--sessions", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--lifetime", type=float, default=10.0, help="connection lifetime in s")
    parser.add_argument("--notice-min", type=float, default=4.0, help="shortest goAway notice in s")
    parser.add_argument("--notice-max", type=float, default=8.0, help="longest goAway notice in s")
    parser.add_argument("--go-away-every", type=float, default=0.5, help="mean s between random goAways")
    parser.add_argument("--turn-every", type=float, default=2.0)
    parser.add_argument("--handle-interval", type=float, default=1.0, help="emulator's periodic handles")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(trio.run(main, parse(sys.argv[1:]))))
