"""``open_pool``: many Live sessions as supervised actors in one nursery.

Shape (trio's nursery idiom): ``async with open_pool(...) as pool`` owns one nursery; every session
the pool runs is one child task in it. A child opens its session with ``open_session`` (so the
session's own tasks live in a nursery inside the child), runs the user's handler, and catches
*everything* the session or handler raises at its boundary. Rotation planning and handle saving
are pool-wide (one planner task with a timer heap, one saver task), not a task per session: an
idle session's footprint is a headline figure, and a parked task costs ~2-4 KB. A rotation runs
in a short-lived helper task bound to the session's incarnation.

One session failing never cancels its siblings: the failure is logged,
counted, passed to ``on_session_error`` and judged by the restart policy
(:mod:`livemesh.pool.supervision`), and the child restarts from the newest stored resumption
handle (:mod:`livemesh.pool.handles`) or gives up with a typed error.

Cancellation is the only thing not caught: ``pool.close()``, the enclosing block being cancelled,
or Ctrl-C unwind every child through its session's ``async with``, which closes its socket.

Two ways in:

* ``async with pool.session(config) as session:`` lends a session to the caller's block (the
  session still runs in the pool's nursery; the caller talks to it through its channels). A
  lent session is never restarted behind the caller's back (the caller holds the object); its
  failures are reported and surface in the caller's next send/receive.
* ``await pool.start(config, handler)`` is fire-and-supervise: ``handler(session)`` runs in the
  pool, and is called again with a resumed session after a restart. It returns a
  :class:`Supervised` handle once admitted.

Admission (:mod:`livemesh.pool.admission`) bounds concurrent sessions fairly; every connection
attempt (first connects and restarts) passes the quota backoff and the rate limiter
(:mod:`livemesh.pool.ratelimit`); rotations are planned by :mod:`livemesh.pool.rotation`.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing
from typing import Any, Protocol, TypeAlias

import attrs
import trio

from livemesh import telemetry, wire
from livemesh._groups import unwrap_group
from livemesh.errors import ConfigError, QuotaError, SessionClosedError
from livemesh.limits import DEFAULT_LIMITS, ServiceLimits
from livemesh.pool.admission import Admission, QuotaBackoff
from livemesh.pool.errors import PoolClosedError, RestartIntensityError, SessionLimitError
from livemesh.pool.handles import HandleStore, MemoryHandleStore, StoredHandle
from livemesh.pool.metrics import PoolMetrics, PoolSnapshot, SessionSummary, Traffic
from livemesh.pool.ratelimit import RateLimiter
from livemesh.pool.rotation import Reason, RotationConfig, RotationInputs, Step, StepKind, plan
from livemesh.pool.supervision import Action, Decision, Restart, RestartPolicy, RestartTracker
from livemesh.session.actor import Session
from livemesh.session.callbacks import Callbacks, call_callback
from livemesh.session.config import SessionConfig
from livemesh.session.metrics import SessionMetrics
from livemesh.session.opening import open_session

__all__ = ["Handler", "Pool", "PoolSession", "SessionFailure", "Supervised", "open_pool"]

log = logging.getLogger("livemesh.pool")


class PoolSession(Protocol):
    """What the pool needs from a session (``livemesh.session.Session`` provides it)."""

    @property
    def is_quiet(self) -> bool: ...

    @property
    def connections(self) -> int: ...

    async def wait_quiet(self) -> None: ...

    async def rotate(self, reason: str = ...) -> None: ...

    def statistics(self) -> SessionMetrics: ...


Handler: TypeAlias = Callable[[Session], Awaitable[object]]
"""``async def handler(session)``: the body of a supervised session."""

HandleHook: TypeAlias = Callable[[str], Awaitable[None] | None]

Connect: TypeAlias = Callable[[SessionConfig, HandleHook, random.Random], AbstractAsyncContextManager[Any]]
"""How a child opens a session: ``(config, on_handle, rng)``; ``livemesh.session.open_session`` by
default (tests inject fakes). ``on_handle`` is called with every new resumable handle."""


@attrs.frozen(kw_only=True)
class SessionFailure:
    """What ``on_session_error`` receives: which session failed, how, and what the pool does next."""

    conversation_id: str
    error: BaseException
    action: Action
    reason: str
    restarts: int


def _default_connect(
    config: SessionConfig, on_handle: HandleHook, rng: random.Random
) -> AbstractAsyncContextManager[Any]:
    return open_session(config, on_handle=on_handle, rng=rng)


_CANCELLATION = (trio.Cancelled, KeyboardInterrupt, SystemExit, GeneratorExit)


def _split_cancellation(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """(cancellation part, failure part) of an exception or exception group."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(_CANCELLATION)
    if isinstance(exc, _CANCELLATION):
        return exc, None
    return None, exc


def _root_cause(exc: BaseException, session: Any) -> BaseException:
    """The one error users want to see for a failed incarnation.

    If the session itself failed, that is the cause (the handler's ``SessionClosedError`` and the
    rotation driver's are consequences). Otherwise the single leaf of the group, or the group.
    """
    session_error = getattr(session, "error", None) if session is not None else None
    if isinstance(session_error, BaseException):
        return session_error
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)

    walk(exc)
    causes = [e for e in leaves if not isinstance(e, SessionClosedError)] or leaves
    return causes[0] if len(causes) == 1 else exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@attrs.define(eq=False)
class _Child:
    """The pool's private record of one supervised conversation."""

    conversation_id: str
    config: SessionConfig
    lent: bool
    video: bool
    tracker: RestartTracker
    started_at: float
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    finished: trio.Event = attrs.field(factory=trio.Event)
    state: str = "connecting"
    session: Any = None
    error: BaseException | None = None
    incarnations: int = 0
    # connection tracking for the rotation planner
    connection_started_at: float = 0.0
    budget_started_at: float = 0.0
    connections_seen: int = 0
    jitter: float = 0.0
    go_away_at: float | None = None
    go_away_time_left: float | None = None
    next_step: Step | None = None
    # the planner's bookkeeping for this child (see Pool._plan_loop)
    timer_at: float = math.inf
    """When the planner's heap will wake this child (inf: no timer armed)."""
    body_scope: trio.CancelScope | None = None
    """Wraps the handler of the live incarnation: cancelled when a helper ends the incarnation."""
    rotating: trio.CancelScope | None = None
    """The helper task rotating this child now (None: no rotation in progress)."""
    awaiting_quiet: trio.CancelScope | None = None
    """The helper task waiting for this child's next quiet point."""
    helper_error: BaseException | None = None
    """Why a helper ended the incarnation (a service limit, a failed rotation)."""
    closed_by_user: bool = False
    """The user closed the live incarnation's session: nothing more to plan for it."""
    # handles
    handle: str | None = None
    handle_seq: int = 0
    saved_seq: int = -1
    # counters of earlier incarnations (the live one is read from the session)
    retired: SessionSummary | None = None


@attrs.define(eq=False)
class Supervised:
    """A handle on a conversation started with :meth:`Pool.start`."""

    _child: _Child

    @property
    def conversation_id(self) -> str:
        return self._child.conversation_id

    @property
    def state(self) -> str:
        return self._child.state

    @property
    def restarts(self) -> int:
        return self._child.tracker.restarts

    @property
    def session(self) -> Session | None:
        """The current incarnation's session (None between incarnations)."""
        session: Session | None = self._child.session
        return session

    @property
    def error(self) -> BaseException | None:
        """The failure that ended the conversation for good (None while running or after a clean end)."""
        return self._child.error

    def cancel(self) -> None:
        """End this conversation (its session closes); siblings are unaffected."""
        self._child.scope.cancel()

    async def wait(self) -> None:
        """Wait until the conversation ended for good."""
        await self._child.finished.wait()


class Pool:
    """Create with :func:`open_pool`. Every method is safe to call from any task of the run."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        max_sessions: int,
        limits: ServiceLimits,
        restart: RestartPolicy,
        rotation: RotationConfig,
        admission_timeout: float | None,
        connect_rate: float,
        connect_burst: int,
        quota_backoff_s: tuple[float, float],
        on_session_error: Callable[[SessionFailure], object] | None,
        handle_store: HandleStore,
        rng: random.Random,
        connect: Connect,
        close_timeout: float,
    ) -> None:
        if limits.concurrent_sessions is not None:
            max_sessions = min(max_sessions, limits.concurrent_sessions)
        self._nursery = nursery
        self.limits = limits
        self.restart_policy = restart
        self.rotation = rotation
        self._admission_timeout = admission_timeout
        self._admission = Admission(max_sessions)
        self._rate = RateLimiter(connect_rate, burst=connect_burst)
        self._quota = QuotaBackoff(base_s=quota_backoff_s[0], max_s=quota_backoff_s[1], uniform=rng.random)
        self._on_error = on_session_error
        self.handle_store = handle_store
        self._rng = rng
        self._connect = connect
        self._close_timeout = close_timeout
        self._children: dict[str, _Child] = {}
        self._metrics = PoolMetrics()
        self._closing = trio.Event()
        self._counter = 0
        # Pool-wide housekeeping instead of a watcher task per session (a parked task and its
        # nursery cost ~4 KB per idle session): one planner with a timer heap, one handle saver.
        self._replan: dict[_Child, None] = {}  # children to re-plan (ordered set)
        self._timers: list[tuple[float, int, _Child]] = []  # (at, tiebreak, child) min-heap
        self._timer_seq = 0
        self._plan_wake = trio.Event()
        self._unsaved: dict[_Child, None] = {}  # children with a handle newer than the saved one
        self._save_wake = trio.Event()
        self._housekeeping = trio.CancelScope()
        self._probe: telemetry.PoolProbe = telemetry.NOOP_POOL  # telemetry (set while housekeeping runs)

    # ------------------------------------------------------------------ public API

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    async def wait_closing(self) -> None:
        """Return when :meth:`close` has begun (handlers may use it to finish their turn and leave)."""
        await self._closing.wait()

    def metrics(self, *, include_sessions: bool = True) -> PoolSnapshot:
        """A frozen pool-wide snapshot (cheap: O(live sessions) when ``include_sessions``)."""
        stats = self._admission.statistics()
        summaries = [self._summary(child) for child in self._children.values()]
        return self._metrics.snapshot(
            active=stats.active, queued=stats.waiting, sessions=summaries, include_sessions=include_sessions
        )

    def record_turn_latency(self, seconds: float) -> None:
        """Add one turn's latency (request sent -> first response) to the pool's histogram.

        The session actor does not report turn latency yet, so handlers that time their own turns
        feed it here; ``metrics().turn_latency`` gives the percentiles.
        """
        self._metrics.record_turn_latency(seconds)

    async def start(
        self,
        config: SessionConfig | Mapping[str, Any],
        handler: Handler,
        *,
        conversation_id: str | None = None,
        restart: RestartPolicy | None = None,
        admission_timeout: float | None = None,
        video: bool = False,
    ) -> Supervised:
        """Admit a conversation (queueing fairly) and supervise ``handler(session)`` in the pool.

        Returns once admitted; connection failures are supervised, not raised here. Raises
        :class:`~livemesh.pool.errors.AdmissionTimeoutError` or ``PoolClosedError``.
        ``conversation_id`` keys the handle store (default: ``config.session_id`` or a fresh id);
        ``restart`` overrides the pool's policy; ``video=True`` plans with the audio+video
        session budget (2 min without compression) instead of the audio one.
        """
        child = self._new_child(
            SessionConfig.build(config),
            conversation_id,
            restart or self.restart_policy,
            lent=False,
            video=video,
        )
        await self._admit(admission_timeout)
        self._spawn(child, handler, None)
        return Supervised(child)

    @asynccontextmanager
    async def session(
        self,
        config: SessionConfig | Mapping[str, Any] | None = None,
        *,
        conversation_id: str | None = None,
        admission_timeout: float | None = None,
        video: bool = False,
        **options: Any,
    ) -> AsyncIterator[Session]:
        """Lend a pooled session to the caller's block; closed (and its slot freed) on exit.

        Takes what ``open_session`` takes: a ``SessionConfig``, a dict and/or keyword options
        (``pool.session(model="gemini-3.8-live", output_audio_transcription={})``), checked here,
        before admission.
        Errors opening the session are raised here; later failures are reported by the pool and
        surface in the caller's next use of the session.
        """
        child = self._new_child(
            SessionConfig.build(config, **options),
            conversation_id,
            RestartPolicy(restart=Restart.TEMPORARY),
            lent=True,
            video=video,
        )
        await self._admit(admission_timeout)
        ready = trio.Event()
        done = trio.Event()
        box: list[Session] = []

        async def lend(session: Session) -> None:
            box.append(session)
            ready.set()
            await done.wait()

        self._spawn(child, lend, ready)
        try:
            await ready.wait()
            if not box:
                raise child.error or PoolClosedError("the pool closed before the session opened")
            yield box[0]
        finally:
            done.set()
            if not ready.is_set():
                child.scope.cancel()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(self._close_timeout):
                    await child.finished.wait()
                child.scope.cancel()
                await child.finished.wait()

    async def close(self, *, grace: float = 10.0) -> None:
        """Stop admitting, let sessions finish their turn within ``grace`` s, then close them all.

        Each session is closed at its first quiet point (no generation, no pending tool call)
        inside the grace; whatever is still busy when it ends is cancelled. Returns when every
        child has finished.
        """
        if not self._closing.is_set():
            self._closing.set()
            self._admission.close()
            log.info("pool closing: %d session(s), grace %.3gs", len(self._children), grace)
        with trio.move_on_after(grace):
            async with trio.open_nursery() as nursery:
                for child in list(self._children.values()):
                    nursery.start_soon(self._close_when_quiet, child)
        for child in list(self._children.values()):
            child.scope.cancel()
        for child in list(self._children.values()):
            await child.finished.wait()

    # ------------------------------------------------------------------ bookkeeping

    def _new_child(
        self,
        config: SessionConfig,
        conversation_id: str | None,
        policy: RestartPolicy,
        *,
        lent: bool,
        video: bool,
    ) -> _Child:
        if not isinstance(config, SessionConfig):
            raise ConfigError(f"config must be a SessionConfig, not {type(config).__name__}")
        if self._closing.is_set():
            raise PoolClosedError("the pool is closing; no new sessions are admitted")
        if conversation_id is None:
            self._counter += 1
            conversation_id = config.session_id or f"conv-{self._counter}-{self._rng.getrandbits(32):08x}"
        if conversation_id in self._children:
            raise ConfigError(f"conversation {conversation_id!r} is already running in this pool")
        return _Child(
            conversation_id=conversation_id,
            config=config,
            lent=lent,
            video=video,
            tracker=RestartTracker(policy, uniform=self._rng.random),
            started_at=trio.current_time(),
        )

    async def _admit(self, admission_timeout: float | None) -> None:
        if admission_timeout is None:
            admission_timeout = self._admission_timeout
        try:
            await self._admission.acquire(timeout=admission_timeout)
        except TimeoutError:
            self._metrics.admission_timeouts += 1
            raise

    def _spawn(self, child: _Child, handler: Handler, ready: trio.Event | None) -> None:
        try:
            self._children[child.conversation_id] = child
            self._metrics.started += 1
            self._nursery.start_soon(
                self._supervise, child, handler, ready, name=f"pool:{child.conversation_id}"
            )
        except BaseException:
            self._children.pop(child.conversation_id, None)
            self._admission.release()
            raise

    def _summary(self, child: _Child) -> SessionSummary:
        """The child's counters: earlier incarnations plus the live session's statistics()."""
        traffic, reconnects, rotations, turns = Traffic(), 0, 0, 0
        if child.retired is not None:
            old = child.retired
            traffic, reconnects, rotations, turns = old.traffic, old.reconnects, old.rotations, old.turns
        live = _session_metrics(child.session)
        if live is not None:
            traffic = traffic + Traffic(live.messages_in, live.messages_out, live.bytes_in, live.bytes_out)
            reconnects += live.reconnects
            rotations += live.rotations
            turns += live.turns
        step = child.next_step
        return SessionSummary(
            conversation_id=child.conversation_id,
            state=child.state,
            started_at=child.started_at,
            connection_started_at=child.connection_started_at if child.session is not None else None,
            restarts=child.tracker.restarts,
            rotations=rotations,
            reconnects=reconnects,
            turns=turns,
            traffic=traffic,
            last_error=_describe(child.error) if child.error is not None else None,
            next_rotation_at=step.at if step is not None and math.isfinite(step.at) else None,
            next_rotation_reason=step.reason.value if step is not None and step.reason is not None else None,
        )

    # ------------------------------------------------------------------ supervision

    async def _supervise(self, child: _Child, handler: Handler, ready: trio.Event | None) -> None:
        """One conversation, start to end, across restarts. Never raises anything but cancellation."""
        try:
            with child.scope:
                while True:
                    error = await self._incarnation(child, handler, ready)
                    if ready is not None and not ready.is_set():
                        child.error = error
                        ready.set()  # the lender raises it in the caller's task
                        if error is not None:
                            self._metrics.failed += 1
                            self._report(child, error, Decision(Action.STOP, reason="raised to the caller"))
                        return
                    decision = self._judge(child, error)
                    if decision.action is not Action.RESTART:
                        return
                    child.state = "restarting"
                    self._metrics.restarted += 1
                    await trio.sleep(decision.delay)
        finally:
            child.state = "failed" if child.error is not None else "ended"
            child.session = None
            self._children.pop(child.conversation_id, None)
            self._metrics.retire(self._summary(child))
            self._admission.release()
            if ready is not None:
                ready.set()
            child.finished.set()

    def _judge(self, child: _Child, error: BaseException | None) -> Decision:
        """Apply the restart policy to how an incarnation ended; report failures."""
        if isinstance(error, SessionLimitError):
            decision = Decision(Action.STOP, reason="ended at a service limit it cannot avoid")
            self._metrics.ended_by_limit += 1
        else:
            decision = child.tracker.decide(error, trio.current_time())
        if error is None and decision.action is Action.STOP:
            return decision
        if decision.action is Action.GIVE_UP:
            policy = child.tracker.policy
            given_up = RestartIntensityError(
                child.conversation_id, restarts=policy.max_restarts, period_s=policy.period_s
            )
            given_up.__cause__ = error
            child.error = given_up
            self._metrics.given_up += 1
        elif decision.action is Action.STOP:
            child.error = error
        if error is not None:
            self._metrics.failed += 1
            self._report(child, error, decision)
        return decision

    def _report(self, child: _Child, error: BaseException, decision: Decision) -> None:
        log.warning(
            "session %s failed (%s); %s: %s",
            child.conversation_id,
            _describe(error),
            decision.action.value,
            decision.reason,
        )
        if self._on_error is None:
            return
        failure = SessionFailure(
            conversation_id=child.conversation_id,
            error=error,
            action=decision.action,
            reason=decision.reason,
            restarts=child.tracker.restarts,
        )
        try:
            self._on_error(failure)
        except Exception:  # a broken hook must not break supervision
            log.exception("on_session_error hook raised for session %s", child.conversation_id)

    async def _incarnation(
        self, child: _Child, handler: Handler, ready: trio.Event | None
    ) -> BaseException | None:
        """Connect once, run the handler; return the failure (None: clean end). Re-raises cancellation."""
        child.state = "connecting"
        child.incarnations += 1
        opened: Any = None
        try:
            await self._quota.wait()
            await self._rate.acquire()
            config = await self._incarnation_config(child)
            async with self._connect(
                config, lambda handle: self._note_handle(child, handle), self._rng
            ) as session:
                opened = session
                self._quota.note_success()
                self._on_connected(child, session)
                try:
                    with trio.CancelScope() as body:
                        child.body_scope = body
                        await handler(session)
                    if child.helper_error is not None:  # a helper cancelled the body to end it
                        raise child.helper_error
                finally:
                    self._on_disconnected(child)
            return None
        except BaseException as exc:
            cancelled, failure = _split_cancellation(exc)
            if failure is not None:
                failure = _root_cause(failure, opened)
                if isinstance(failure, QuotaError):
                    until = self._quota.note_quota()
                    self._probe.quota_backoff(until - trio.current_time())
                    log.info(
                        "quota refusal for %s: new connections pause until %.3f", child.conversation_id, until
                    )
            if cancelled is not None:
                if failure is not None:
                    self._metrics.failed += 1
                    self._report(child, failure, Decision(Action.STOP, reason="pool cancelled"))
                raise cancelled from None
            return failure
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(self._close_timeout):
                    await self._save_newest(child)

    async def _incarnation_config(self, child: _Child) -> SessionConfig:
        """The child's config for this connection: pool limits, rotation backstops, newest handle."""
        config = child.config
        changes: dict[str, Any] = {"callbacks": self._callbacks(child, config.callbacks)}
        if config.session_id is None:
            changes["session_id"] = child.conversation_id
        limits = config.limits if config.limits != DEFAULT_LIMITS else self.limits
        changes["limits"] = limits
        # The pool's planner rotates first (staggered, at quiet points); the session's own timer
        # stays on as a backstop just before the deadline. When the pool asks to rotate, the
        # session still waits for a quiet point itself (a new turn may start between the pool's
        # look and the request), for at most the time left before the pool would force it.
        lifetime = limits.connection_lifetime_s
        backstop = self.rotation.force_before(lifetime)
        quiet_window = max(backstop, self.rotation.connection_margin(limits) - backstop)
        changes["rotation"] = attrs.evolve(
            config.rotation,
            margin_s=min(config.rotation.margin_s, backstop),
            quiet_timeout_s=min(config.rotation.quiet_timeout_s, quiet_window),
        )
        if config.resumption_enabled and child.tracker.policy.resume:
            stored = await self.handle_store.load(child.conversation_id)
            if stored is not None and (child.handle is None or stored.seq >= child.handle_seq):
                child.handle, child.handle_seq = stored.handle, stored.seq
            if child.handle is not None:
                changes["resume_handle"] = child.handle
        return config.evolve(**changes)

    def _on_connected(self, child: _Child, session: Any) -> None:
        now = trio.current_time()
        child.session = session
        child.state = "running"
        child.connection_started_at = child.budget_started_at = now
        child.jitter = self._rng.random()
        child.go_away_at = child.go_away_time_left = None
        child.connections_seen = session.connections
        child.helper_error = None
        child.closed_by_user = False
        self._poke(child)

    def _on_disconnected(self, child: _Child) -> None:
        child.retired = self._summary(child)
        child.session = None
        child.body_scope = None
        for helper in (child.rotating, child.awaiting_quiet):
            if helper is not None:
                helper.cancel()
        child.rotating = child.awaiting_quiet = None
        child.timer_at = math.inf  # its heap entry, if any, is stale from now on
        self._replan.pop(child, None)
        self._unsaved.pop(child, None)  # the incarnation's own finally saves the newest handle

    # ------------------------------------------------------------------ callbacks and hooks

    def _note_handle(self, child: _Child, handle: str) -> None:
        """The session's ``on_handle`` hook: remember the newest handle; the saver task stores it."""
        child.handle = handle
        child.handle_seq += 1
        self._unsaved[child] = None
        self._save_wake.set()
        self._poke(child)  # a resumable handle may be the quiet point a due rotation waits for

    def _callbacks(self, child: _Child, user: Callbacks) -> Callbacks:
        """The user's callbacks, with the pool's goAway bookkeeping run first (never instead)."""
        return attrs.evolve(user, on_go_away=_GoAwayHook(self, child, user.on_go_away))

    # ------------------------------------------------------------------ handles

    async def _save_newest(self, child: _Child) -> None:
        if child.handle is None or child.saved_seq >= child.handle_seq:
            return
        seq = child.handle_seq
        try:
            await self.handle_store.save(child.conversation_id, StoredHandle(child.handle, seq))
        except Exception:  # a store outage must not kill the session; the next handle retries
            log.exception("saving the resumption handle of %s failed", child.conversation_id)
            return
        child.saved_seq = max(child.saved_seq, seq)

    # ------------------------------------------------------------------ rotation

    def _new_connection(self, child: _Child, now: float) -> None:
        child.connection_started_at = now
        if self.rotation.budget_resets_on_resume:
            child.budget_started_at = now
        child.go_away_at = child.go_away_time_left = None
        child.jitter = self._rng.random()

    def _rotation_inputs(self, child: _Child, session: Any) -> RotationInputs:
        now = trio.current_time()
        connections: int = session.connections
        if connections > child.connections_seen:
            # The session moved by itself (a drop, or its own goAway/timer handling).
            child.connections_seen = connections
            self._new_connection(child, now)
        return RotationInputs(
            now=now,
            connection_started_at=child.connection_started_at,
            budget_started_at=child.budget_started_at,
            video=child.video,
            compressed=child.config.context_window_compression is not None,
            go_away_at=child.go_away_at,
            go_away_time_left=child.go_away_time_left,
            quiet=bool(session.is_quiet),
            jitter=child.jitter,
        )

    def _poke(self, child: _Child) -> None:
        """Something the plan depends on changed: the planner looks at this child again soon."""
        if child.session is None:
            return
        self._replan[child] = None
        self._plan_wake.set()

    async def _housekeep(self) -> None:
        """The pool's two background tasks (in its nursery, cancelled after the last child)."""
        self._probe = telemetry.pool_probe(waiting=lambda: self._admission.waiting)
        with self._housekeeping, closing(self._probe):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._plan_loop, name="pool:planner")
                nursery.start_soon(self._save_loop, name="pool:saver")

    async def _save_loop(self) -> None:
        """Store every child's newest handle (one at a time: the store may be remote and slow;
        a child that gets several handles meanwhile is saved once, with the newest)."""
        while True:
            while self._unsaved:
                child = next(iter(self._unsaved))
                del self._unsaved[child]
                await self._save_newest(child)
            self._save_wake = trio.Event()
            if not self._unsaved:
                await self._save_wake.wait()

    async def _plan_loop(self) -> None:
        """Re-plan poked children and children whose planned time came; act on the plan.

        One task for the whole pool: a min-heap of (time, child) holds each child's next planned
        time (only re-armed when that time changes, so stale entries stay few); pokes (a goAway,
        a handle, a new connection, a finished rotation) re-plan a child at once. Acting (rotate,
        wait for a quiet point) happens in a short-lived helper task per child, so one slow
        rotation never delays another child's plan.
        """
        timers = self._timers
        while True:
            now = trio.current_time()
            while timers and timers[0][0] <= now:
                at, _, child = heapq.heappop(timers)
                if child.timer_at == at:
                    child.timer_at = math.inf
                    self._replan[child] = None
            while self._replan:
                child = next(iter(self._replan))
                del self._replan[child]
                self._plan_child(child)
            self._plan_wake = trio.Event()
            with trio.move_on_at(timers[0][0] if timers else math.inf):
                await self._plan_wake.wait()

    def _arm(self, child: _Child, at: float) -> None:
        """Wake the planner for ``child`` at ``at`` (replacing its earlier time)."""
        if at == child.timer_at:
            return
        child.timer_at = at
        if not math.isfinite(at):
            return
        timers = self._timers
        if len(timers) > 2 * len(self._children) + 64:
            # Entries whose child re-armed or ended are skipped when popped; drop them now so
            # churn (many short sessions) cannot grow the heap or keep ended children alive.
            timers[:] = [entry for entry in timers if entry[2].timer_at == entry[0]]
            heapq.heapify(timers)
        self._timer_seq += 1
        heapq.heappush(timers, (at, self._timer_seq, child))

    def _plan_child(self, child: _Child) -> None:
        session = child.session
        if session is None or child.rotating is not None or child.closed_by_user:
            return
        if not (self.rotation.enabled and child.config.resumption_enabled):
            return
        step = plan(self._rotation_inputs(child, session), self.limits, self.rotation)
        child.next_step = step
        if step.kind is StepKind.WAIT:
            self._arm(child, step.at)
            if step.waiting_for_quiet and child.awaiting_quiet is None:
                child.awaiting_quiet = self._help(child, self._await_quiet(session))
            return
        if child.awaiting_quiet is not None:
            child.awaiting_quiet.cancel()
            child.awaiting_quiet = None
        if step.kind is StepKind.END:
            self._end_incarnation(child, SessionLimitError(child.conversation_id, step.detail))
            return
        if step.forced and step.reason is not Reason.SESSION_BUDGET:
            # No quiet point came. The session moves itself on goAway and on its backstop timer
            # (armed at this very moment), with the deadline it needs to decide how long to keep
            # waiting for a quiet point; asking it again here would only add a second wait that
            # knows no deadline. Re-plan once it is on a new connection.
            self._arm(child, step.deadline + self.rotation.force_before(self.limits.connection_lifetime_s))
            return
        child.rotating = self._help(child, self._rotate(child, session, step))

    def _help(self, child: _Child, coro: Coroutine[Any, Any, None]) -> trio.CancelScope:
        """Run ``coro`` for this incarnation in the pool's nursery (cancelled when the incarnation
        ends, see ``_on_disconnected``); re-plan the child when it returns."""
        scope = trio.CancelScope()
        session = child.session

        async def run() -> None:
            try:
                with scope:
                    await coro
            except Exception as exc:  # a failed rotation fails this incarnation, as before
                if scope.cancel_called:
                    pass
                elif _closed_by_its_user(exc, session):
                    # The user closed the session (it may still look quiet while it flushes its
                    # input): the rotation is moot, and the close is no failure.
                    log.debug("%s: not rotating a session its user closed", child.conversation_id)
                    child.closed_by_user = True
                else:
                    self._end_incarnation(child, exc)
            finally:
                if child.rotating is scope:
                    child.rotating = None
                if child.awaiting_quiet is scope:
                    child.awaiting_quiet = None
                if not scope.cancel_called:
                    self._poke(child)

        try:
            self._nursery.start_soon(run, name=f"pool:help:{child.conversation_id}")
        except BaseException:
            coro.close()
            raise
        return scope

    def _end_incarnation(self, child: _Child, error: BaseException) -> None:
        if child.helper_error is None:
            child.helper_error = error
        if child.body_scope is not None:
            child.body_scope.cancel()

    @staticmethod
    async def _await_quiet(session: Any) -> None:
        await session.wait_quiet()

    async def _rotate(self, child: _Child, session: Any, step: Step) -> None:
        log.debug("rotating %s: %s%s", child.conversation_id, step.detail, " (forced)" if step.forced else "")
        child.state = "rotating"
        await session.rotate(step.reason.value if step.reason is not None else "pool")
        child.state = "running"
        child.connections_seen = session.connections
        self._new_connection(child, trio.current_time())

    async def _close_when_quiet(self, child: _Child) -> None:
        """Cancel the child at its session's next quiet point (at once if it has none)."""
        session = child.session
        if session is not None and child.config.resumption_enabled and not session.is_quiet:
            await session.wait_quiet()
        child.scope.cancel()


def _closed_by_its_user(exc: BaseException, session: Any) -> bool:
    """``exc`` only says the session is closed, and the session did not fail: its user closed it."""
    return isinstance(exc, SessionClosedError) and session is not None and session.error is None


def _session_metrics(session: Any) -> SessionMetrics | None:
    """The session's statistics snapshot, or None between incarnations."""
    if session is None:
        return None
    stats: SessionMetrics = session.statistics()
    return stats


class _GoAwayHook:
    """A child's ``on_go_away``: note the goAway for the planner, then call the user's callback.
    (A slotted object rather than two closures: it lives as long as the session.)"""

    __slots__ = ("_child", "_pool", "_user")

    def __init__(self, pool: Pool, child: _Child, user: Any) -> None:
        self._pool = pool
        self._child = child
        self._user = user

    async def __call__(self, go_away: wire.GoAway) -> object:
        child = self._child
        child.go_away_at = trio.current_time()
        child.go_away_time_left = go_away.time_left
        self._pool._poke(child)
        return await call_callback(self._user, go_away, log=log)


@asynccontextmanager
async def open_pool(
    *,
    max_sessions: int = 100,
    limits: ServiceLimits = DEFAULT_LIMITS,
    restart: RestartPolicy | None = None,
    rotation: RotationConfig | None = None,
    admission_timeout: float | None = None,
    connect_rate: float = 50.0,
    connect_burst: int = 10,
    quota_backoff_s: tuple[float, float] = (1.0, 60.0),
    on_session_error: Callable[[SessionFailure], object] | None = None,
    handle_store: HandleStore | None = None,
    seed: int | None = None,
    close_grace: float = 0.0,
    close_timeout: float = 5.0,
    connect: Connect | None = None,
) -> AsyncIterator[Pool]:
    """Run a pool of supervised sessions for the duration of the block.

    ``max_sessions`` (capped by ``limits.concurrent_sessions``) bounds concurrent sessions; more
    callers queue first-come first-served for up to ``admission_timeout`` s. ``connect_rate``
    (per second, ``connect_burst`` back to back) bounds connection attempts. ``seed`` makes the
    jitter (rotation stagger, backoffs) reproducible. Leaving the block closes the pool with
    ``close_grace`` (0: cancel at once); an exception or cancellation closes it at once.
    """
    rng = random.Random(seed)
    store = handle_store if handle_store is not None else MemoryHandleStore(ttl_s=limits.handle_validity_s)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            pool = Pool(
                nursery,
                max_sessions=max_sessions,
                limits=limits,
                restart=restart or RestartPolicy(),
                rotation=rotation or RotationConfig(),
                admission_timeout=admission_timeout,
                connect_rate=connect_rate,
                connect_burst=connect_burst,
                quota_backoff_s=quota_backoff_s,
                on_session_error=on_session_error,
                handle_store=store,
                rng=rng,
                connect=connect or _default_connect,
                close_timeout=close_timeout,
            )
            nursery.start_soon(pool._housekeep, name="pool:housekeeping")
            try:
                yield pool
            except BaseException as exc:
                body_error = exc
                pool._closing.set()
                pool._admission.close()
                nursery.cancel_scope.cancel()
                raise
            await pool.close(grace=close_grace)
            pool._housekeeping.cancel()
    except BaseExceptionGroup as group:
        # Children never raise (failures stop at their boundary), so the group holds the block's own
        # exception: re-raise it bare, so `except KeyboardInterrupt` / `except MyError` still work.
        raise unwrap_group(group, body_error) from None


def _iter_children(pool: Pool) -> Iterator[_Child]:  # for tests and the bench
    return iter(list(pool._children.values()))
