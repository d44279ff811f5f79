"""Races between handles and input that lose or double turns on a move, staged frame by frame.

A resumed context is the snapshot of the handle used, not everything the server consumed. These
tests play the service with a scripted peer (tests/session/scripted.py) so each race happens on
every run: a turn answered just before a planned move, a handle issued before the server read a
user turn, and a handle issued before a backlogged server read an audio chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from livemesh import wire
from livemesh.errors import SessionClosedError
from livemesh.session import RotationPolicy, Session
from tests.session.scripted import ScriptedConnection, ScriptedServer, resumed_from, scripted_config

FLAVOURS = [pytest.param(False, id="gemini"), pytest.param(True, id="vertex")]
CHUNK = bytes(3200)


def _index(vertex: bool, value: int) -> int | None:
    return value if vertex else None


@attrs.define
class Stage:
    """A running session and the first scripted connection it opened, set up: where every race
    starts. The test plays the server on ``conn1`` (and on later connections from ``accept``); the
    start-up and the steps every script repeats live here so each test reads as its race alone."""

    server: ScriptedServer
    session: Session
    conn1: ScriptedConnection
    nursery: trio.Nursery
    vertex: bool

    def index(self, consumed: int) -> int | None:
        """A handle's ``lastConsumedClientMessageIndex``: Vertex sends one, the Gemini API none."""
        return _index(self.vertex, consumed)

    async def accept(self, *, first_handle: str | None = None) -> ScriptedConnection:
        """The session's next connection, set up (a fresh one has consumed nothing: index -1)."""
        return await self.server.accept(first_handle=first_handle, index=self.index(-1))

    async def drop_and_accept(
        self, conn: ScriptedConnection | None = None, *, first_handle: str | None = None
    ) -> ScriptedConnection:
        """``conn`` (default: the first) dies without a close frame; after the session's reconnect
        backoff (the test's MockClock jumps it), its next connection, set up."""
        (conn or self.conn1).drop()
        await trio.testing.wait_all_tasks_blocked()
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, trio.testing.MockClock)
        clock.jump(1.0)
        return await self.accept(first_handle=first_handle)

    async def start_rotate(self) -> None:
        """A move is asked for; returns once it is blocked (waiting, or decided)."""
        self.nursery.start_soon(self.session.rotate)
        await trio.testing.wait_all_tasks_blocked()

    async def send_turn(self, text: str) -> None:
        """The user sends a text turn and the server reads it on the first connection."""
        await self.session.send_client_content(text)
        assert await self.conn1.expect_text() == text

    async def send_chunk(self) -> None:
        """The user sends an audio chunk and the server reads it on the first connection."""
        await self.session.send_realtime_input(audio=CHUNK)
        assert (await self.conn1.expect()).realtime_input is not None

    async def model_says(self, text: str) -> None:
        """The model's turn begins on the first connection (text, no ``turnComplete`` yet)."""
        content = wire.Content(role="model", parts=[wire.Part(text=text)])
        await self.conn1.push(server_content=wire.ServerContent(model_turn=content))

    def replays(self) -> tuple[int, int, int]:
        """(replayed, replay_ambiguous, replay_skipped) from the session's statistics."""
        metrics = self.session.statistics()
        return metrics.replayed, metrics.replay_ambiguous, metrics.replay_skipped


@asynccontextmanager
async def staged(
    *, vertex: bool = False, first_handle: str | None = "h0", **options: Any
) -> AsyncIterator[Stage]:
    """A session (``scripted_config`` with ``options``) running against a scripted server, its
    first connection accepted (``first_handle`` follows setupComplete); the whole test is bounded
    by one ``fail_after`` and the session is cancelled when the block ends."""
    server = ScriptedServer()
    session = Session(scripted_config(vertex=vertex, **options), connect=server.connect)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            conn1 = await server.accept(first_handle=first_handle, index=_index(vertex, -1))
            yield Stage(server, session, conn1, nursery, vertex)
            nursery.cancel_scope.cancel()


async def _first_client_kind(conn: ScriptedConnection) -> str:
    message = await conn.expect()
    if message.client_content is not None:
        turns = message.client_content.turns or []
        return "text:" + "".join(part.text or "" for turn in turns for part in turn.parts or [])
    return message.kind


@pytest.mark.parametrize("vertex", FLAVOURS)
async def test_planned_move_right_after_a_turn_waits_for_the_handle_that_covers_it(vertex: bool) -> None:
    """The turn's answer was delivered; the newest handle predates the turn. Moving with it and
    replaying the trigger answers the turn twice (what 25 of 200 Vertex sessions saw); the move
    must wait for the handle the server issues right after turnComplete, and replay nothing."""
    async with staged(vertex=vertex) as stage:
        session, conn1 = stage.session, stage.conn1
        await stage.send_turn("one")
        await conn1.answer("You said: one")
        turn = await session.receive_turn()
        assert turn.text == "You said: one"
        assert session.is_quiet
        await stage.start_rotate()
        assert session.statistics().connections == 1  # still waiting for the covering handle
        await conn1.handle("h1", index=stage.index(0))
        conn2 = await stage.accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        await session.send_client_content("two")
        assert await _first_client_kind(conn2) == "text:two"  # "one" is not replayed
        assert session.statistics().replayed == 0


@pytest.mark.parametrize("vertex", FLAVOURS)
async def test_a_handle_issued_before_the_server_read_a_turn_neither_ends_the_wait_nor_covers_it(
    vertex: bool, mock_clock: trio.testing.MockClock
) -> None:
    """A backlogged server issues a handle before it reads a user turn; it arrives long after
    the turn was sent. The session must keep waiting for the answer (no quiet point) and, if the
    connection drops, replay the turn: trimming it by timing lost the turn forever."""
    async with staged(vertex=vertex) as stage:
        session, conn1 = stage.session, stage.conn1
        # A server that has not read "one" has not answered a ping sent after it either (a pong
        # before h1 would prove "one" read; whether the session's ping got out first was a race).
        conn1.answer_pings = False
        await stage.send_turn("one")
        mock_clock.jump(2.0)  # far beyond any settle time
        await conn1.handle("h1", index=stage.index(-1))  # the snapshot predates "one"
        await trio.testing.wait_all_tasks_blocked()
        assert session.resume_handle == "h1"
        assert not session.is_quiet  # the answer to "one" is still owed
        assert not session.is_idle
        conn2 = await stage.drop_and_accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        assert await _first_client_kind(conn2) == "text:one"  # replayed, not lost


async def test_gemini_planned_move_allows_for_the_server_backlog_it_has_observed(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Gemini API: answers have been taking 0.5 s (server backlog), so a handle that arrives 0.3 s
    after an audio chunk was sent may predate it. A planned move must not treat the chunk as
    covered (the fixed 20 ms settle did, and lost it): it waits for a handle that follows the
    pong of a ping sent after the chunk."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        await stage.send_turn("one")
        mock_clock.jump(0.5)  # the server was slow to read and answer it
        await conn1.answer("You said: one")
        await conn1.handle("h1")
        assert (await session.receive_turn()).text == "You said: one"
        conn1.answer_pings = False  # backlogged: the chunk (and the ping after it) not read yet
        await stage.send_chunk()
        mock_clock.jump(0.3)
        await conn1.handle("h2")  # issued before the backlogged server read the chunk
        await trio.testing.wait_all_tasks_blocked()
        assert session.resume_handle == "h2"
        await stage.start_rotate()
        assert session.statistics().connections == 1  # the chunk is ambiguous: wait
        mock_clock.jump(0.6)
        conn1.answer_pending_pings()  # the server has read the chunk now
        await conn1.handle("h3")  # after the pong of the ping that followed the chunk
        conn2 = await stage.accept(first_handle="h4")
        assert resumed_from(conn2) == "h3"
        await session.send_client_content("two")
        assert await _first_client_kind(conn2) == "text:two"
        assert stage.replays() == (0, 0, 0)


async def test_planned_move_does_not_cut_a_turn_in_progress(mock_clock: trio.testing.MockClock) -> None:
    """A rotate() whose quiet and handle timeouts pass mid-turn (a slow, backlogged server) holds
    input and lets the turn finish: cutting it delivered part of the answer on the old connection
    and all of it again on the new one ("You saYou said: turn 1" in the 200-session pool test)."""
    rotation = RotationPolicy(timer=False, quiet_timeout_s=0.1, handle_timeout_s=0.1)
    async with staged(rotation=rotation) as stage:
        session, conn1 = stage.session, stage.conn1
        await stage.send_turn("one")
        await stage.model_says("You sa")
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()
        mock_clock.jump(5.0)  # both timeouts pass while the model is still speaking
        await trio.testing.wait_all_tasks_blocked()
        assert session.statistics().connections == 1
        await conn1.answer("id: one")
        await conn1.handle("h1")
        conn2 = await stage.accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        turn = await session.receive_turn()
        assert turn.text == "You said: one"
        await session.send_client_content("two")
        assert await _first_client_kind(conn2) == "text:two"


@pytest.mark.parametrize("vertex", FLAVOURS)
async def test_a_slow_handle_after_a_turn_is_awaited_past_handle_timeout(
    vertex: bool, mock_clock: trio.testing.MockClock
) -> None:
    """The handle the server issues after turnComplete is late (a backlogged server): moving with
    the older one at handle_timeout answered the turn twice (or lost it). The move waits for it,
    bounded by the connection's own deadline, not by handle_timeout."""
    rotation = RotationPolicy(timer=False, quiet_timeout_s=0.1, handle_timeout_s=0.1)
    async with staged(vertex=vertex, rotation=rotation) as stage:
        session, conn1 = stage.session, stage.conn1
        await stage.send_turn("one")
        await conn1.answer("You said: one")
        assert (await session.receive_turn()).text == "You said: one"
        await stage.start_rotate()
        mock_clock.jump(5.0)
        await trio.testing.wait_all_tasks_blocked()
        assert session.statistics().connections == 1
        await conn1.handle("h1", index=stage.index(0))
        conn2 = await stage.accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        await session.send_client_content("two")
        assert await _first_client_kind(conn2) == "text:two"


async def test_gemini_a_handle_read_late_is_dated_by_its_arrival(mock_clock: trio.testing.MockClock) -> None:
    """The user stops reading; the reader blocks handing messages over, and a handle waits unread.
    Audio sent meanwhile reaches the server *after* that handle was issued. Dating the handle by
    when it was read (seconds later) took that audio as covered: a drop then lost it (the pool's
    Gemini-flavour scale test lost a chunk this way on a loaded machine). Dated by its arrival,
    the chunk stays in the log and is replayed on the new connection."""
    async with staged(first_handle=None, inbox_size=1) as stage:
        session, conn1 = stage.session, stage.conn1
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))  # fills the inbox
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))  # the reader blocks
        await conn1.handle("h1")  # arrives now; not read while the user does not read
        await trio.testing.wait_all_tasks_blocked()
        assert session.resume_handle is None
        mock_clock.jump(2.0)
        await stage.send_chunk()  # the server reads it after issuing h1
        mock_clock.jump(2.0)
        for _ in range(2):
            await session.receive()  # the user reads again (setupComplete, the first turn):
        # the reader reads h1 4 s after it arrived
        await trio.testing.wait_all_tasks_blocked()
        assert session.resume_handle == "h1"
        for _ in range(2):
            await session.receive()  # the rest, so the reader is free to notice the drop
        conn2 = await stage.drop_and_accept()
        assert resumed_from(conn2) == "h1"
        await trio.testing.wait_all_tasks_blocked()
        assert [m.kind for m in conn2.sent_so_far()] == ["realtime_input"]  # replayed, not lost
        metrics = session.statistics()
        assert (metrics.replayed, metrics.replay_skipped) == (1, 0)


async def test_gemini_move_holds_input_while_the_model_answers(mock_clock: trio.testing.MockClock) -> None:
    """A move is wanted while the model answers and the user keeps streaming. Input is held from
    then on, so the handle that follows the turn covers everything sent and the move leaves at
    once with nothing ambiguous (audio sent just before that handle used to be, and was replayed
    - doubled - when no later handle came before the deadline)."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        await stage.send_turn("one")
        await stage.model_says("You said: one")
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()
        await session.send_realtime_input(audio=CHUNK)  # the user keeps streaming
        await trio.testing.wait_all_tasks_blocked()
        assert conn1.sent_so_far() == []  # held
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))
        await conn1.handle("h1")  # right after the turn: nothing was sent since it began
        await trio.testing.wait_all_tasks_blocked()
        assert session.statistics().rotations == 1  # left at once, no later handle needed
        conn2 = await stage.accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        assert (await conn2.expect()).realtime_input is not None  # the held chunk, sent once
        assert stage.replays() == (0, 0, 0)


async def test_gemini_move_lets_held_input_through_when_the_user_starts_speaking(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Input is held for a move, but the server says it is no longer resumable and no model turn
    follows: the user is speaking, and no handle comes until the utterance ends, which needs more
    audio. The hold is released until the model answers; the handle after that turn is used."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False  # a server still reading: nothing proves the chunk consumed
        await stage.send_chunk()
        mock_clock.jump(0.005)
        await conn1.handle("h1")  # arrives just after the chunk was sent: ambiguous
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()
        await session.send_realtime_input(audio=CHUNK)
        await trio.testing.wait_all_tasks_blocked()
        assert conn1.sent_so_far() == []  # held: waiting for a handle that covers the chunk
        await conn1.push(
            session_resumption_update=wire.SessionResumptionUpdate(new_handle="", resumable=False)
        )
        await trio.testing.wait_all_tasks_blocked()
        assert [m.kind for m in conn1.sent_so_far()] == ["realtime_input"]  # let through
        assert session.statistics().holds_released == 1
        mock_clock.jump(1.0)
        conn1.answer_pending_pings()  # the server has read both chunks
        await conn1.answer("You said: [audio]")
        await conn1.handle("h2")
        conn2 = await stage.accept(first_handle="h3")
        assert resumed_from(conn2) == "h2"
        metrics = session.statistics()
        assert (metrics.replayed, metrics.replay_ambiguous, metrics.rotations) == (0, 0, 1)


async def test_a_go_away_during_a_move_brings_its_deadline_forward(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A move waits (up to handle_timeout_s) for a handle that covers an ambiguous chunk; then a
    goAway says the connection ends in 0.5 s. The move must leave before that, not sit out its
    own timeout and be cut by the service (a drop, with everything in flight ambiguous)."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False  # a server still reading: nothing proves the chunk consumed
        await stage.send_chunk()
        mock_clock.jump(0.005)
        await conn1.handle("h1")  # the chunk is ambiguous: the move waits for a later handle
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()
        assert session.statistics().rotations == 0
        await conn1.push(go_away=wire.GoAway(time_left=wire.Duration(0.5)))
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(0.4)
        await trio.testing.wait_all_tasks_blocked()
        assert session.statistics().rotations == 1  # left before the connection's end
        conn2 = await stage.accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        metrics = session.statistics()
        assert metrics.replay_ambiguous + metrics.replay_skipped == 1  # judged, and reported


@pytest.mark.parametrize("pongs", [True, False], ids=["pong-in-order", "no-pong"])
async def test_gemini_move_trusts_a_handle_that_follows_the_pong_of_its_ping(
    mock_clock: trio.testing.MockClock, pongs: bool
) -> None:
    """Input is held; the session pings; a handle that arrives after that ping's pong was issued
    after the server consumed everything sent before it (the emulator answers pings in order),
    however little time passed: the move is exact at once. Without the pong nothing proves the
    chunk consumed, however much time passes: the move waits."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False  # the server has not read the chunk yet
        await stage.send_chunk()
        mock_clock.jump(0.005)
        await conn1.handle("h1")  # the chunk is ambiguous: no pong came before h1
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()
        assert session.statistics().rotations == 0
        if pongs:
            conn1.answer_pending_pings()  # the server read the chunk, then the move's ping
        mock_clock.jump(2.0)
        await conn1.handle("h2")
        await trio.testing.wait_all_tasks_blocked()
        if not pongs:
            assert session.statistics().rotations == 0  # nothing proves the chunk covered
            return
        assert session.statistics().rotations == 1
        conn2 = await stage.accept(first_handle="h3")
        assert resumed_from(conn2) == "h2"
        await session.send_client_content("next")
        assert await _first_client_kind(conn2) == "text:next"  # nothing replayed
        assert stage.replays() == (0, 0, 0)


async def test_a_handle_read_while_a_move_is_leaving_is_not_taken(mock_clock: trio.testing.MockClock) -> None:
    """The move chose its handle (h1) and what to replay (a chunk sent after h1), then waits for
    a send in flight to finish. A handle read meanwhile (h2) must not replace h1: judged by its
    own timing the chunk would be ambiguous under h2, and replayed it could be consumed twice."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        mock_clock.jump(1.0)
        await conn1.handle("h1")
        await trio.testing.wait_all_tasks_blocked()
        conn1.gate = trio.Event()
        await session.send_realtime_input(audio=CHUNK)  # in flight until the gate opens
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()  # decided: h1, replay the chunk
        await conn1.handle("h2")
        await trio.testing.wait_all_tasks_blocked()
        conn1.gate.set()
        conn2 = await stage.accept(first_handle="h3")
        assert resumed_from(conn2) == "h1"
        assert (await conn2.expect()).realtime_input is not None  # the chunk, replayed once
        assert session.statistics().replay_ambiguous == 0


@pytest.mark.parametrize("pongs", [True, False], ids=["pong-in-order", "no-pong"])
async def test_gemini_a_turn_end_while_audio_streams_is_no_proof_a_text_turn_was_read(
    mock_clock: trio.testing.MockClock, pongs: bool
) -> None:
    """Audio streams (the server's VAD may make a turn of it) and the user sends a text turn. The
    turnComplete that follows may end the VAD's turn with the text still unread: taken as proof
    the text was consumed, it trimmed every message up to the text, and a handle issued before
    the server read it then lost them all (seen under load after moves). What proves a user turn
    read is a handle after the pong of the ping the session sends after it (with pongs in order)."""
    async with staged() as stage:
        conn1 = stage.conn1
        conn1.answer_pings = pongs
        await stage.send_chunk()
        await stage.send_turn("one")
        await stage.model_says("an answer to the speech")
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))
        await conn1.handle("h1")  # issued before the server read "one", unless after its pong
        await trio.testing.wait_all_tasks_blocked()
        conn2 = await stage.drop_and_accept(first_handle="h2")
        assert resumed_from(conn2) == "h1"
        await trio.testing.wait_all_tasks_blocked()
        replayed = [m.kind for m in conn2.sent_so_far()]
        assert replayed == ([] if pongs else ["realtime_input", "client_content"])  # else both, once


@pytest.mark.parametrize("pongs", [True, False], ids=["pong-in-order", "no-pong"])
async def test_gemini_a_replay_burst_is_covered_only_by_a_handle_after_its_pong(
    mock_clock: trio.testing.MockClock, pongs: bool
) -> None:
    """After a drop the session sends the input queued meanwhile in one burst. A server may issue
    a handle while still reading a burst, however long after it arrived (under load one did, and
    dating the burst by its send lost its tail on the next move): a handle covers a burst only
    if it came after the pong of the ping the session sends once the burst is out."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        stage.server.answer_pings = pongs
        conn1.drop()
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(3):
            await session.send_realtime_input(audio=CHUNK)  # queued while reconnecting
        mock_clock.jump(1.0)  # the reconnect backoff
        conn2 = await stage.accept()
        for _ in range(3):
            assert (await conn2.expect()).realtime_input is not None
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(2.0)  # far beyond any settle time
        await conn2.handle("h2")
        await trio.testing.wait_all_tasks_blocked()
        conn3 = await stage.drop_and_accept(conn2)
        assert resumed_from(conn3) == "h2"
        await trio.testing.wait_all_tasks_blocked()
        chunks = [m for m in conn3.sent_so_far() if m.realtime_input is not None]
        assert len(chunks) == (0 if pongs else 3)  # proven covered, else replayed (not lost)


async def test_gemini_early_hold_is_released_when_no_handle_follows_the_turn(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Input was held while the model answered, but the user had been speaking: the turn ends and
    no handle follows (none mid-utterance), and held audio can never end that utterance. After a
    settle time without a handle the hold is released, so the utterance can end (the move waited
    for the connection's end: stalls of 2.9 s with goAway notices of 3 s)."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        await stage.send_turn("one")
        await conn1.push(
            session_resumption_update=wire.SessionResumptionUpdate(new_handle="", resumable=False)
        )
        await stage.model_says("You said: one")
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()
        await session.send_realtime_input(audio=CHUNK)
        await trio.testing.wait_all_tasks_blocked()
        assert conn1.sent_so_far() == []  # held while the model answers
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))  # no handle follows
        await trio.testing.wait_all_tasks_blocked()
        assert conn1.sent_so_far() == []  # not at once: the handle may be on its way
        mock_clock.jump(0.5)
        await trio.testing.wait_all_tasks_blocked()
        assert [m.kind for m in conn1.sent_so_far()] == ["realtime_input"]  # let through
        assert session.statistics().holds_released == 1


async def test_gemini_turn_answered_but_dropped_before_its_handle_is_replayed_as_history(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The user saw "one" answered; the connection dropped before the handle that follows a
    turnComplete (the README quickstart's race: ``ask`` returns, ``emu.drop()``). The resumed
    context (h0) lacks the turn, so it must be replayed, but as history with the answer the user
    saw and no turnComplete: the model must not answer it a second time."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False  # no proof the turn was read, and no handle after it
        await stage.send_turn("one")
        await conn1.answer("You said: one")
        await trio.testing.wait_all_tasks_blocked()
        conn2 = await stage.drop_and_accept(first_handle="h2")
        assert resumed_from(conn2) == "h0"
        replayed = await conn2.expect()
        content = replayed.client_content
        assert content is not None and not content.turn_complete
        turns = [(t.role, "".join(p.text or "" for p in t.parts or [])) for t in content.turns or []]
        assert turns == [("user", "one"), ("model", "You said: one")]
        assert session.statistics().replay_restored == 1
        await session.send_client_content("two")  # later turns are sent as ever
        assert await _first_client_kind(conn2) == "text:two"


async def test_gemini_turn_with_an_open_tool_call_is_not_replayed_as_history(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A turn whose tool call is still owed an answer at its turnComplete goes on after it:
    replayed as history it would lose the call; it is replayed as a turn."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False
        await stage.send_turn("one")
        await conn1.push(
            tool_call=wire.ToolCall(function_calls=[wire.FunctionCall(id="c1", name="nobody", args={})])
        )
        await conn1.answer("done")
        await trio.testing.wait_all_tasks_blocked()
        conn2 = await stage.drop_and_accept(first_handle="h2")
        first = await conn2.expect()
        assert first.client_content is not None and first.client_content.turn_complete
        assert session.statistics().replay_restored == 0


async def test_gemini_turn_with_an_answered_tool_call_is_replayed_as_history(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The user saw a turn that called a tool answered (call, answer, the model's reply, then
    turnComplete) and the connection dropped before the handle after it. Replayed as a turn the
    model would call the tool again and answer twice; it is history (the turn and the answer the
    user saw), and the tool answer is not resent (the resumed context never issued the call)."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False
        await stage.send_turn("one")
        await conn1.push(
            tool_call=wire.ToolCall(function_calls=[wire.FunctionCall(id="c1", name="nobody", args={})])
        )
        await trio.testing.wait_all_tasks_blocked()
        await session.send_tool_response([{"id": "c1", "name": "nobody", "response": {"ok": 1}}])
        assert await _first_client_kind(conn1) == "tool_response"
        await conn1.answer("nobody returned ok")
        await trio.testing.wait_all_tasks_blocked()
        conn2 = await stage.drop_and_accept(first_handle="h2")
        assert resumed_from(conn2) == "h0"
        replayed = await conn2.expect()
        content = replayed.client_content
        assert content is not None and not content.turn_complete
        turns = [(t.role, "".join(p.text or "" for p in t.parts or [])) for t in content.turns or []]
        assert turns == [("user", "one"), ("model", "nobody returned ok")]
        assert session.statistics().replay_restored == 1
        await session.send_client_content("two")  # the tool answer is not resent before it
        assert await _first_client_kind(conn2) == "text:two"


async def test_gemini_move_holds_input_from_the_first_frame_of_a_turn(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A move is pending while the user speaks. The model's whole (short) answer arrives in one
    read: the reader handles it to its turnComplete before the mover runs. The user's next
    utterance, sent at that turnComplete, must already be held: sent, the server would stop
    issuing handles for it (resumable: false) and the move would wait, let it through, and end
    forced (a chunk the server may have consumed replayed)."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.eager_reads = True
        await conn1.push(session_resumption_update=wire.SessionResumptionUpdate(resumable=False))
        await trio.testing.wait_all_tasks_blocked()
        await stage.start_rotate()  # not quiet: the move waits
        assert session.statistics().rotations == 0
        answer = wire.Content(role="model", parts=[wire.Part(text="a short answer")])
        conn1.push_at_once(
            wire.ServerMessage(server_content=wire.ServerContent(model_turn=answer)),
            wire.ServerMessage(server_content=wire.ServerContent(turn_complete=True)),
        )
        await trio.testing.wait_all_tasks_blocked()
        await session.send_realtime_input(audio=CHUNK)  # the user speaks again at once
        await trio.testing.wait_all_tasks_blocked()
        assert [m.kind for m in conn1.sent_so_far()] == []  # held for the move
        await conn1.handle("h1")  # the handle after the turn: it covers everything sent
        await trio.testing.wait_all_tasks_blocked()
        assert session.statistics().rotations == 1
        conn2 = await stage.accept()
        assert resumed_from(conn2) == "h1"
        assert await _first_client_kind(conn2) == "realtime_input"
        assert stage.replays() == (0, 0, 0)


@pytest.mark.parametrize("prove", [True, False], ids=["prove-by-ping", "timing-only"])
async def test_a_user_turn_is_followed_by_a_fence_ping_unless_proofs_are_off(prove: bool) -> None:
    """RotationPolicy.prove_by_ping: the writer pings after a user turn (in the same write) only
    when pongs are trusted as proof; off, timing alone judges and no ping goes out."""
    rotation = RotationPolicy(timer=False, quiet_timeout_s=5.0, handle_timeout_s=5.0, prove_by_ping=prove)
    async with staged(rotation=rotation) as stage:
        await stage.send_turn("one")
        await trio.testing.wait_all_tasks_blocked()
        assert len(stage.conn1.fences_sent) == (1 if prove else 0)


async def test_closing_during_a_pending_move_sends_everything_queued(
    mock_clock: trio.testing.MockClock,
) -> None:
    """aclose() while a move waits: the close's flush lets the held input out; the model then
    answers it, and the reader must not take the move's early hold again (the flush would wait
    out close_timeout and close with input never sent: lost, with a handle that does not cover
    it). Found in review."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        await conn1.push(session_resumption_update=wire.SessionResumptionUpdate(resumable=False))
        await trio.testing.wait_all_tasks_blocked()

        async def rotate() -> None:
            with contextlib.suppress(SessionClosedError):
                await session.rotate()

        stage.nursery.start_soon(rotate)  # not quiet: the move waits
        await trio.testing.wait_all_tasks_blocked()
        await stage.send_turn("one")
        await stage.model_says("You said: one")  # the early hold for this turn
        await trio.testing.wait_all_tasks_blocked()
        for text in ("two", "three", "four"):
            await session.send_client_content(text)  # held for the move
        await trio.testing.wait_all_tasks_blocked()
        assert conn1.sent_so_far() == []
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))
        await trio.testing.wait_all_tasks_blocked()
        first = conn1.gate = trio.Event()  # a slow network: each send waits for its gate
        stage.nursery.start_soon(session.aclose)
        await trio.testing.wait_all_tasks_blocked()
        conn1.gate = trio.Event()
        first.set()
        assert await conn1.expect_text() == "two"
        await stage.model_says("You said: two")  # the server answers "two" while "three" is in flight
        await trio.testing.wait_all_tasks_blocked()
        conn1.gate.set()
        assert await conn1.expect_text() == "three"
        assert await conn1.expect_text() == "four"


async def test_gemini_realtime_text_turn_answered_but_dropped_is_replayed_as_history(
    mock_clock: trio.testing.MockClock,
) -> None:
    """As for a clientContent turn: a realtimeInput.text turn the user saw answered is replayed
    as history (a user text turn and the answer, turnComplete false), not answered twice."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False
        await session.send_realtime_input(text="one")
        assert (await conn1.expect()).realtime_input is not None
        await conn1.answer("You said: one")
        await trio.testing.wait_all_tasks_blocked()
        conn2 = await stage.drop_and_accept(first_handle="h2")
        content = (await conn2.expect()).client_content
        assert content is not None and not content.turn_complete
        turns = [(t.role, "".join(p.text or "" for p in t.parts or [])) for t in content.turns or []]
        assert turns == [("user", "one"), ("model", "You said: one")]
        assert session.statistics().replay_restored == 1


@pytest.mark.parametrize("prove", [True, False], ids=["prove-by-ping", "timing-only"])
async def test_a_user_turn_proven_consumed_but_unanswered_is_replayed(
    mock_clock: trio.testing.MockClock, prove: bool
) -> None:
    """A handle read after the pong of a user turn's ping, before its turnComplete: the server
    consumed the turn, but nothing has answered it. Trimmed, a drop would resume from a context
    holding the turn with nothing left to make the model answer it: it stays logged (replayed,
    may be doubled) until its turn ends. Found in review."""
    rotation = RotationPolicy(timer=False, quiet_timeout_s=5.0, handle_timeout_s=5.0, prove_by_ping=prove)
    async with staged(rotation=rotation) as stage:
        await stage.send_turn("one")
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(2.0)  # far beyond any settle time
        await stage.conn1.handle("h1")
        await trio.testing.wait_all_tasks_blocked()
        conn2 = await stage.drop_and_accept()
        assert resumed_from(conn2) == "h1"
        assert await _first_client_kind(conn2) == "text:one"


async def test_a_user_turn_sent_during_an_unprompted_turn_is_still_owed_its_answer(
    mock_clock: trio.testing.MockClock,
) -> None:
    """The model speaks a turn nobody asked for (a NON_BLOCKING tool's result); the user's "one"
    interrupts it: ``interrupted``, then ``turnComplete`` in its own frame. That turnComplete is
    not the answer to "one": taken as such, a drop before the answer replayed "one" as history
    (no turnComplete) and nothing ever answered it. It is replayed as a turn. Found in review."""
    async with staged() as stage:
        session, conn1 = stage.session, stage.conn1
        conn1.answer_pings = False
        await stage.model_says("f returned 42")  # an unprompted turn begins
        await trio.testing.wait_all_tasks_blocked()
        await stage.send_turn("one")
        await conn1.push(server_content=wire.ServerContent(interrupted=True))
        await conn1.push(server_content=wire.ServerContent(turn_complete=True))
        await trio.testing.wait_all_tasks_blocked()
        assert not session.is_idle  # "one" is still owed its answer
        conn2 = await stage.drop_and_accept(first_handle="h2")
        assert resumed_from(conn2) == "h0"
        content = (await conn2.expect()).client_content
        assert content is not None and content.turn_complete
        assert session.statistics().replay_restored == 0
