"""A resumable session's context, its snapshots, and the store that maps handles to snapshots.

A resumption handle names a *snapshot*: the context exactly as it was when the handle was
issued. Resuming restores that snapshot, so whatever the old connection consumed after the handle
was issued is gone from the resumed context (that is what a client must replay). Handles stay
valid while the session has a live connection and ``handle_validity_s`` after its last one ended.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import Any

import attrs
import trio

from livemesh.emulator import closes


@attrs.frozen(kw_only=True)
class SessionStats:
    """What a session's context has consumed, from :meth:`Emulator.stats <livemesh.emulator.Emulator.stats>`.

    The numbers a test judges a client by: after drops, rotations and resumptions, every user
    turn must be in the context exactly once (``compressed_texts + texts``), and ``resumptions``
    and ``disconnects_mid_turn`` say how the client moved. A resumption restores the context as
    it was when the handle was issued, so what the old connection sent after it is not counted.
    """

    messages: int = 0
    """Client messages consumed after setup (messages carrying only the ``recall`` / ``stats``
    commands excluded)."""
    audio_bytes: int = 0
    """Bytes of realtime audio received (decoded from base64)."""
    audio_chunks: int = 0
    """Realtime audio blobs received."""
    video_frames: int = 0
    """Realtime blobs that were not audio (video frames)."""
    turns: int = 0
    """User turns taken (text, client content or spoken), including those compression cut."""
    texts: tuple[str, ...] = ()
    """The user turn texts still in the context, in order (a spoken turn as the text the emulator
    transcribes it to: its duration and size)."""
    tool_responses: int = 0
    """Function responses received."""
    unknown_tool_responses: int = 0
    """Function responses that matched no pending call (an unknown id, or an answer to a call
    already answered); responses to cancelled calls are not counted here."""
    pending_results: tuple[str, ...] = ()
    """SILENT tool results folded into the next answer."""
    turn_tokens: tuple[int, ...] = ()
    """Estimated tokens per entry of ``texts`` (user turn plus answer)."""
    compressions: int = 0
    """How often the sliding window cut the context."""
    compressed_texts: tuple[str, ...] = ()
    """The user turn texts the sliding window cut, in order: ``compressed_texts + texts`` is every
    user turn the session consumed, so a judge of loss and doubles works across compression."""
    connections: int = 0
    """Connections this session has had (``emu.stats`` only; 0 in snapshots)."""
    resumptions: int = 0
    """Connections that resumed the session from a handle (``emu.stats`` only)."""
    handles_issued: int = 0
    """Resumption handles issued to the session (``emu.stats`` only)."""
    disconnects_mid_turn: int = 0
    """Connections the CLIENT closed or dropped while a model turn or BLOCKING call was in
    progress (a rotation that did not wait for a quiet point)."""

    def with_connections(
        self, connections: int, resumptions: int, handles_issued: int, disconnects_mid_turn: int
    ) -> SessionStats:
        """These numbers with the session's connection counts filled in (internal to the emulator).

        Args:
            connections: Connections the session has had.
            resumptions: Those that resumed from a handle.
            handles_issued: Handles issued to the session.
            disconnects_mid_turn: Connections the client left mid-turn.

        Returns:
            A copy with the counts set.
        """
        return attrs.evolve(
            self,
            connections=connections,
            resumptions=resumptions,
            handles_issued=handles_issued,
            disconnects_mid_turn=disconnects_mid_turn,
        )

    def as_json(self) -> dict[str, Any]:
        """The ``stats`` command's reply object, for clients that ask over the wire.

        Returns:
            The context's numbers as JSON (``tokens`` is the sum of ``turn_tokens``); the
            connection counts are left out.
        """
        return {
            "messages": self.messages,
            "audio_bytes": self.audio_bytes,
            "audio_chunks": self.audio_chunks,
            "video_frames": self.video_frames,
            "turns": self.turns,
            "texts": list(self.texts),
            "tool_responses": self.tool_responses,
            "unknown_tool_responses": self.unknown_tool_responses,
            "tokens": sum(self.turn_tokens),
            "compressions": self.compressions,
            "compressed_texts": list(self.compressed_texts),
        }


@attrs.define(eq=False)
class Context:
    """The mutable counters a connection updates per message; :meth:`snapshot` freezes them."""

    messages: int = 0
    audio_bytes: int = 0
    audio_chunks: int = 0
    video_frames: int = 0
    turns: int = 0
    texts: list[str] = attrs.Factory(list)
    tool_responses: int = 0
    unknown_tool_responses: int = 0
    pending_results: list[str] = attrs.Factory(list)
    turn_tokens: list[int] = attrs.Factory(list)
    """Estimated tokens of each entry of ``texts`` (the user turn plus the model's answer)."""
    compressions: int = 0
    compressed_texts: list[str] = attrs.Factory(list)

    def add_turn(self, text: str, tokens: int) -> None:
        self.texts.append(text)
        self.turn_tokens.append(tokens)
        self.turns += 1

    def add_reply_tokens(self, tokens: int) -> None:
        if self.turn_tokens:
            self.turn_tokens[-1] += tokens

    def tokens(self) -> int:
        return sum(self.turn_tokens)

    def compress(self, trigger: int, target: int) -> None:
        """The sliding window: past ``trigger`` tokens, drop whole user turns from the oldest
        until at most ``target`` remain (the newest turn is always kept)."""
        if self.tokens() <= trigger:
            return
        total = self.tokens()
        cut = 0
        while cut < len(self.texts) - 1 and total > target:
            total -= self.turn_tokens[cut]
            cut += 1
        self.compressed_texts.extend(self.texts[:cut])
        del self.texts[:cut]
        del self.turn_tokens[:cut]
        self.compressions += 1

    def snapshot(self) -> SessionStats:
        # Derived from Context's own fields, so a counter added here can never be left out of a
        # snapshot (and silently lost across a resumption); lists freeze into tuples.
        fields: dict[str, Any] = {
            f.name: tuple(value) if isinstance(value := getattr(self, f.name), list) else value
            for f in attrs.fields(Context)
        }
        return SessionStats(**fields)

    @classmethod
    def restore(cls, snap: SessionStats) -> Context:
        fields: dict[str, Any] = {
            f.name: list(value) if isinstance(value := getattr(snap, f.name), tuple) else value
            for f in attrs.fields(cls)
        }
        return cls(**fields)


@attrs.define(eq=False)
class SessionRecord:
    """One resumable session: its id, model, current context and the snapshots its handles name."""

    id: str
    model: str
    key: str | None = attrs.field(repr=False)
    context: Context = attrs.Factory(Context)
    handles: OrderedDict[str, SessionStats] = attrs.Factory(OrderedDict)
    connection: object | None = None
    connection_closed: trio.Event = attrs.Factory(trio.Event)
    ended_at: float | None = None
    connections: int = 0
    resumptions: int = 0
    handles_issued: int = 0
    disconnects_mid_turn: int = 0

    def attach(self, connection: object) -> None:
        self.connection = connection
        self.connection_closed = trio.Event()
        self.ended_at = None
        self.connections += 1

    def detach(self, connection: object, now: float) -> None:
        if self.connection is connection:
            self.connection = None
            self.ended_at = now
            self.connection_closed.set()


class SessionStore:
    """Every session and handle of one emulator (no global state: one store per emulator)."""

    def __init__(
        self, *, handle_validity_s: float, max_handles_per_session: int, max_stored_sessions: int = 100_000
    ) -> None:
        self._validity = handle_validity_s
        self._max_handles = max_handles_per_session
        self._max_sessions = max_stored_sessions
        self.sessions: dict[str, SessionRecord] = {}
        self._handle_owner: dict[str, str] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()  # sessions without a connection, oldest first

    def attach(self, record: SessionRecord, connection: object) -> None:
        record.attach(connection)
        self._ended.pop(record.id, None)

    def detach(self, record: SessionRecord, connection: object, now: float) -> None:
        if record.connection is connection:
            record.detach(connection, now)
            self._ended[record.id] = now
            self._ended.move_to_end(record.id)

    def create(self, model: str, key: str | None) -> SessionRecord:
        session_id = "s-" + secrets.token_hex(8)
        record = SessionRecord(session_id, model, key)
        self.sessions[session_id] = record
        return record

    def issue_handle(self, record: SessionRecord) -> str:
        """A fresh handle naming the record's current state."""
        handle = "h-" + secrets.token_urlsafe(18)
        record.handles[handle] = record.context.snapshot()
        record.handles_issued += 1
        self._handle_owner[handle] = record.id
        while len(record.handles) > self._max_handles:
            old, _ = record.handles.popitem(last=False)
            self._handle_owner.pop(old, None)
        return handle

    def resolve(self, handle: str, now: float) -> tuple[SessionRecord, SessionStats]:
        """The session and snapshot a handle names, or :class:`~closes.Refusal` (1008 not found)."""
        session_id = self._handle_owner.get(handle)
        record = self.sessions.get(session_id) if session_id else None
        if record is None or handle not in record.handles or self._expired(record, now):
            raise closes.Refusal(closes.POLICY, closes.TEXT_NOT_FOUND)
        return record, record.handles[handle]

    def _expired(self, record: SessionRecord, now: float) -> bool:
        return (
            record.connection is None
            and record.ended_at is not None
            and now - record.ended_at > self._validity
        )

    def prune(self, now: float) -> None:
        """Forget sessions whose handles have all expired, and the oldest ended sessions past
        ``max_stored_sessions`` (bounded memory over a long run; cheap: oldest first)."""
        while self._ended:
            session_id, ended_at = next(iter(self._ended.items()))
            if now - ended_at <= self._validity and len(self.sessions) <= self._max_sessions:
                break
            del self._ended[session_id]
            record = self.sessions.pop(session_id, None)
            if record is not None:
                for handle in record.handles:
                    self._handle_owner.pop(handle, None)
