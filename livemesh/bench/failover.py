"""The failover benchmark: N worker processes share one emulator and one Redis; one is SIGKILLed.

:func:`run_failover_bench` is what ``python -m livemesh bench --workers N --redis URL
--kill-one-at S`` calls (and ``bench/failover.py`` standalone). This process serves the emulator
(so it can read every session's context from the emulator's own ``stats``) and supervises the
workers; each worker is ``python -m livemesh.bench.failover worker INDEX``, reading its spec (a
JSON line, with the credentials and the Redis URL) on stdin, never on its command line, where any
user of the machine could read it (``ps``). Each worker runs:

* :func:`~livemesh.redis.open_ownership` (lease + fencing token per conversation), a fenced
  :class:`~livemesh.redis.RedisHandleStore`, and a livemesh pool using that store;
* its share of the conversations, each ``turns`` numbered text turns (``turn 1``, ``turn 2``,
  ...), with the owner's token and the server session id stored as fenced state;
* an orphan scanner: conversations whose owner's lease ran out are claimed (atomically, so by
  exactly one worker) and resumed from the stored handle; the new owner asks the model to
  ``recall`` the context, continues after the last turn it contains, and so neither repeats a
  turn the context already has nor skips one it lacks.

At ``kill_one_at`` seconds worker 0 is SIGKILLed. The report counts, from Redis and the
emulator: the killed worker's live conversations, how many were resumed by others (and that each
was taken over exactly once, with a larger fencing token), and over all conversations the turns
lost (missing from the model's context) and duplicated (present twice).

Worker stdout is JSON lines (``ready``, ``claimed``, ``resumed``, ``finished``, ``error``); the
parent writes ``go`` on their stdin once all are ready, so process start-up is not measured.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs
import cattrs
import trio

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import LivemeshError
from livemesh.pool.pool import open_pool
from livemesh.redis._client import open_redis
from livemesh.redis.errors import OwnershipError, OwnershipLostError, RedisUnavailableError
from livemesh.redis.handles import FLEET_TAG, RedisHandleStore
from livemesh.redis.ownership import Claim, Ownership, open_ownership
from livemesh.redis.quota import DistributedQuota, open_quota, quota_connect
from livemesh.session.config import RetryPolicy, SessionConfig

__all__ = ["FailoverReport", "FailoverSpec", "render_report", "run_failover_bench"]

log = logging.getLogger("livemesh.bench.failover")

MODEL = "gemini-2.0-flash-live-001"
QUOTA_PROJECT = "bench"
_converter = cattrs.Converter()


@attrs.frozen(kw_only=True)
class FailoverSpec:
    """What every worker needs to know (sent to it as JSON on its command line)."""

    emulator_url: str
    redis_url: str
    prefix: str
    workers: int
    sessions: int
    turns: int
    turn_interval_s: float
    lease_ttl_s: float
    quota_limit: int
    """The project's distributed session quota shared by all workers (each connection holds a lease)."""
    api_key: str = "bench-key"

    def conversation(self, index: int) -> str:
        return f"conv-{index:04d}"


@attrs.frozen(kw_only=True)
class FailoverReport:
    workers: int
    sessions: int
    turns_per_session: int
    killed_worker: str
    killed_at_s: float
    lease_ttl_s: float
    killed_sessions: int
    """Live conversations the killed worker owned when it died (Redis's view)."""
    resumed_by_others: int
    """Of those, how many another worker took over and finished (resumed, or started afresh when
    the killed worker had not yet given the session any context)."""
    resumed_with_context: int
    """Of those, how many the new owner found with context to keep (``recall`` not empty)."""
    takeovers_exactly_once: int
    """Of those, how many were taken over by exactly one claim (the rest: 0 or 2+)."""
    fencing_ok: int
    """Takeovers whose fencing token was larger than the dead owner's."""
    takeover_latency_s: tuple[float, float, float]
    """(min, median, max) seconds from the SIGKILL to the new owner's first answer."""
    finished: int
    contexts_intact: int
    """Conversations whose context (the emulator's record) is exactly ``turn 1 .. turn N``, in order."""
    lost_turns: int
    duplicated_turns: int
    emulator_resumptions: int
    """Resumptions the emulator saw across all conversations (takeovers, plus any reconnects)."""
    unexpected_resumptions: tuple[str, ...]
    """Conversations the emulator saw resumed more often than their takeovers explain, each as
    ``conv:resumptions/takeovers`` (a session-level reconnect, or a resume refused and retried)."""
    quota_limit: int
    max_quota_in_use: int
    """Most quota leases held at once fleet-wide (sampled every 50 ms): never above the limit."""
    leases_lost: int
    """Conversations a *live* worker lost because its heartbeat came too late (an overloaded
    host): fenced out and taken over by another worker. Churn, not loss; 0 on a healthy host."""
    errors: int
    duration_s: float

    @property
    def ok(self) -> bool:
        return (
            self.finished == self.sessions
            and self.contexts_intact == self.sessions
            and self.lost_turns == 0
            and self.duplicated_turns == 0
            and self.resumed_by_others == self.killed_sessions
            and self.takeovers_exactly_once == self.killed_sessions
            and self.fencing_ok == self.killed_sessions
            and self.errors == 0
            and self.max_quota_in_use <= self.quota_limit
        )

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _converter.unstructure(self)
        out["ok"] = self.ok
        return out


def render_report(report: FailoverReport) -> str:
    """A plain-text summary (the bench CLI may render it in its own table instead)."""
    lo, mid, hi = report.takeover_latency_s
    rows = [
        (
            "workers / sessions / turns each",
            f"{report.workers} / {report.sessions} / {report.turns_per_session}",
        ),
        (
            "killed",
            f"{report.killed_worker} (SIGKILL at {report.killed_at_s:.2f} s, lease {report.lease_ttl_s:g} s)",
        ),
        ("its live sessions", str(report.killed_sessions)),
        ("taken over and finished by others", str(report.resumed_by_others)),
        ("  of which resumed with context", str(report.resumed_with_context)),
        ("taken over exactly once", str(report.takeovers_exactly_once)),
        ("fencing token increased", str(report.fencing_ok)),
        ("kill -> first answer (min/med/max)", f"{lo:.2f} / {mid:.2f} / {hi:.2f} s"),
        ("sessions finished", f"{report.finished}/{report.sessions}"),
        ("contexts exactly turn 1..N", f"{report.contexts_intact}/{report.sessions}"),
        ("turns lost / duplicated", f"{report.lost_turns} / {report.duplicated_turns}"),
        ("emulator resumptions", str(report.emulator_resumptions)),
        ("  beyond one per takeover", ", ".join(report.unexpected_resumptions) or "none"),
        ("quota leases in use (max / limit)", f"{report.max_quota_in_use} / {report.quota_limit}"),
        ("leases lost by live workers", str(report.leases_lost)),
        ("worker errors", str(report.errors)),
        ("wall time", f"{report.duration_s:.1f} s"),
        ("verdict", "OK" if report.ok else "FAILED"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# ====================================================================== worker side


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _session_config(spec: FailoverSpec) -> SessionConfig:
    return SessionConfig(
        model=MODEL,
        auth=ApiKey(spec.api_key),
        base_url=spec.emulator_url,
        generation_config={"response_modalities": ["TEXT"]},
        session_resumption=wire.SessionResumptionConfig(),
        retry=RetryPolicy(max_attempts=8, base_delay=0.05, max_delay=0.5),
    )


async def _worker(spec: FailoverSpec, index: int) -> None:
    worker_id = f"w{index}"
    config = _session_config(spec)
    async with (
        open_redis(spec.redis_url, prefix=spec.prefix) as backend,
        open_ownership(backend, worker_id=worker_id, lease_ttl_s=spec.lease_ttl_s) as owners,
        open_quota(backend, QUOTA_PROJECT, spec.quota_limit, lease_ttl_s=spec.lease_ttl_s) as quota,
        open_pool(
            handle_store=RedisHandleStore(backend, fence=owners.token),
            connect=quota_connect(quota, timeout=60.0),
            max_sessions=spec.sessions,
            seed=index,
            connect_rate=500.0,
            connect_burst=100,
        ) as pool,
    ):
        done_key = backend.key(FLEET_TAG, "bench-done")
        # Claim this worker's share before "go", so start-up speed does not decide who owns what.
        claims: dict[str, Claim] = {}
        for j in range(index, spec.sessions, spec.workers):
            conversation_id = spec.conversation(j)
            try:
                claims[conversation_id] = await owners.claim(conversation_id)
            except OwnershipError:
                pass
        _emit({"ready": worker_id})
        async with trio.lowlevel.FdStream(os.dup(0)) as stdin:
            await stdin.receive_some()  # "go"
        running: set[str] = set()

        async def drive(conversation_id: str) -> None:
            try:
                claim = claims.pop(conversation_id, None) or await owners.claim(conversation_id)
                await _drive(spec, owners, pool, config, claim, done_key)
            except OwnershipError:
                pass  # another worker got there first
            except OwnershipLostError:
                # Our heartbeat came too late and another worker took over: fencing stopped us.
                _emit({"event": "lost", "conv": conversation_id})
            except (LivemeshError, OSError) as exc:
                _emit({"event": "error", "conv": conversation_id, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                running.discard(conversation_id)

        async with trio.open_nursery() as nursery:

            def start(conversation_id: str) -> None:
                if conversation_id not in running:
                    running.add(conversation_id)
                    nursery.start_soon(drive, conversation_id)

            for conversation_id in list(claims):
                start(conversation_id)
            await trio.sleep(spec.lease_ttl_s)  # let every worker claim its own share first
            while True:
                try:
                    if (
                        await backend.call("bench done", lambda: backend.client.scard(done_key))
                        >= spec.sessions
                    ):
                        break
                    for conversation_id in await owners.orphans():
                        start(conversation_id)
                except RedisUnavailableError:
                    pass  # logged by the backend; look again at the next scan
                await trio.sleep(spec.lease_ttl_s / 4)
            nursery.cancel_scope.cancel()


async def _drive(
    spec: FailoverSpec,
    owners: Ownership,
    pool: Any,
    config: SessionConfig,
    claim: Claim,
    done_key: str,
) -> None:
    conversation_id = claim.conversation_id
    async with owners.hold(claim):
        state = await owners.read_state(conversation_id)
        _emit(
            {
                "event": "claimed",
                "conv": conversation_id,
                "token": claim.token,
                "previous": claim.previous_owner,
            }
        )
        async with pool.session(config, conversation_id=conversation_id) as session:
            next_turn = 1
            if claim.is_takeover or state:
                texts = json.loads(await session.ask("recall"))
                next_turn = len(texts) + 1
                _emit(
                    {
                        "event": "resumed",
                        "conv": conversation_id,
                        "token": claim.token,
                        "previous": claim.previous_owner,
                        "previous_token": int(state.get("token", 0)),
                        "recalled": len(texts),
                    }
                )
            # Fenced application state: only the current owner's token writes.
            await owners.write_state(claim, {"token": claim.token, "server": session.server_session_id or ""})
            for turn in range(next_turn, spec.turns + 1):
                await session.ask(f"turn {turn}")
                if turn == next_turn and claim.is_takeover:
                    _emit({"event": "answered", "conv": conversation_id})
                await trio.sleep(spec.turn_interval_s)
            _emit({"event": "finished", "conv": conversation_id, "server": session.server_session_id})
        await owners.backend.call(
            "bench done", lambda: owners.backend.client.sadd(done_key, [conversation_id])
        )


def worker_main(argv: Sequence[str]) -> int:
    """``python -m livemesh.bench.failover worker INDEX``, the spec's JSON line on stdin."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = _converter.structure(json.loads(_read_line(0)), FailoverSpec)
    trio.run(_worker, spec, int(argv[0]))
    return 0


def _read_line(fd: int) -> bytes:
    """One line from ``fd``, unbuffered: what follows it (the parent's ``go``) stays unread for
    the worker's own read of the same descriptor. The parent sends nothing more until the worker
    says it is ready, so nothing past the newline has arrived yet."""
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            raise SystemExit("the spec line ended early (the parent went away?)")
        line += chunk
    return bytes(line)


# ====================================================================== parent side


@attrs.define
class _Worker:
    index: int
    process: trio.Process
    ready: trio.Event = attrs.field(factory=trio.Event)
    events: list[tuple[float, dict[str, Any]]] = attrs.field(factory=list)


async def _read_events(worker: _Worker) -> None:
    stream = worker.process.stdout
    assert stream is not None
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            obj = json.loads(line)
            if "ready" in obj:
                worker.ready.set()
            else:
                worker.events.append((trio.current_time(), obj))


async def run_failover_bench(
    *,
    workers: int,
    redis_url: str,
    kill_one_at: float,
    sessions: int = 60,
    turns: int = 20,
    turn_interval_s: float = 0.25,
    lease_ttl_s: float = 3.0,
    quota_limit: int | None = None,
    timeout_s: float = 120.0,
    emulator: Emulator | None = None,
) -> FailoverReport:
    """Run the failover benchmark (see the module docstring) and return its report.

    ``quota_limit`` (default: ``sessions``, so a takeover must wait for the dead worker's quota
    leases to expire) is the fleet-wide session quota. ``emulator``: serve from this one (tests)
    instead of opening one in this process.
    """
    if workers < 2 or sessions < 1 or turns < 1 or not kill_one_at > 0:
        raise ValueError("need workers >= 2, sessions >= 1, turns >= 1, kill_one_at > 0")
    if emulator is None:
        async with open_emulator(EmulatorConfig(resumption_update_interval_s=1.0)) as emu:
            return await run_failover_bench(
                workers=workers,
                redis_url=redis_url,
                kill_one_at=kill_one_at,
                sessions=sessions,
                turns=turns,
                turn_interval_s=turn_interval_s,
                lease_ttl_s=lease_ttl_s,
                quota_limit=quota_limit,
                timeout_s=timeout_s,
                emulator=emu,
            )
    spec = FailoverSpec(
        emulator_url=emulator.url,
        redis_url=redis_url,
        prefix="bench-" + secrets.token_hex(4),
        workers=workers,
        sessions=sessions,
        turns=turns,
        turn_interval_s=turn_interval_s,
        lease_ttl_s=lease_ttl_s,
        quota_limit=sessions if quota_limit is None else quota_limit,
    )
    return await _run(emulator, spec, kill_one_at, timeout_s)


async def _sample_quota(quota: DistributedQuota, peak: list[int], scope: trio.CancelScope) -> None:
    with scope:
        while True:
            try:
                peak[0] = max(peak[0], (await quota.usage())[0])
            except RedisUnavailableError:
                pass
            await trio.sleep(0.05)


async def _run(emu: Emulator, spec: FailoverSpec, kill_one_at: float, timeout_s: float) -> FailoverReport:
    workers, sessions, turns = spec.workers, spec.sessions, spec.turns
    redis_url, lease_ttl_s = spec.redis_url, spec.lease_ttl_s
    conversations = [spec.conversation(j) for j in range(sessions)]
    spec_json = json.dumps(_converter.unstructure(spec))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: list[_Worker] = []
    killed = "w0"
    async with open_redis(redis_url, prefix=spec.prefix) as backend:
        owners = Ownership(backend, worker_id="bench-parent")
        await owners.enlist(conversations)
        peak = [0]
        try:
            with trio.fail_after(timeout_s):
                async with trio.open_nursery() as nursery:
                    sampler = trio.CancelScope()
                    nursery.start_soon(
                        _sample_quota,
                        DistributedQuota(backend, QUOTA_PROJECT, spec.quota_limit),
                        peak,
                        sampler,
                    )
                    for i in range(workers):
                        process = await trio.lowlevel.open_process(
                            [sys.executable, "-m", "livemesh.bench.failover", "worker", str(i)],
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            env=env,
                        )
                        assert process.stdin is not None
                        await process.stdin.send_all(spec_json.encode() + b"\n")  # not argv: ps shows that
                        worker = _Worker(i, process)
                        procs.append(worker)
                        nursery.start_soon(_read_events, worker)
                    for worker in procs:
                        await worker.ready.wait()
                    started = trio.current_time()
                    for worker in procs:
                        assert worker.process.stdin is not None
                        await worker.process.stdin.send_all(b"go\n")
                    await trio.sleep_until(started + kill_one_at)
                    procs[0].process.send_signal(signal.SIGKILL)
                    killed_at = trio.current_time()
                    snapshot = await owners.owners_of(conversations)  # one script: milliseconds
                    owned_at_kill = {
                        conv: token or 0 for conv, (owner, token) in snapshot.items() if owner == killed
                    }
                    for worker in procs:
                        await worker.process.wait()
                    sampler.cancel()  # the readers finish by themselves at EOF
        finally:
            with trio.CancelScope(shield=True):
                for worker in procs:
                    if worker.process.returncode is None:
                        worker.process.kill()
                        await worker.process.wait()
        ended = trio.current_time()

    events = [(t, w.index, e) for w in procs for t, e in w.events]
    finished = {e["conv"]: e for _, _, e in events if e.get("event") == "finished"}
    takeovers: Counter[str] = Counter()
    fencing_ok = 0
    first_answer: dict[str, float] = {}
    resumed_by = {}
    with_context = set()
    for t, index, e in events:
        if e.get("event") == "resumed" and e.get("previous") == killed and e["conv"] in owned_at_kill:
            takeovers[e["conv"]] += 1
            resumed_by[e["conv"]] = index
            if e.get("recalled", 0) > 0:
                with_context.add(e["conv"])
            if e["token"] > owned_at_kill[e["conv"]]:
                fencing_ok += 1
        if e.get("event") == "answered" and e["conv"] in owned_at_kill and e["conv"] not in first_answer:
            first_answer[e["conv"]] = t - killed_at
    lost = duplicated = resumptions = intact = 0
    unexpected: list[str] = []
    expected = [f"turn {t}" for t in range(1, turns + 1)]
    for conv in conversations:
        server_id = finished.get(conv, {}).get("server")
        if not server_id:
            lost += turns
            continue
        stats = emu.stats(server_id)
        counts = Counter(stats.texts)
        intact += list(stats.texts) == expected
        lost += sum(1 for text in expected if counts[text] == 0)
        duplicated += sum(counts[text] - 1 for text in expected if counts[text] > 1)
        resumptions += stats.resumptions
        claims = sum(1 for _, _, e in events if e.get("event") == "resumed" and e["conv"] == conv)
        if stats.resumptions > claims:
            unexpected.append(f"{conv}:{stats.resumptions}/{claims}")
    latencies = sorted(first_answer.values())
    latency = (latencies[0], latencies[len(latencies) // 2], latencies[-1]) if latencies else (math.nan,) * 3
    return FailoverReport(
        workers=workers,
        sessions=sessions,
        turns_per_session=turns,
        killed_worker=killed,
        killed_at_s=killed_at - started,
        lease_ttl_s=lease_ttl_s,
        killed_sessions=len(owned_at_kill),
        resumed_by_others=sum(
            1 for conv in owned_at_kill if conv in finished and resumed_by.get(conv, 0) != 0
        ),
        resumed_with_context=len(with_context),
        takeovers_exactly_once=sum(1 for conv in owned_at_kill if takeovers[conv] == 1),
        fencing_ok=fencing_ok,
        takeover_latency_s=(latency[0], latency[1], latency[2]),
        finished=len(finished),
        contexts_intact=intact,
        lost_turns=lost,
        duplicated_turns=duplicated,
        emulator_resumptions=resumptions,
        unexpected_resumptions=tuple(unexpected),
        quota_limit=spec.quota_limit,
        max_quota_in_use=peak[0],
        leases_lost=sum(1 for _, _, e in events if e.get("event") == "lost"),
        errors=sum(1 for _, _, e in events if e.get("event") == "error"),
        duration_s=ended - started,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(
        "usage: python -m livemesh.bench.failover worker INDEX, the spec on stdin "
        "(started by run_failover_bench)"
    )
