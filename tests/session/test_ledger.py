"""The ledger and the replay log as plain state machines (no server)."""

from __future__ import annotations

from livemesh import wire
from livemesh.session.ledger import ReplayLog, ToolLedger


def call(call_id: str) -> wire.FunctionCall:
    return wire.FunctionCall(id=call_id, name="f", args={})


def test_exactly_one_answer_per_call() -> None:
    ledger = ToolLedger()
    assert ledger.open(call("a"), blocking=True, now=0, handle_epoch=0, turn=0) is not None
    assert ledger.open(call("a"), blocking=True, now=0, handle_epoch=0, turn=0) is None  # repeat
    assert ledger.blocking_pending
    assert ledger.answer("a") is not None
    assert ledger.answer("a") is None
    assert ledger.state("a") == "answered"
    assert not ledger.blocking_pending


def test_cancelled_and_void_calls_are_owed_nothing() -> None:
    ledger = ToolLedger()
    ledger.open(call("a"), blocking=True, now=0, handle_epoch=1, turn=0)
    ledger.open(call("b"), blocking=False, now=0, handle_epoch=2, turn=0)
    assert [p.id for p in ledger.cancel(["a", "zzz"])] == ["a"]
    assert ledger.answer("a") is None and ledger.state("a") == "cancelled"
    assert [p.id for p in ledger.void_after(2)] == ["b"]
    assert ledger.state("b") == "void" and len(ledger) == 0


def test_closed_ids_are_remembered_boundedly() -> None:
    ledger = ToolLedger(remember=2)
    for i in range(4):
        ledger.open(call(str(i)), blocking=False, now=0, handle_epoch=0, turn=0)
        ledger.answer(str(i))
    assert ledger.state("0") == "unknown" and ledger.state("3") == "answered"


def msg(text: str) -> wire.ClientMessage:
    return wire.ClientMessage(realtime_input=wire.RealtimeInput(text=text))


def test_replay_log_trims_by_index_exactly() -> None:
    log = ReplayLog(limit_bytes=1000)
    for i in range(5):
        log.append(msg(str(i)), index=i, sent_at=float(i), size=10)
    log.covered_through_index(2)
    plan = log.plan(void_call_ids=set(), exact=True)
    assert [m.realtime_input.text for m in plan.messages if m.realtime_input] == ["3", "4"]
    assert plan.ambiguous == 0 and len(log) == 0


def test_replay_log_by_time_counts_ambiguity() -> None:
    log = ReplayLog(limit_bytes=1000)
    for i in range(5):
        log.append(msg(str(i)), index=i, sent_at=float(i), size=10)
    log.covered_before(3.5, settle=1.0)  # sent before 2.5: covered; 3 ambiguous; 4 after the handle
    assert log.ambiguous(3.5) == 1
    plan = log.plan(void_call_ids=set(), exact=False)
    assert [m.realtime_input.text for m in plan.messages if m.realtime_input] == ["3", "4"]
    assert plan.ambiguous == 1


def test_replay_log_judges_a_handle_read_late_by_both_its_arrival_and_its_read() -> None:
    """A handle arrived at 2.5 but was read at 5.5 (the reader was busy). What was sent before
    1.5 (arrival - settle) is covered; what was sent after 5.5 surely is not; 2 to 5 may or may
    not be (the server issued the handle somewhere before 2.5 + its own delay)."""
    log = ReplayLog(limit_bytes=1000)
    for i in range(7):
        log.append(msg(str(i)), index=i, sent_at=float(i), size=10)
    log.covered_before(2.5, settle=1.0, received_at=5.5)
    assert len(log) == 5  # "0" and "1" trimmed; dating by the read (5.5) would have trimmed 0-4
    assert log.ambiguous(5.5) == 4  # "2" to "5"; "6" was sent after the handle was read
    plan = log.plan(void_call_ids=set(), exact=False)
    assert [m.realtime_input.text for m in plan.messages if m.realtime_input] == ["2", "3", "4", "5", "6"]
    assert plan.ambiguous == 4


def test_replay_drops_answers_to_void_calls_and_bounds_bytes() -> None:
    log = ReplayLog(limit_bytes=25)
    answer = wire.ClientMessage(
        tool_response=wire.ToolResponse(
            function_responses=[wire.FunctionResponse(id="v", name="f", response={})]
        )
    )
    log.append(msg("old"), index=0, sent_at=0, size=10)
    log.append(answer, index=1, sent_at=1, size=10)
    log.append(msg("new"), index=2, sent_at=2, size=10)
    assert log.overflow == 1  # "old" forgotten to stay within 25 bytes
    plan = log.plan(void_call_ids={"v"}, exact=True)
    assert plan.dropped_void == 1
    assert [m.kind for m in plan.messages] == ["realtime_input"]
