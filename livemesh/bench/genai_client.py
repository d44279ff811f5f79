"""The bench workload driven by google-genai's ``AsyncSession`` (asyncio), in its own process.

    python -m livemesh.bench.genai_client < SPEC_JSON   (the spec on stdin: it holds the API key)

The official SDK is the peer we compare against; it is a test extra and is imported only here,
inside :func:`main`, so ``python -m livemesh bench`` works without it until ``--vs genai`` or
``--client genai`` is asked for. The SDK only speaks ``wss://`` with an API key: the parent passes
the emulator's CA as ``spec.ca_file`` and this process sets ``SSL_CERT_FILE`` to it before the
client is made.

What a careful SDK user writes for rotation is written here too, so both columns run the same
workload: resumption is on, the newest resumable handle is kept, and on ``goAway`` the session
finishes its turn, waits for the handle that follows ``turnComplete``, and reconnects with it.
An unexpected close reconnects with the newest handle and replays the unfinished turn, and so
does a move before any resumable handle followed the last ``turnComplete`` (the connection ended
first): the newest handle then predates that turn, so the turn is sent again (counted once).
Bytes are counted by wrapping the session's WebSocket ``send``/``recv`` (bench-only).

Turn latency is what the user waits, as in the livemesh runner: a livemesh session moving to a
new connection holds the next turn until it is there, so that wait is inside its latency. Here the
runner rotates *between* turns, before sending the next one; the time from the end of the turn
that triggered the rotation to the new connection's ``setupComplete`` is added to the next text or
tool turn's latency (and first-response time), and an audio turn's real-time schedule starts when
the rotation did (the user spoke meanwhile: the chunks due are sent at once, as livemesh replays
the ones it held), so a rotation costs the same in both columns.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from typing import Any

from livemesh.bench import workload as wl
from livemesh.bench.metrics import Recorder
from livemesh.bench.runner import emit, read_spec
from livemesh.bench.workload import Check, SessionPlan, WorkloadSpec

MISSING_SDK = (
    "google-genai is not installed: `--vs genai` / `--client genai` need the official SDK "
    "(pip install 'livemesh[test]' or pip install google-genai)"
)


class _TurnFailed(Exception):
    pass


class _Connection:
    """One SDK connection's receive side: turn results and resumption state, read by a task."""

    def __init__(self, session: Any, rec: Recorder, state: _State, types: Any) -> None:
        self.session = session
        self.types = types
        self.rec = rec
        self.state = state
        self.turn_done = asyncio.Event()
        self.closed: BaseException | None = None
        self.reply: list[str] = []
        self.first_at: float | None = None
        self.handle_after_turn = asyncio.Event()
        self.turn_tool_responses = 0
        self.covered = False  # a resumable handle came after this turn's turnComplete

    def start_turn(self) -> None:
        self.turn_done = asyncio.Event()
        self.handle_after_turn = asyncio.Event()
        self.reply = []
        self.first_at = None
        self.turn_tool_responses = 0
        self.covered = False

    async def receive_loop(self) -> None:
        try:
            while True:
                async for msg in self.session.receive():
                    await self._on_message(msg)
        except Exception as exc:  # the SDK raises APIError / websockets errors; any end stops this connection
            self.closed = exc
            self.turn_done.set()
            self.handle_after_turn.set()

    async def _on_message(self, msg: Any) -> None:
        rec = self.rec
        rec.messages_received += 1
        update = msg.session_resumption_update
        if update is not None and update.resumable and update.new_handle:
            self.state.handle = update.new_handle
            self.state.messages_since_handle = 0
            self.state.uncovered = None  # issued after the last turnComplete: it covers that turn
            if self.turn_done.is_set():
                self.covered = True
                self.handle_after_turn.set()
        if msg.go_away is not None:
            self.state.go_away = True
        content = msg.server_content
        if content is not None:
            has_output = bool(content.model_turn and content.model_turn.parts) or bool(
                content.output_transcription and content.output_transcription.text
            )
            if has_output and self.first_at is None:
                self.first_at = time.perf_counter()
            if content.model_turn and content.model_turn.parts:
                self.reply.extend(p.text for p in content.model_turn.parts if p.text)
            if content.output_transcription and content.output_transcription.text:
                self.reply.append(content.output_transcription.text)
            if content.turn_complete:
                self.turn_done.set()
        if msg.tool_call is not None and msg.tool_call.function_calls:
            responses = [
                self.types.FunctionResponse(id=call.id, name=call.name, response=wl.tool_result(call.args))
                for call in msg.tool_call.function_calls
            ]
            await self.session.send_tool_response(function_responses=responses)
            rec.messages_sent += 1
            self.state.check.tool_responses += len(responses)
            self.turn_tool_responses += len(responses)


class _Phase:
    """End of the traffic phase for all sessions (see the livemesh runner's ``_Phase``)."""

    def __init__(self, sessions: int, rec: Recorder) -> None:
        self.remaining = sessions
        self.ended = asyncio.Event()
        self.rec = rec

    def leave(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.rec.freeze_traffic()
            self.ended.set()


class _State:
    """What survives reconnects: the newest handle, the ledger of what was sent."""

    def __init__(self, plan: SessionPlan, phase: _Phase) -> None:
        self.plan = plan
        self.phase = phase
        self.in_phase = True
        self.stats_attempts = 0
        self.rotations = 0
        self.handle: str | None = None
        self.go_away = False
        self.rotating_since: float | None = None
        """When the turn that triggered a rotation ended (the next turn waits from then)."""
        self.rotation_wait = 0.0
        """The rotation's wait, charged to the first turn on the new connection."""
        self.messages_since_handle = 0
        self.check = Check(plan.kind, plan.index)
        self.uncovered: tuple[list[tuple[str, Any]], int] | None = None
        """The last finished turn (messages, tool responses) until a resumable handle follows it."""

    def take_uncovered(self) -> list[tuple[str, Any]] | None:
        """The last turn to send again on the next connection (its counts undone: they are counted
        when the replay finishes), or None when the newest handle already covers it."""
        if self.uncovered is None:
            return None
        messages, tool_responses = self.uncovered
        self.uncovered = None
        check = self.check
        if self.plan.kind == "text" and check.labels:
            check.labels.pop()
        if self.plan.kind == "audio":
            check.audio_chunks -= len(messages)
            check.audio_bytes -= sum(len(p) for _, p in messages)
        check.tool_responses -= tool_responses
        return messages


async def _run_session(
    client: Any, types: Any, spec: WorkloadSpec, plan: SessionPlan, rec: Recorder, phase: _Phase
) -> None:
    state = _State(plan, phase)
    await asyncio.sleep(plan.start_delay_s)
    deadline = rec.started_at + spec.duration_s
    modality = types.Modality.AUDIO if plan.kind == "audio" else types.Modality.TEXT
    speech, silence = wl.speech_chunk(), wl.silence_chunk()
    turn = 0
    pending: list[tuple[str, Any]] | None = None  # a turn to replay after an unexpected close
    rec.sessions_active += 1
    try:
        while True:
            config = types.LiveConnectConfig(
                response_modalities=[modality],
                session_resumption=types.SessionResumptionConfig(handle=state.handle),
                tools=[types.Tool(function_declarations=[wl.tool_declaration()])]
                if plan.kind == "tools"
                else None,
                output_audio_transcription=types.AudioTranscriptionConfig() if plan.kind == "audio" else None,
                context_window_compression=types.ContextWindowCompressionConfig.model_validate(
                    wl.CONTEXT_WINDOW_COMPRESSION
                ),
            )
            reconnecting = state.handle is not None
            async with client.aio.live.connect(model=spec.model, config=config) as session:
                rec.messages_sent += 1  # setup
                if reconnecting:
                    if state.go_away:
                        rec.rotations += 1
                        state.rotations += 1
                    else:
                        rec.reconnects += 1
                state.go_away = False
                if state.rotating_since is not None:
                    state.rotation_wait = time.perf_counter() - state.rotating_since
                    state.rotating_since = None
                conn = _Connection(session, rec, state, types)
                receiver = asyncio.create_task(conn.receive_loop())
                try:
                    outcome = await _drive(conn, spec, plan, state, deadline, speech, silence, turn, pending)
                finally:
                    receiver.cancel()
                    try:
                        await receiver
                    except asyncio.CancelledError:
                        pass
            kind, turn, pending = outcome
            if kind == "done":
                break
    except _TurnFailed as exc:
        rec.error(str(exc))
    except Exception as exc:
        rec.error(f"s{plan.index}: {type(exc).__name__}: {exc}"[:300])
    finally:
        rec.session_rotated(state.rotations)
        if state.in_phase:
            state.in_phase = False
            phase.leave()
        rec.sessions_active -= 1
        rec.sessions_done += 1


Outcome = tuple[str, int, "list[tuple[str, Any]] | None"]


async def _send(conn: _Connection, what: str, payload: Any) -> None:
    session, rec, types = conn.session, conn.rec, conn.types
    if what == "text":
        await session.send_client_content(
            turns={"role": "user", "parts": [{"text": payload}]}, turn_complete=True
        )
    else:
        await session.send_realtime_input(audio=types.Blob(data=payload, mime_type=wl.INPUT_MIME))
        rec.audio_messages_sent += 1
    rec.messages_sent += 1
    conn.state.messages_since_handle += 1


async def _await_turn(conn: _Connection, spec: WorkloadSpec, label: str) -> None:
    try:
        await asyncio.wait_for(conn.turn_done.wait(), spec.turn_timeout_s)
    except TimeoutError:
        raise _TurnFailed(f"{label}: no turnComplete within {spec.turn_timeout_s:g} s") from None


async def _drive(
    conn: _Connection,
    spec: WorkloadSpec,
    plan: SessionPlan,
    state: _State,
    deadline: float,
    speech: bytes,
    silence: bytes,
    turn: int,
    pending: list[tuple[str, Any]] | None,
) -> Outcome:
    """Turns on this connection until the run ends ("done") or it must move ("again")."""
    rec, check = conn.rec, state.check
    while True:
        if pending is None and time.perf_counter() >= deadline:
            if state.in_phase:
                state.in_phase = False
                state.phase.leave()
                await state.phase.ended.wait()
            if not spec.verify:
                return ("done", turn, None)
            if state.go_away and conn.closed is None:
                # Moving for the check: as after any turn, only with the handle issued after the
                # last turnComplete (an older one resumes a context without that turn's input).
                await _await_handle_after_turn(conn, spec, plan)
                return ("again", turn, state.take_uncovered())
            if conn.closed is not None:
                return ("again", turn, state.take_uncovered())  # the check runs on the next connection
            return await _final_check(conn, spec, state)
        messages: list[tuple[str, Any]]
        if pending is not None:
            messages, pending = pending, None
        else:
            turn += 1
            if plan.kind == "text":
                messages = [("text", wl.text_turn(plan.index, turn, spec.text_filler))]
            elif plan.kind == "tools":
                messages = [("text", wl.tool_turn(plan.index, turn))]
            else:
                messages = [("audio", speech)] * spec.speech_chunks + [
                    ("audio", silence)
                ] * wl.SILENCE_CHUNKS_TO_END
        conn.start_turn()
        sent_at = time.perf_counter()
        waited, state.rotation_wait = state.rotation_wait, 0.0
        if plan.kind == "audio":
            sent_at -= waited  # the turn's audio started when the rotation did (see module doc)
            waited = 0.0
        try:
            for i, (what, payload) in enumerate(messages):
                if what == "audio" and spec.audio_pace > 0:
                    due = sent_at + i * wl.CHUNK_MS / 1000 / spec.audio_pace
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    rec.audio_lag(max(0.0, time.perf_counter() - due))
                await _send(conn, what, payload)
            ref = time.perf_counter()
            await _await_turn(conn, spec, wl.label(plan.index, turn))
        except _TurnFailed:
            raise
        except Exception as exc:
            conn.closed = conn.closed or exc
        if conn.closed is not None:
            # The connection ended before the turn did: resume and replay the whole turn.
            return ("again", turn, messages)
        if plan.kind == "text":
            check.labels.append(wl.label(plan.index, turn))
        if plan.kind == "audio":
            check.audio_chunks += len(messages)
            check.audio_bytes += sum(len(p) for _, p in messages)
        # (the receiving task may already have taken the handle that follows turnComplete)
        state.uncovered = None if conn.covered else (messages, conn.turn_tool_responses)
        done_at = time.perf_counter()
        rec.turn_done(done_at - ref + waited)
        if conn.first_at is not None:
            rec.first_chunk(conn.first_at - ref + waited)
        reply = "".join(conn.reply)
        ok = (
            wl.label(plan.index, turn) in reply
            if plan.kind == "text"
            else wl.tool_reply_ok(reply, plan.index, turn)
            if plan.kind == "tools"
            else "[audio" in reply
        )
        if spec.verify and not ok:
            raise _TurnFailed(f"{wl.label(plan.index, turn)}: unexpected reply {reply[:120]!r}")
        if state.go_away:
            # Rotate at this quiet point: the handle issued after turnComplete covers everything sent.
            state.rotating_since = done_at
            await _await_handle_after_turn(conn, spec, plan)
            return ("again", turn, state.take_uncovered())


async def _await_handle_after_turn(conn: _Connection, spec: WorkloadSpec, plan: SessionPlan) -> None:
    try:
        await asyncio.wait_for(conn.handle_after_turn.wait(), spec.turn_timeout_s)
    except TimeoutError:
        raise _TurnFailed(f"s{plan.index}: no resumable handle after goAway") from None


async def _final_check(conn: _Connection, spec: WorkloadSpec, state: _State) -> Outcome:
    rec = conn.rec
    conn.start_turn()
    await _send(conn, "text", wl.STATS_QUERY)
    await _await_turn(conn, spec, f"s{state.plan.index} stats")
    if conn.closed is not None:
        # The connection reached its end meanwhile: ``stats`` is a query, not content, so asking
        # again on the next connection is safe.
        state.stats_attempts += 1
        if state.stats_attempts > 3:
            why = f"{type(conn.closed).__name__}: {conn.closed}"[:160]
            raise _TurnFailed(f"s{state.plan.index}: connection closed during the final stats query ({why})")
        return ("again", 0, None)
    stats = wl.parse_stats("".join(conn.reply))
    if stats is None:
        state.stats_attempts += 1
        if state.stats_attempts > 3:
            raise _TurnFailed(f"s{state.plan.index}: unreadable stats reply {''.join(conn.reply)[:120]!r}")
        return ("again", 0, None)
    verdict = wl.check_stats(state.check, stats)
    rec.lost += verdict.lost
    rec.duplicated += verdict.duplicated
    for problem in verdict.problems:
        rec.note(problem)
    rec.sessions_verified += 1
    return ("done", 0, None)


async def _progress(rec: Recorder, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        rec.sample_rss()
        emit({"progress": rec.progress()})


async def _amain(spec: WorkloadSpec) -> dict[str, Any]:
    try:
        from google import genai
        from google.genai import types
    except ImportError:
        print(MISSING_SDK, file=sys.stderr)
        raise SystemExit(2) from None

    base = spec.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    http_options = types.HttpOptions(base_url=base, api_version=spec.api_version)
    client = genai.Client(api_key=spec.api_key, http_options=http_options)
    rec = Recorder(bytes_counted=False)  # google-genai exposes no public byte count on its socket
    plans = wl.plan_sessions(spec)
    rec.restart_clock()
    phase = _Phase(len(plans), rec)
    ticker = asyncio.create_task(_progress(rec, spec.progress_interval_s))
    try:
        await asyncio.gather(*(_run_session(client, types, spec, plan, rec, phase) for plan in plans))
    finally:
        ticker.cancel()
    return {"result": rec.result(client="genai", sessions=spec.sessions), "details": rec.details()}


def main() -> int:
    spec = read_spec()
    if spec.ca_file:
        os.environ["SSL_CERT_FILE"] = spec.ca_file
    random.seed(spec.seed)
    emit(asyncio.run(_amain(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
