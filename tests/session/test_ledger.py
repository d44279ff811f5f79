"""The core's tool ledger, replay log and burst proofs as plain state machines (no server)."""

from __future__ import annotations

from livemesh import wire
from livemesh.session.core.ledger import ToolLedger
from livemesh.session.core.proofs import BurstProofs
from livemesh.session.core.replay import ReplayLog


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
    owed, void = ledger.void_after(2)
    assert [p.id for p in owed] == ["b"] and void == {"b"}
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
    for i in range(5):  # message i sent after i server frames were read
        log.append(msg(str(i)), index=i, sent_at=float(i), size=10, seq=i)
    log.covered_before(3.5, settle=1.0)  # sent before 2.5: covered; 3 ambiguous; 4 after the handle
    log.handle_read(4)  # the handle was server frame 4, read before "4" was sent
    assert log.ambiguous() == 1
    plan = log.plan(void_call_ids=set(), exact=False)
    assert [m.realtime_input.text for m in plan.messages if m.realtime_input] == ["3", "4"]
    assert plan.ambiguous == 1


def test_replay_log_judges_a_handle_read_late_by_both_its_arrival_and_its_read() -> None:
    """A handle arrived at 2.5 but was read at 5.5 (the reader was busy). What was sent before
    1.5 (arrival - settle) is covered; what was sent after 5.5 surely is not; 2 to 5 may or may
    not be (the server issued the handle somewhere before 2.5 + its own delay)."""
    log = ReplayLog(limit_bytes=1000)
    for i in range(7):
        log.append(msg(str(i)), index=i, sent_at=float(i), size=10, seq=i)
    log.covered_before(2.5, settle=1.0, received_at=5.5)
    log.handle_read(6)  # read as server frame 6: after "5" was sent, before "6"
    assert len(log) == 5  # "0" and "1" trimmed; dating by the read (5.5) would have trimmed 0-4
    assert log.ambiguous() == 4  # "2" to "5"; "6" was sent after the handle was read
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


def audio(i: int) -> wire.ClientMessage:
    return wire.ClientMessage(realtime_input=wire.audio_input(bytes([i]) * 3200))


class Pongs:
    """The engine's side of fences: ``result`` as ``SansioConnection.fence_result`` (answered
    pongs are handed out once)."""

    def __init__(self) -> None:
        self.answered: dict[bytes, int] = {}

    def result(self, token: bytes) -> int | None:
        return self.answered.pop(token, None)


def test_a_burst_is_not_trimmed_by_timing_until_a_handle_follows_its_fence() -> None:
    """Messages 2-4 went out in one burst (a replay after a move). A handle arriving long after
    it is no proof the server had read it: the server may issue handles while still reading a
    burst. Timing trims what came before the burst only; a handle read after the pong of the
    ping sent after the burst covers it."""
    log, proofs, pongs = ReplayLog(limit_bytes=100_000), BurstProofs(), Pongs()
    for i in range(2):
        proofs.writing(i, i, burst=False)
        log.append(audio(i), index=i, sent_at=float(i), size=10)
        proofs.written(i)
    assert not proofs.wants_fence()  # paced messages need no ping
    proofs.writing(2, 4, burst=True)
    for i in range(2, 5):
        log.append(audio(i), index=i, sent_at=2.0, size=10)
    proofs.written(4)
    assert proofs.wants_fence()
    proofs.fence_sent(b"f1", 4)
    assert not proofs.wants_fence()
    log.covered_before(10.0, settle=1.0, stop_index=proofs.unproven_from)
    assert len(log) == 3  # 0 and 1 trimmed by timing; the burst kept
    plan_log = ReplayLog(limit_bytes=100_000)
    for i in range(2, 5):
        plan_log.append(audio(i), index=i, sent_at=2.0, size=10)
    plan_log.covered_before(10.0, settle=1.0, stop_index=2)
    plan = plan_log.plan(void_call_ids=set(), exact=False, likely_lag=1.0, unproven_from=2)
    assert (len(plan.messages), plan.skipped) == (3, 0)  # unproven: replayed, never skipped
    proofs.poll(pongs.result)
    assert proofs.on_handle(received_index=6) == -1  # no pong yet: proves nothing
    pongs.answered[b"f1"] = 7  # the pong came after 7 frames
    proofs.poll(pongs.result)
    assert proofs.on_handle(received_index=6) == -1  # a handle read before the pong
    assert proofs.unproven_from == 2
    assert proofs.on_handle(received_index=7) == 4  # read after it: the burst is covered
    assert proofs.unproven_from is None
    log.covered_through_index(4)
    assert len(log) == 0


def test_a_burst_sent_while_a_fence_is_in_flight_gets_its_own() -> None:
    proofs, pongs = BurstProofs(), Pongs()
    proofs.writing(0, 2, burst=True)
    proofs.written(2)
    proofs.fence_sent(b"f1", 2)
    proofs.writing(3, 5, burst=True)
    proofs.written(5)
    assert proofs.wants_fence()  # no need to wait for the first pong
    proofs.fence_sent(b"f2", 5)
    pongs.answered[b"f1"] = 4
    proofs.poll(pongs.result)
    assert proofs.on_handle(received_index=4) == 2
    assert proofs.unproven_from == 3  # the second burst still blocks timing
    pongs.answered[b"f2"] = 9
    proofs.poll(pongs.result)
    assert proofs.on_handle(received_index=9) == 5
    assert proofs.unproven_from is None


def _fenced_turn(proofs: BurstProofs, n: int) -> None:
    """User turn ``n`` written with its fence ping ``f<n>`` (as the session's writer does)."""
    proofs.writing(n, n, burst=False, prove=True)
    proofs.written(n)
    proofs.fence_sent(b"f%d" % n, n)


def test_pongs_come_in_order_so_an_older_unanswered_ping_is_forgotten() -> None:
    proofs, pongs = BurstProofs(), Pongs()
    for n in range(3):
        _fenced_turn(proofs, n)
    pongs.answered[b"f1"] = 5  # f0 was forgotten by the engine (never answered)
    proofs.poll(pongs.result)
    pongs.answered[b"f0"] = 4  # too late: no longer asked for
    pongs.answered[b"f2"] = 6
    proofs.poll(pongs.result)
    assert b"f0" in pongs.answered and not {b"f1", b"f2"} & set(pongs.answered)
    assert proofs.on_handle(received_index=5) == 1
    assert proofs.on_handle(received_index=6) == 2


def test_a_peer_that_answers_no_pings_grows_nothing() -> None:
    proofs, pongs = BurstProofs(), Pongs()
    for n in range(1000):
        _fenced_turn(proofs, n)
        proofs.poll(pongs.result)
    assert len(proofs._in_flight) <= 64


def test_a_move_asks_for_a_fence_after_everything_written() -> None:
    proofs, pongs = BurstProofs(), Pongs()
    for n in range(3):
        proofs.writing(n, n, burst=False)
        proofs.written(n)
    assert not proofs.wants_fence()
    proofs.request_fence()
    assert proofs.wants_fence()
    proofs.fence_sent(b"m", 2)
    assert not proofs.wants_fence()
    proofs.request_fence()  # nothing written since: the ping in flight covers all of it
    assert not proofs.wants_fence()
    pongs.answered[b"m"] = 1
    proofs.poll(pongs.result)
    assert proofs.on_handle(received_index=1) == 2


def test_an_engine_that_cannot_fence_leaves_bursts_to_timing() -> None:
    proofs = BurstProofs()
    proofs.writing(0, 2, burst=True)
    proofs.written(2)
    proofs.disable()
    assert proofs.unproven_from is None and not proofs.enabled
    proofs.writing(3, 5, burst=True)
    proofs.request_fence()
    assert proofs.unproven_from is None and not proofs.wants_fence()


def test_a_user_turn_wants_a_fence_but_does_not_block_timing() -> None:
    proofs, pongs = BurstProofs(), Pongs()
    proofs.writing(0, 0, burst=False, prove=True)
    proofs.written(0)
    assert proofs.wants_fence() and proofs.unproven_from is None
    proofs.fence_sent(b"t", 0)
    pongs.answered[b"t"] = 3
    proofs.poll(pongs.result)
    assert proofs.on_handle(received_index=3) == 0
