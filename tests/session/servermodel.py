"""A small reference model of the Live service, for the session's stateful tests.

It keeps what the real service keeps, and no more: what each connection has consumed (its
context, in order), which handle names which snapshot of that context, whether it is resumable,
the turn in progress, the tool calls it waits for, and the frames it has sent that the client has
not read yet. Nothing happens on its own: the test decides when the server reads (a read may lag
any amount behind the write), when the model speaks, when handles come, when the connection
drops, when a goAway comes and with what notice. So every interleaving the test can generate is
one the real service could produce.

The rules it follows are the service's as documented and as the emulator plays them:

* A user text turn (``clientContent`` with ``turnComplete``) starts a model turn; a turn starting
  while another is in progress interrupts it (``interrupted``, its calls cancelled, its
  ``turnComplete``). ``turnComplete: false`` content (history) only extends the context.
* Audio is speech or silence. Speech starts an utterance (barge-in, and not resumable until it
  ends); ``SILENCE_TO_END`` silent chunks end it and start a model turn (the server's VAD).
* A turn whose trigger is ``call:N`` makes a BLOCKING ``toolCall`` first and continues once its
  answer is consumed.
* While a turn is in progress, a call waits or the user speaks, the server is not resumable; it
  says ``resumable: false`` once when that starts (if it had said resumable before), and a handle
  follows every ``turnComplete`` when it is resumable again, as well as periodic ones (the test's
  ``handle`` rule) and one right after setup.
* A ping is answered (pong) when the server has consumed everything sent before it, in order.
* A handle names the context as it is when issued; resuming from it restores exactly that. On
  Vertex (``transparent``) it also carries the index of the last message consumed on its
  connection.

Client messages carry their identity: audio data is ``b"S"`` (speech) or ``b"Q"`` (silence) and
an 8-byte number; a text turn is ``"t:N"``, a turn that calls the tool ``"c:N"``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import attrs

from livemesh import wire

SILENCE_TO_END = 3
"""Silent chunks that end an utterance (300 ms of 100 ms chunks)."""
TOOL = "lookup"


def audio_payload(ident: int, speech: bool) -> bytes:
    return (b"S" if speech else b"Q") + ident.to_bytes(8, "big") + b"\0"  # 16-bit PCM: even length


def text_payload(ident: int, call: bool = False) -> str:
    return f"{'c' if call else 't'}:{ident}"


@attrs.define
class Item:
    """One thing the client wrote on a connection: a message, or a ping (``token``)."""

    kind: str  # audio | turn | history | response | ping | other
    ids: tuple[int, ...] = ()
    speech: bool = False
    call: bool = False
    call_ids: tuple[str, ...] = ()
    token: bytes | None = None
    written_at: float = 0.0


def classify(data: bytes, now: float) -> Item:
    message = wire.decode_client(data)
    if message.realtime_input is not None:
        rt = message.realtime_input
        if rt.audio is not None and rt.audio.data and rt.audio.data[:1] in (b"S", b"Q"):
            ident = int.from_bytes(rt.audio.data[1:9], "big")
            return Item("audio", (ident,), speech=rt.audio.data[:1] == b"S", written_at=now)
        return Item("other", written_at=now)
    if message.client_content is not None:
        content = message.client_content
        ids: list[int] = []
        call = False
        for turn in content.turns or []:
            if turn.role not in (None, "user"):
                continue
            text = "".join(p.text or "" for p in turn.parts or [])
            if text[:2] in ("t:", "c:"):
                ids.append(int(text[2:]))
                call = text[:2] == "c:"
        kind = "turn" if content.turn_complete else "history"
        return Item(kind, tuple(ids), call=call, written_at=now)
    if message.tool_response is not None:
        answered = tuple(r.id or "" for r in message.tool_response.function_responses or [])
        return Item("response", call_ids=answered, written_at=now)
    return Item("other", written_at=now)


@attrs.define
class Turn:
    trigger: int | None  # the user turn it answers (None: an utterance's turn)
    call: bool
    stage: str = "new"  # new -> waiting -> answering -> spoken
    call_id: str | None = None
    since: float = 0.0


@attrs.define(eq=False)
class ServerConn:
    """The server's side of one connection."""

    number: int
    started_at: float
    deadline: float
    context: list[int]
    """User message ids consumed, in order (the resumed snapshot first)."""
    responses: list[str]
    """Tool call ids answered, in order (over the whole context lineage)."""
    inbound: collections.deque[Item] = attrs.Factory(collections.deque)
    outbound: collections.deque[tuple[bytes, float]] = attrs.Factory(collections.deque)
    cancel_frames: dict[int, tuple[str, ...]] = attrs.Factory(dict)
    """Frame number -> the call ids its toolCallCancellation cancels."""
    emitted: int = 0  # data frames emitted so far
    read: int = 0  # data frames the client has read
    pongs: dict[bytes, int] = attrs.Factory(dict)
    consumed: int = -1  # index of the last client message consumed on this connection
    alive: bool = True
    closed_by_client: bool = False
    turn: Turn | None = None
    pending: dict[str, Turn] = attrs.Factory(dict)
    speaking: bool = False
    silent: int = 0
    advertised_resumable: bool = False
    go_away_at: float | None = None


class ServerModel:
    """The service (one session's worth), driven step by step by the test."""

    def __init__(self, *, vertex: bool, lifetime: float, now: float = 0.0) -> None:
        self.vertex = vertex
        self.lifetime = lifetime
        self.snapshots: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}
        self.conns: list[ServerConn] = []
        self.now = now
        self._handles = 0
        self._calls = 0
        self.unknown_responses: list[str] = []
        self.setups: list[str | None] = []
        self.cancelled: set[str] = set()
        self.issued_calls: set[str] = set()
        self.cancel_read: set[str] = set()
        """Calls whose cancellation the client has read (and so processed, once it settled)."""
        self.cancel_seen: set[str] = set()
        self.answered_after_cancel: list[str] = []
        self.first_written: dict[int, float] = {}
        """User message id -> when the client first wrote it (on any connection)."""

    # ------------------------------------------------------------------ state

    @property
    def conn(self) -> ServerConn | None:
        return self.conns[-1] if self.conns and self.conns[-1].alive else None

    def resumable(self, conn: ServerConn) -> bool:
        return conn.turn is None and not conn.pending and not conn.speaking

    # ------------------------------------------------------------------ frames to the client

    def _emit(self, conn: ServerConn, **fields: Any) -> None:
        if not conn.alive:
            return
        conn.outbound.append((wire.encode_server(wire.ServerMessage(**fields)), self.now))
        conn.emitted += 1

    def _handle(self, conn: ServerConn) -> bool:
        if not conn.alive or not self.resumable(conn):
            return False
        self._handles += 1
        name = f"h{self._handles}"
        self.snapshots[name] = (tuple(conn.context), tuple(conn.responses))
        index = wire.Int64(conn.consumed) if self.vertex else None
        update = wire.SessionResumptionUpdate(
            new_handle=name, resumable=True, last_consumed_client_message_index=index
        )
        conn.advertised_resumable = True
        self._emit(conn, session_resumption_update=update)
        return True

    def _not_resumable(self, conn: ServerConn) -> None:
        if conn.advertised_resumable:
            conn.advertised_resumable = False
            self._emit(conn, session_resumption_update=wire.SessionResumptionUpdate(resumable=False))

    # ------------------------------------------------------------------ connections

    def setup(self, handle: str | None) -> ServerConn:
        """A new connection's setup (resuming from ``handle``): setupComplete, then a handle."""
        for old in self.conns:
            old.alive = False
        self.setups.append(handle)
        if handle is not None:
            context, responses = self.snapshots[handle]
        else:
            context, responses = (), ()
        conn = ServerConn(
            number=len(self.conns),
            started_at=self.now,
            deadline=self.now + self.lifetime,
            context=list(context),
            responses=list(responses),
        )
        self.conns.append(conn)
        self._emit(conn, setup_complete=wire.SetupComplete(session_id="model"))
        self._handle(conn)
        return conn

    def closed_by_client(self, conn: ServerConn) -> None:
        """The client closed ``conn`` with a close frame: what it sent before it is still read."""
        if conn.alive:
            self.consume_all(conn)
            conn.alive = False
            conn.closed_by_client = True

    def consume_all(self, conn: ServerConn) -> None:
        while conn.alive and conn.inbound:
            self._consume(conn, conn.inbound.popleft())

    def drop(self) -> None:
        """The connection dies: what the server had not read is lost; what it sent stays readable."""
        conn = self.conn
        if conn is not None:
            conn.alive = False
            conn.inbound.clear()

    def go_away(self, notice: float) -> None:
        conn = self.conn
        if conn is None:
            return
        conn.deadline = min(conn.deadline, self.now + notice)
        conn.go_away_at = self.now
        self._emit(conn, go_away=wire.GoAway(time_left=wire.Duration(notice)))

    # ------------------------------------------------------------------ the client's writes

    def wrote(self, conn: ServerConn, data: bytes) -> None:
        item = classify(data, self.now)
        for ident in item.ids:
            self.first_written.setdefault(ident, self.now)
        for call_id in item.call_ids:
            if call_id in self.cancel_seen:
                self.answered_after_cancel.append(call_id)
        if conn.alive:
            conn.inbound.append(item)

    def read_frame(self, conn: ServerConn) -> tuple[bytes, float]:
        """The client reads the next frame of ``conn``."""
        data, arrived = conn.outbound.popleft()
        self.cancel_read.update(conn.cancel_frames.pop(conn.read, ()))
        conn.read += 1
        return data, arrived

    def client_settled(self) -> None:
        self.cancel_seen |= self.cancel_read

    def pinged(self, conn: ServerConn, token: bytes) -> None:
        if conn.alive:
            conn.inbound.append(Item("ping", token=token, written_at=self.now))

    # ------------------------------------------------------------------ the server reads

    def consume(self, n: int = 1) -> int:
        """The server reads up to ``n`` items of the current connection; returns how many."""
        conn = self.conn
        done = 0
        while conn is not None and conn.alive and conn.inbound and done < n:
            self._consume(conn, conn.inbound.popleft())
            done += 1
        return done

    def _consume(self, conn: ServerConn, item: Item) -> None:
        if item.kind == "ping":
            assert item.token is not None
            conn.pongs[item.token] = conn.emitted
            return
        conn.consumed += 1
        if item.kind == "audio":
            conn.context.extend(item.ids)
            if item.speech:
                conn.silent = 0
                if not conn.speaking:
                    conn.speaking = True
                    self._not_resumable(conn)
                    self._interrupt(conn)
            elif conn.speaking:
                conn.silent += 1
                if conn.silent >= SILENCE_TO_END:
                    conn.speaking = False
                    self._interrupt(conn)
                    self._begin(conn, Turn(trigger=None, call=False))
        elif item.kind == "history":
            conn.context.extend(item.ids)
        elif item.kind == "turn":
            conn.context.extend(item.ids)
            self._interrupt(conn)
            self._begin(conn, Turn(trigger=item.ids[-1] if item.ids else None, call=item.call))
        elif item.kind == "response":
            for call_id in item.call_ids:
                conn.responses.append(call_id)
                turn = conn.pending.pop(call_id, None)
                if turn is None:
                    if call_id not in self.cancelled:
                        self.unknown_responses.append(call_id)
                    continue
                turn.stage = "answering"
                turn.since = self.now
            if self.resumable(conn):
                self._handle(conn)

    def _begin(self, conn: ServerConn, turn: Turn) -> None:
        self._not_resumable(conn)
        turn.since = self.now
        conn.turn = turn

    def _interrupt(self, conn: ServerConn) -> None:
        turn = conn.turn
        if turn is None:
            return
        conn.turn = None
        cancelled = [cid for cid, t in conn.pending.items() if t is turn]
        for cid in cancelled:
            del conn.pending[cid]
            self.cancelled.add(cid)
        self._emit(conn, server_content=wire.ServerContent(interrupted=True))
        if cancelled:
            conn.cancel_frames[conn.emitted] = tuple(cancelled)
            self._emit(conn, tool_call_cancellation=wire.ToolCallCancellation(ids=cancelled))
        self._emit(conn, server_content=wire.ServerContent(turn_complete=True))

    # ------------------------------------------------------------------ the model speaks

    def progress(self) -> bool:
        """The turn in progress takes its next step (content, a call, or its end)."""
        conn = self.conn
        if conn is None or conn.turn is None:
            return False
        turn = conn.turn
        if turn.stage == "new" and turn.call:
            self._calls += 1
            turn.call_id = f"k{self._calls}"
            turn.stage = "waiting"
            turn.since = self.now
            conn.pending[turn.call_id] = turn
            self.issued_calls.add(turn.call_id)
            call = wire.FunctionCall(id=turn.call_id, name=TOOL, args={"n": turn.trigger})
            self._emit(conn, tool_call=wire.ToolCall(function_calls=[call]))
            return True
        if turn.stage == "waiting":
            return False
        if turn.stage in ("new", "answering"):
            turn.stage = "spoken"
            turn.since = self.now
            said = wire.Content(role="model", parts=[wire.Part(text=f"a:{turn.trigger}")])
            self._emit(conn, server_content=wire.ServerContent(model_turn=said))
            return True
        conn.turn = None
        self._emit(conn, server_content=wire.ServerContent(turn_complete=True))
        self._handle(conn)
        return True

    def periodic_handle(self) -> bool:
        conn = self.conn
        return conn is not None and self._handle(conn)

    def cancel_pending(self) -> bool:
        """The server cancels the calls it waits for (as after an interruption)."""
        conn = self.conn
        if conn is None or not conn.pending:
            return False
        ids = list(conn.pending)
        for cid in ids:
            turn = conn.pending.pop(cid)
            self.cancelled.add(cid)
            if conn.turn is turn:
                conn.turn = None
        conn.cancel_frames[conn.emitted] = tuple(ids)
        self._emit(conn, tool_call_cancellation=wire.ToolCallCancellation(ids=ids))
        self._emit(conn, server_content=wire.ServerContent(turn_complete=True))
        return True

    # ------------------------------------------------------------------ judging

    def doubled(self) -> int:
        """User messages the current context holds more than once (extra copies)."""
        conn = self.conns[-1] if self.conns else None
        if conn is None:
            return 0
        counts = collections.Counter(conn.context)
        return sum(c - 1 for c in counts.values() if c > 1)

    def doubled_responses(self) -> int:
        conn = self.conns[-1] if self.conns else None
        if conn is None:
            return 0
        counts = collections.Counter(conn.responses)
        return sum(c - 1 for c in counts.values() if c > 1)

    def final_context(self) -> list[int]:
        return list(self.conns[-1].context) if self.conns else []

    def live_conns(self) -> Iterator[ServerConn]:
        return (c for c in self.conns if c.alive)
