"""The bench workload driven by livemesh (trio), in its own process.

    python -m livemesh.bench.livemesh_client < SPEC_JSON   (the spec on stdin: it holds the API key)

Every session runs in one pool (:func:`livemesh.pool.open_pool`) when the pool is available, else
in a plain nursery with :func:`livemesh.session.open_session`; either way the code below is what a
user writes: send, ``receive`` until ``turnComplete``, nothing about reconnects. Rotation is the
library's job: the session is told the server's connection lifetime (``ServiceLimits``) and moves
itself before it (or on ``goAway``) without losing or doubling input; the bench only counts the
moves (``statistics().rotations`` / ``reconnects``) and asks the emulator at the end what it
consumed. Tool calls are answered by a registered async function, as livemesh users do.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
    asynccontextmanager,
    nullcontext,
)
from typing import Any

import trio

from livemesh import wire
from livemesh.bench import workload as wl
from livemesh.bench.metrics import Recorder
from livemesh.bench.runner import emit, read_spec
from livemesh.bench.workload import Check, SessionPlan, WorkloadSpec
from livemesh.limits import ServiceLimits
from livemesh.session import RotationPolicy, Session, SessionConfig, function_tool, open_session
from livemesh.transport import TransportOptions

OpenFn = Callable[[SessionConfig], AbstractAsyncContextManager[Session]]


class _TurnFailed(Exception):
    pass


async def lookup(sid: int, n: int) -> dict[str, Any]:
    """The bench's tool: echoes its arguments so the model's answer can be checked."""
    return wl.tool_result({"sid": sid, "n": n})


def session_config(
    spec: WorkloadSpec, plan: SessionPlan, ssl_context: ssl.SSLContext | None
) -> SessionConfig:
    """The same setup the google-genai runner sends, plus what livemesh needs to rotate on time."""
    declaration = wl.tool_declaration()
    tools = (
        (
            function_tool(
                lookup,
                name=declaration["name"],
                description=declaration["description"],
                parameters=declaration["parameters"],
            ),
        )
        if plan.kind == "tools"
        else ()
    )
    options: dict[str, Any] = {}
    if spec.lifetime_s is not None:
        notice = spec.go_away_notice_s or spec.lifetime_s / 3
        options["limits"] = ServiceLimits(connection_lifetime_s=spec.lifetime_s, go_away_notice_s=notice)
        # Move a little before the goAway would arrive: proactive, at a quiet point.
        options["rotation"] = RotationPolicy(
            margin_s=min(spec.lifetime_s / 2, notice * 1.25), quiet_timeout_s=max(1.0, notice / 2)
        )
    return SessionConfig(
        model=spec.model,
        auth=spec.api_key,
        api_version=spec.api_version,
        base_url=spec.url,
        generation_config={"responseModalities": ["AUDIO" if plan.kind == "audio" else "TEXT"]},
        tools=tools,
        output_audio_transcription={} if plan.kind == "audio" else None,
        context_window_compression=wl.CONTEXT_WINDOW_COMPRESSION,
        transport=TransportOptions(ssl_context=ssl_context),
        session_id=f"bench-s{plan.index}",
        **options,
    )


@asynccontextmanager
async def _plain_open(config: SessionConfig) -> AsyncIterator[Session]:
    async with open_session(config) as session:
        yield session


class _Phase:
    """The traffic phase ends when every session has finished its turns (or failed): then the
    recorder's throughput figures are frozen, and the final ``stats`` checks run outside them."""

    def __init__(self, sessions: int, on_end: Callable[[], None]) -> None:
        self.remaining = sessions
        self.ended = trio.Event()
        self._on_end = on_end

    def leave(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self._on_end()
            self.ended.set()

    async def arrive(self) -> None:
        self.leave()
        await self.ended.wait()


class _Live:
    """Sessions currently open, so progress can add their live counters to the finished ones."""

    def __init__(self) -> None:
        self.sessions: set[Session] = set()
        self.done = {
            "messages_out": 0,
            "messages_in": 0,
            "bytes_out": 0,
            "bytes_in": 0,
            "rotations": 0,
            "reconnects": 0,
        }

    def retire(self, session: Session) -> None:
        self.sessions.discard(session)
        stats = session.statistics()
        for key in self.done:
            self.done[key] += getattr(stats, key)

    def totals(self) -> dict[str, int]:
        totals = dict(self.done)
        for session in self.sessions:
            stats = session.statistics()
            for key in totals:
                totals[key] += getattr(stats, key)
        return totals


def _apply(rec: Recorder, totals: dict[str, int]) -> None:
    rec.messages_sent = totals["messages_out"]
    rec.messages_received = totals["messages_in"]
    rec.bytes_sent = totals["bytes_out"]
    rec.bytes_received = totals["bytes_in"]
    rec.rotations = totals["rotations"]
    # livemesh counts every new connection after the first as a reconnect, planned or not; the
    # report's ``reconnects`` are the unplanned ones (drops), as in the google-genai runner.
    rec.reconnects = max(0, totals["reconnects"] - totals["rotations"])


def _pool_totals(pool: Any) -> dict[str, int]:
    snap = pool.metrics(include_sessions=False)
    return {
        "messages_out": snap.traffic.messages_out,
        "messages_in": snap.traffic.messages_in,
        "bytes_out": snap.traffic.bytes_out,
        "bytes_in": snap.traffic.bytes_in,
        "rotations": snap.rotations,
        "reconnects": snap.reconnects,
    }


async def _await_turn(session: Session, spec: WorkloadSpec, what: str) -> tuple[str, float | None, float]:
    """Receive until ``turnComplete``: (reply text or transcript, first output time, end time)."""
    parts: list[str] = []
    first_at: float | None = None
    with trio.move_on_after(spec.turn_timeout_s) as scope:
        while True:
            message = await session.receive()
            content = message.server_content
            if content is None:
                continue
            text = wire.helpers.extract_text(content) or wire.helpers.output_transcript(content)
            if first_at is None and (text or wire.helpers.extract_audio(content)):
                first_at = time.perf_counter()
            if text:
                parts.append(text)
            if content.turn_complete:
                return "".join(parts), first_at, time.perf_counter()
    assert scope.cancelled_caught
    raise _TurnFailed(f"{what}: no turnComplete within {spec.turn_timeout_s:g} s")


_MAX_EXTRA_TURNS = 3


async def _await_answer(
    session: Session, spec: WorkloadSpec, what: str, accept: Callable[[str], bool], rec: Recorder
) -> tuple[str, float | None, float]:
    """The turn whose reply ``accept``s; turns before it are extra (e.g. the answer to a turn the
    server consumed twice) and are noted, so the final ``stats`` check can say what happened."""
    for _ in range(_MAX_EXTRA_TURNS + 1):
        reply, first_at, done_at = await _await_turn(session, spec, what)
        if not spec.verify or accept(reply):
            return reply, first_at, done_at
        rec.extra_turn(f"{what}: an extra turn before the answer: {reply[:100]!r}")
    raise _TurnFailed(f"{what}: {_MAX_EXTRA_TURNS} unexpected turns in a row")


_STATS_ATTEMPTS = 3


async def _ask_stats(
    session: Session, spec: WorkloadSpec, plan: SessionPlan, rec: Recorder
) -> dict[str, Any]:
    """The emulator's ``stats`` for this session. It is a query, not content, so a cut answer
    (the connection ended mid-answer) is asked again; each cut is noted."""
    reply = ""
    for _ in range(_STATS_ATTEMPTS):
        await session.send_client_content(wl.STATS_QUERY)
        reply, _, _ = await _await_turn(session, spec, f"s{plan.index} stats")
        stats = wl.parse_stats(reply)
        if stats is not None:
            return stats
        rec.extra_turn(f"s{plan.index}: cut stats answer {reply[:80]!r}...")
    raise _TurnFailed(f"s{plan.index}: unreadable stats reply {reply[:120]!r}")


def _acceptor(plan: SessionPlan, turn: int) -> Callable[[str], bool]:
    name = wl.label(plan.index, turn)
    if plan.kind == "text":
        return lambda reply: name in reply
    if plan.kind == "tools":
        return lambda reply: wl.tool_reply_ok(reply, plan.index, turn)
    return lambda reply: "[audio" in reply  # the answer's transcript: "You said: [audio 1.00s, ...]"


async def _run_session(
    spec: WorkloadSpec,
    plan: SessionPlan,
    rec: Recorder,
    live: _Live,
    open_fn: OpenFn,
    ssl_context: ssl.SSLContext | None,
    phase: _Phase,
) -> None:
    in_phase = True
    await trio.sleep(plan.start_delay_s)
    deadline = rec.started_at + spec.duration_s
    check = Check(plan.kind, plan.index)
    speech, silence = wl.speech_chunk(), wl.silence_chunk()
    rec.sessions_active += 1
    session: Session | None = None
    try:
        async with open_fn(session_config(spec, plan, ssl_context)) as session:
            live.sessions.add(session)
            turn = 0
            while time.perf_counter() < deadline:
                turn += 1
                name = wl.label(plan.index, turn)
                if plan.kind == "audio":
                    chunks = [speech] * spec.speech_chunks + [silence] * wl.SILENCE_CHUNKS_TO_END
                    start = time.perf_counter()
                    for i, chunk in enumerate(chunks):
                        if spec.audio_pace > 0:
                            due = start + i * wl.CHUNK_MS / 1000 / spec.audio_pace
                            delay = due - time.perf_counter()
                            if delay > 0:
                                await trio.sleep(delay)
                            rec.audio_lag(max(0.0, time.perf_counter() - due))
                        await session.send_realtime_input(audio=chunk, audio_rate=wl.INPUT_RATE)
                        rec.audio_messages_sent += 1
                    check.audio_chunks += len(chunks)
                    check.audio_bytes += sum(len(c) for c in chunks)
                else:
                    text = (
                        wl.text_turn(plan.index, turn, spec.text_filler)
                        if plan.kind == "text"
                        else wl.tool_turn(plan.index, turn)
                    )
                    await session.send_client_content(text)
                    if plan.kind == "text":
                        check.labels.append(name)
                    else:
                        check.tool_responses += 1
                ref = time.perf_counter()
                _, first_at, done_at = await _await_answer(session, spec, name, _acceptor(plan, turn), rec)
                rec.turn_done(done_at - ref)
                if first_at is not None:
                    rec.first_chunk(first_at - ref)
            in_phase = False
            await phase.arrive()
            if spec.verify:
                stats = await _ask_stats(session, spec, plan, rec)
                verdict = wl.check_stats(check, stats)
                rec.lost += verdict.lost
                rec.duplicated += verdict.duplicated
                for problem in verdict.problems:
                    rec.note(problem)
                rec.sessions_verified += 1
    except _TurnFailed as exc:
        rec.error(str(exc))
    except Exception as exc:  # a session's failure is counted; the others carry on
        rec.error(f"s{plan.index}: {type(exc).__name__}: {exc}"[:300])
    finally:
        if in_phase:
            phase.leave()
        if session is not None:
            rec.session_rotated(session.statistics().rotations)
            live.retire(session)
        rec.sessions_active -= 1
        rec.sessions_done += 1


async def _progress(rec: Recorder, totals: Callable[[], dict[str, int]], interval: float) -> None:
    while True:
        await trio.sleep(interval)
        _apply(rec, totals())
        rec.sample_rss()
        emit({"progress": rec.progress()})


def _limits(spec: WorkloadSpec) -> ServiceLimits:
    if spec.lifetime_s is None:
        return ServiceLimits()
    return ServiceLimits(
        connection_lifetime_s=spec.lifetime_s, go_away_notice_s=spec.go_away_notice_s or spec.lifetime_s / 3
    )


async def amain(spec: WorkloadSpec, *, use_pool: bool = True) -> dict[str, Any]:
    """Run every session of ``spec`` (in one pool, or in a nursery with ``use_pool=False``)."""
    ssl_context = ssl.create_default_context(cafile=spec.ca_file) if spec.ca_file else None
    rec = Recorder()
    live = _Live()
    plans = wl.plan_sessions(spec)
    rec.restart_clock()
    async with AsyncExitStack() as stack:
        if use_pool:
            from livemesh.pool import open_pool

            pool = await stack.enter_async_context(
                open_pool(
                    max_sessions=spec.sessions,
                    limits=_limits(spec),
                    connect_rate=max(50.0, float(spec.sessions)),
                    connect_burst=max(10, spec.sessions // 4),
                    seed=spec.seed,
                )
            )
            open_fn: OpenFn = pool.session
            totals: Callable[[], dict[str, int]] = lambda: _pool_totals(pool)  # noqa: E731
        else:
            open_fn, totals = _plain_open, live.totals

        def end_of_traffic() -> None:
            _apply(rec, totals())
            rec.freeze_traffic()

        phase = _Phase(len(plans), end_of_traffic)
        async with trio.open_nursery() as outer:
            outer.start_soon(_progress, rec, totals, spec.progress_interval_s)
            async with trio.open_nursery() as nursery:
                for plan in plans:
                    nursery.start_soon(_run_session, spec, plan, rec, live, open_fn, ssl_context, phase)
            outer.cancel_scope.cancel()
    return {"result": rec.result(client="livemesh", sessions=spec.sessions), "details": rec.details()}


def _metrics(spec: WorkloadSpec) -> AbstractContextManager[Any]:
    """With ``metrics_port``: the run's OpenTelemetry metrics served for Prometheus (spans go to
    the global tracer provider, which records nothing unless something configured an SDK)."""
    if spec.metrics_port is None:
        return nullcontext()
    from livemesh.telemetry.prometheus import serve_prometheus

    return serve_prometheus(spec.metrics_port)


def main() -> int:
    spec = read_spec()
    with _metrics(spec):
        emit(trio.run(amain, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
