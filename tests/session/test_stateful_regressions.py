"""Failures the stateful machines (tests/session/stateful.py) found, kept as fixed examples.

Each is the shrunk rule sequence hypothesis printed, replayed on the sans-I/O core and on the
actor, with every invariant checked after every step and at the end, as the machine does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.session.core.test_stateful_core import CoreMachine
from tests.session.stateful import SessionMachine
from tests.session.test_stateful_actor import ActorMachine

Steps = list[tuple[str, dict[str, Any]]]


def run(base: type[SessionMachine], steps: Steps, *, behaved: bool = False, vertex: bool = False) -> None:
    machine_class = type("Machine", (base,), {"behaved": behaved, "vertex": vertex})
    machine = machine_class()
    seed = steps[0][1]["seed"] if steps and steps[0][0] == "start" else 0
    machine.start(seed=seed)
    checks = [machine.doubles_are_counted, machine.one_response_per_call, machine.held_input_flows]
    for name, kwargs in steps:
        if name == "start":
            continue
        getattr(machine, name)(**kwargs)
        for check in checks:
            check()
    machine.teardown()


CLIENTS = pytest.mark.parametrize("base", [CoreMachine, ActorMachine], ids=["core", "actor"])


@CLIENTS
def test_a_close_while_reconnecting_still_delivers_what_was_sent(base: type[SessionMachine]) -> None:
    """A turn sent, then the connection drops unread, then the user closes: the close reconnects
    (within close_timeout) and flushes the turn instead of leaving it lost."""
    run(base, [("user_turn", {"call": False}), ("drop", {})])


@CLIENTS
def test_an_answer_queued_for_a_call_after_the_resumed_handle_is_not_sent(base: type[SessionMachine]) -> None:
    """A call arrives, the connection drops, the tool answers before the reconnect: the resumed
    context (the handle before the call) never issued it, so its answer must not go out."""
    run(
        base,
        [
            ("user_turn", {"call": True}),
            ("client_reads", {"n": 1}),
            ("server_reads", {"n": 1}),
            ("model_step", {}),
            ("drop", {}),
            ("client_reads", {"n": 2}),
            ("tool_finishes", {}),
            ("time_passes", {"dt": 0.01}),
        ],
    )


@CLIENTS
def test_an_answer_sent_for_a_call_the_server_then_cancelled_is_not_replayed(
    base: type[SessionMachine],
) -> None:
    run(
        base,
        [
            ("user_turn", {"call": True}),
            ("client_reads", {"n": 3}),
            ("server_reads", {"n": 1}),
            ("model_step", {}),
            ("client_reads", {"n": 3}),
            ("tool_finishes", {}),
            ("server_cancels_calls", {}),
            ("drop", {}),
            ("time_passes", {"dt": 0.01}),
        ],
    )


@CLIENTS
def test_a_server_that_reads_late_loses_nothing_to_a_handle_that_came_meanwhile(
    base: type[SessionMachine],
) -> None:
    """Behaved world, server reads lagging 0.2 s: a handle issued before the server read a chunk
    arrived after it was sent. Judged by timing (sent more than ``settle`` before), the chunk was
    trimmed, and the move resumed without it: lost."""
    run(
        base,
        [("rotate", {})] * 3 + [("time_passes", {"dt": 0.3}), ("time_passes", {"dt": 0.7}),
                                ("time_passes", {"dt": 0.1}), ("rotate", {})],
        behaved=True,
    )


@CLIENTS
def test_messages_sent_in_the_same_instant_a_handle_is_read_are_ambiguous(
    base: type[SessionMachine],
) -> None:
    """Two turns sent, a goAway with no notice unread, the server answers the first and issues a
    handle; all at one instant. The handle covers the first turn: replaying it after the drop
    doubles it, so it must be counted (it was not: sent "before" the handle only by the clock)."""
    run(
        base,
        [
            ("go_away", {"notice": 0.0}),
            ("user_turn", {"call": False}),
            ("user_turn", {"call": False}),
            ("server_reads", {"n": 1}),
            ("model_step", {}),
            ("model_step", {}),
        ],
    )


@CLIENTS
def test_a_proof_capped_by_an_owed_answer_still_counts_once_the_turn_ends(
    base: type[SessionMachine],
) -> None:
    """A BLOCKING call's answer was proven consumed by a handle, but its turn had not ended (the
    answer is owed its turn); the next handle came after the turn, with no new pong. The proof
    was spent on the first handle, the answer stayed logged, and a later forced move sent it
    twice."""
    run(
        base,
        [
            ("start", {"seed": 527192}),
            ("time_passes", {"dt": 0.7}),
            ("behaved_go_away", {"notice": 8.0}),
            ("time_passes", {"dt": 0.7}),
            ("time_passes", {"dt": 1.5}),
            ("user_turn", {"call": True}),
            ("time_passes", {"dt": 1.5}),
            ("rotate", {}),
            ("rotate", {}),
            ("time_passes", {"dt": 0.1}),
        ],
        behaved=True,
    )


@CLIENTS
def test_a_move_does_not_hold_input_for_a_turn_the_users_speech_cut(base: type[SessionMachine]) -> None:
    """The user's speech interrupted the answer to a text turn; that turn will never be answered,
    and the user is speaking. Holding input for the move (as if an answer and its handle were
    coming) held the rest of the utterance until the connection's end."""
    run(
        base,
        [
            ("start", {"seed": 26}),
            ("user_turn", {"call": False}),
            ("rotate", {}),
            ("time_passes", {"dt": 3.0}),
            ("time_passes", {"dt": 3.0}),
        ],
        behaved=True,
    )
