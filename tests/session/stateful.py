"""The session against the reference server model, as hypothesis state machines.

:class:`SessionMachine` is the test: its rules are what the user, the server and the network may
do at any moment, its invariants what must hold after every step. The client under test is a
parameter (:meth:`SessionMachine.make_client`): the real actor (``actor_client.py``) or the
sans-I/O core driven synchronously.

Two kinds of world:

* **hostile**: reads lag any amount on either side, the connection drops at any point, goAways
  come with any notice, the server cancels calls whenever it likes. What must hold: no user
  message is ever lost; a message is consumed twice only through a replay the session counted
  (``replay_ambiguous``: a move or a drop that found no covering handle in time); Vertex
  (``transparent``) doubles nothing; one response per tool call id, never one for a call the
  context does not have, and none after the session processed the call's cancellation.
* **behaved**: the service as it is when nothing goes wrong, with bounds: the server reads what
  was written within ``READ_LAG`` s, the client reads within ``READ_LAG`` s, each step of a model
  turn takes at most ``TURN_STEP`` s, a handle comes at least every ``HANDLE_EVERY`` s while
  resumable (and right after each turn), a tool answers within ``TOOL_TIME`` s, the user streams
  audio in real time with utterances of at most ``UTTERANCE`` s, and the only drops are the
  service ending a connection at its deadline, always announced by a goAway ``NOTICE`` s or more
  before. Then nothing at all may be doubled.

``NOTICE`` (N) follows from those bounds: a move that meets the user mid-utterance lets input
flow until the utterance ends (``UTTERANCE`` plus the silence that ends it), holds input while
the model answers it (its steps), and leaves on the handle that follows the turn, read within
``READ_LAG``; one more cycle may be needed when a text turn interleaves, plus the reserve kept to
reconnect (at most 1 s): N = 2 x (UTTERANCE + 0.3 + 3 x TURN_STEP + 2 x READ_LAG) + HANDLE_EVERY +
1 = 7.2 s, rounded up to 8 s.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar, Protocol
from unittest import TestCase

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from livemesh.limits import ServiceLimits
from livemesh.session import RetryPolicy, RotationPolicy, SessionConfig, SessionMetrics
from tests.session.scripted import scripted_config
from tests.session.servermodel import SILENCE_TO_END, ServerModel

READ_LAG = 0.2
TURN_STEP = 0.2
HANDLE_EVERY = 1.0
TOOL_TIME = 0.3
UTTERANCE = 1.5
NOTICE = 8.0
LIFETIME = 30.0
CHUNK = 0.1
TICK = 0.05
MAX_HOLD = 3.0
"""Behaved world: the longest a message the session accepted may wait before it is written (a
move holds input while the model answers, or at a quiet point until the next handle; never
until the connection's end)."""


class Client(Protocol):
    """What the machine needs from the client under test (see actor_client.ActorClient)."""

    accepted: list[int]
    accepted_at: dict[int, float]
    error: BaseException | None
    closed: bool

    def start(self) -> None: ...
    def settle(self) -> None: ...
    def now(self) -> float: ...
    def next_timer(self) -> float: ...
    def advance_to(self, when: float) -> None: ...
    def send_audio(self, ident: int, speech: bool) -> None: ...
    def send_text(self, ident: int, call: bool = False) -> None: ...
    def grant_reads(self, n: int) -> None: ...
    def readable(self) -> int: ...
    def unread_since(self) -> float | None: ...
    def finish_tool(self) -> bool: ...
    def tool_started_at(self) -> float | None: ...
    def rotate(self) -> None: ...
    def begin_close(self) -> None: ...
    def statistics(self) -> SessionMetrics: ...
    def stop(self) -> None: ...


def session_config(*, vertex: bool) -> SessionConfig:
    return scripted_config(
        vertex=vertex,
        retry=RetryPolicy(max_attempts=1000, base_delay=0.01, max_delay=0.05),
        limits=ServiceLimits(connection_lifetime_s=LIFETIME, go_away_notice_s=NOTICE),
        rotation=RotationPolicy(margin_s=NOTICE, quiet_timeout_s=0.5),
    )


class SessionMachine(RuleBasedStateMachine):
    """See the module docstring. Subclasses choose the client, the flavour and the world."""

    vertex: ClassVar[bool] = False
    behaved: ClassVar[bool] = False

    def make_client(self, model: ServerModel, config: SessionConfig) -> Client:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.model = ServerModel(vertex=self.vertex, lifetime=LIFETIME)
        self.client = self.make_client(self.model, session_config(vertex=self.vertex))
        self.ids = 0
        self.rng = random.Random(0)
        self.speech_left = 0
        self.silence_left = 0
        self.next_chunk_at = 0.0
        self.next_handle_at = HANDLE_EVERY
        self.warned: set[int] = set()

    # ------------------------------------------------------------------ helpers

    def _id(self) -> int:
        self.ids += 1
        return self.ids

    def _sync(self) -> None:
        self.model.now = self.client.now()

    def _after_server(self) -> None:
        """The server did something: the client notices what it can (new frames, a drop)."""
        self.client.settle()

    def _advance(self, dt: float) -> None:
        """Time passes: the client's timers fire in order, the server's deadlines cut, and in a
        behaved world everything the bounds promise happens on time."""
        target = self.client.now() + dt
        while True:
            now = self.client.now()
            if now >= target - 1e-9:
                break
            step = min(target, self.client.next_timer(), now + TICK)
            self.client.advance_to(max(step, now))
            self._sync()
            self._server_timers()
            if self.behaved:
                self._behave()

    def _server_timers(self) -> None:
        conn = self.model.conn
        if conn is None:
            return
        now = self.model.now
        if now >= conn.deadline - 1e-9:
            self.model.drop()
            self._after_server()
            return
        if self.behaved and conn.number not in self.warned and now >= conn.deadline - NOTICE:
            self.warned.add(conn.number)
            self.model.go_away(conn.deadline - now)
            self._after_server()

    def _behave(self) -> None:
        model, client, now = self.model, self.client, self.model.now
        if not client.closed:
            while now >= self.next_chunk_at - 1e-9:
                self.next_chunk_at += CHUNK
                self._user_chunk()
        conn = model.conn
        if conn is not None:
            due = sum(1 for item in conn.inbound if item.written_at <= now - READ_LAG + 1e-9)
            if due:
                model.consume(due)
            if conn.turn is not None and conn.turn.since <= now - TURN_STEP + 1e-9:
                model.progress()
            if now >= self.next_handle_at and model.resumable(conn):
                model.periodic_handle()
                self.next_handle_at = now + HANDLE_EVERY
            self._after_server()
        since = client.unread_since()
        if since is not None and since <= now - READ_LAG + 1e-9:
            client.grant_reads(client.readable())
        started = client.tool_started_at()
        if started is not None and started <= now - TOOL_TIME + 1e-9:
            client.finish_tool()

    def _user_chunk(self) -> None:
        if self.speech_left == 0 and self.silence_left == 0:
            self.speech_left = self.rng.randint(1, round(UTTERANCE / CHUNK))
            self.silence_left = self.rng.randint(SILENCE_TO_END, 15)
        speech = self.speech_left > 0
        if speech:
            self.speech_left -= 1
        else:
            self.silence_left -= 1
        self.client.send_audio(self._id(), speech)

    # ------------------------------------------------------------------ rules

    @initialize(seed=st.integers(0, 2**32 - 1))
    def start(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.client.start()
        self.next_chunk_at = self.client.now()

    @precondition(lambda self: not self.behaved)
    @rule(speech=st.booleans(), n=st.integers(1, 4))
    def user_audio(self, speech: bool, n: int) -> None:
        for _ in range(n):
            self.client.send_audio(self._id(), speech)

    @rule(call=st.booleans())
    def user_turn(self, call: bool) -> None:
        self.client.send_text(self._id(), call=call)

    @precondition(lambda self: not self.behaved)
    @rule(n=st.integers(1, 8))
    def server_reads(self, n: int) -> None:
        self._sync()
        if self.model.consume(n):
            self._after_server()

    @precondition(lambda self: not self.behaved)
    @rule()
    def model_step(self) -> None:
        self._sync()
        if self.model.progress():
            self._after_server()

    @precondition(lambda self: not self.behaved)
    @rule()
    def periodic_handle(self) -> None:
        self._sync()
        if self.model.periodic_handle():
            self._after_server()

    @precondition(lambda self: not self.behaved)
    @rule(n=st.integers(1, 8))
    def client_reads(self, n: int) -> None:
        self.client.grant_reads(n)

    @rule(dt=st.sampled_from([0.01, 0.05, 0.1, 0.3, 0.7, 1.5, 3.0]))
    def time_passes(self, dt: float) -> None:
        self._advance(dt)

    @precondition(lambda self: not self.behaved)
    @rule(notice=st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0, 8.0]))
    def go_away(self, notice: float) -> None:
        self._sync()
        self.model.go_away(notice)
        self._after_server()

    @precondition(lambda self: self.behaved)
    @rule(notice=st.floats(NOTICE, 2 * NOTICE))
    def behaved_go_away(self, notice: float) -> None:
        self._sync()
        conn = self.model.conn
        if conn is not None and conn.deadline - self.model.now > notice:
            self.warned.add(conn.number)
            self.model.go_away(notice)
            self._after_server()

    @precondition(lambda self: not self.behaved)
    @rule()
    def drop(self) -> None:
        self._sync()
        self.model.drop()
        self._after_server()

    @precondition(lambda self: not self.behaved)
    @rule()
    def server_cancels_calls(self) -> None:
        self._sync()
        if self.model.cancel_pending():
            self._after_server()

    @rule()
    def rotate(self) -> None:
        self.client.rotate()

    @precondition(lambda self: not self.behaved)
    @rule()
    def tool_finishes(self) -> None:
        self.client.finish_tool()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def doubles_are_counted(self) -> None:
        doubled = self.model.doubled()
        if self.vertex or self.behaved:
            assert doubled == 0, f"{doubled} message(s) consumed twice"
        else:
            ambiguous = self.client.statistics().replay_ambiguous
            assert doubled <= ambiguous, f"{doubled} doubled, only {ambiguous} counted"

    @invariant()
    def held_input_flows(self) -> None:
        if not self.behaved or self.client.closed:
            return
        now = self.client.now()
        written = self.model.first_written
        late = [
            i for i, at in self.client.accepted_at.items() if i not in written and now - at > MAX_HOLD
        ]
        assert not late, f"input held over {MAX_HOLD} s: {late[:5]}"

    @invariant()
    def one_response_per_call(self) -> None:
        assert self.model.doubled_responses() == 0, "a tool call answered twice"
        unknown, late = self.model.unknown_responses, self.model.answered_after_cancel
        assert not unknown, f"answers to calls the context lacks: {unknown}"
        assert not late, f"cancelled calls answered: {late}"

    # ------------------------------------------------------------------ the end

    def _serve_until(self, done: Any, *, limit: int = 4000) -> None:
        for _ in range(limit):
            if done():
                return
            self._sync()
            self.model.consume(10**6)
            self.model.progress()
            if self.model.conn is not None and self.model.resumable(self.model.conn):
                self.model.periodic_handle()
            self._after_server()
            self.client.grant_reads(10**6)
            self.client.finish_tool()
            self._advance(0.05)
        raise AssertionError("the session did not settle")

    def teardown(self) -> None:
        try:
            if self.client.error is None:
                self.client.begin_close()
                self._serve_until(lambda: self.client.closed or self.client.error is not None)
            if self.client.error is None:
                context = set(self.model.final_context())
                lost = [i for i in self.client.accepted if i not in context]
                assert not lost, f"lost: {lost}"
                self.doubles_are_counted()
                self.one_response_per_call()
        finally:
            self.client.stop()


def scaled(examples: int, steps: int) -> settings:
    """Settings for a stateful test: ``examples`` and ``steps`` under the default profile, scaled
    by the loaded profile's ``max_examples`` and ``stateful_step_count`` against hypothesis's
    defaults (100 and 50): ``--hypothesis-profile=stateful-deep`` runs 50 times the examples."""
    current = settings.default
    return settings(
        max_examples=max(1, examples * current.max_examples // 100),
        stateful_step_count=max(steps, steps * current.stateful_step_count // 50),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def worlds(base: type[SessionMachine], test_settings: settings) -> tuple[type[TestCase], ...]:
    """The four worlds' test cases for ``base``: Gemini API and Vertex, hostile and behaved."""
    cases = []
    for vertex in (False, True):
        for behaved in (False, True):
            name = f"{'Vertex' if vertex else 'Gemini'}{'Behaved' if behaved else 'Hostile'}"
            machine = type(name, (base,), {"vertex": vertex, "behaved": behaved})
            case = machine.TestCase
            case.settings = test_settings
            cases.append(case)
    return tuple(cases)
