"""A scripted server for deterministic move tests: the test plays the service frame by frame.

The emulator decides *when* it issues handles and consumes input; races between the two (a handle
issued before the server read a message, a handle arriving after ``turnComplete``) are what loses
or doubles turns, and only a scripted peer can stage them exactly, every run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.session import RotationPolicy, SessionConfig
from livemesh.transport import CloseInfo, ConnectionLostError
from tests.session.conftest import TEXT_MODEL, NoKeepalive, vertex_auth


class ScriptedConnection(NoKeepalive):
    """One fake WebSocket: the session writes client frames, the test reads them and answers."""

    def __init__(self) -> None:
        # each frame with the time the server sent it: the scripted peer is an engine that knows
        # exactly when a frame arrived (``arrived_after``), however late the session reads it
        self._down_send, self._down_recv = trio.open_memory_channel[tuple[bytes, float]](64)
        self._up_send, self._up_recv = trio.open_memory_channel[wire.ClientMessage](256)
        self.closed: tuple[int, str] | None = None
        self.setup: wire.Setup | None = None
        self.arrived_after: float | None = None
        self.received_index = -1
        self.gate: trio.Event | None = None
        """When set, sends wait for this event (a send in flight)."""
        self.eager_reads = False
        """Hand over frames already pushed without a scheduling round, as the real engine does
        for bytes already read: the session's other tasks run only once the reader waits."""
        self.answer_pings = True
        """Answer fence pings at once, after every frame pushed so far (a server that consumed all
        it was sent); False: never (a service whose pongs are slow)."""
        self._pushed = 0
        self.fences_sent: list[bytes] = []
        self._pongs: dict[bytes, int] = {}
        self._unanswered: list[bytes] = []

    # ------------------------------------------------------------ the session's side (Connection)

    @property
    def close_info(self) -> CloseInfo | None:
        return None

    async def send(self, data: bytes) -> None:
        if self.closed is not None:
            raise ConnectionLostError("closed", code=1000)
        if self.gate is not None:
            await self.gate.wait()  # a slow network: the session's send is in flight meanwhile
        await self._up_send.send(wire.decode_client(data))

    async def receive(self) -> bytes:
        try:
            if self.eager_reads:
                try:
                    data, self.arrived_after = self._down_recv.receive_nowait()
                    self.received_index += 1
                    return data
                except trio.WouldBlock:
                    pass
            data, self.arrived_after = await self._down_recv.receive()
            self.received_index += 1
            return data
        except trio.EndOfChannel:
            raise ConnectionLostError("dropped by the scripted server", code=1006) from None

    async def ping(self) -> None:
        return None

    async def send_many(self, frames: list[bytes]) -> None:
        for data in frames:
            await self.send(data)

    async def send_fenced(self, frames: list[bytes]) -> bytes:
        """The frames, then a fence ping (``SansioConnection.send_fenced``): answered at once,
        after every frame pushed so far, or never (``answer_pings``)."""
        for data in frames:
            await self.send(data)
        token = b"fence-%d" % len(self.fences_sent)
        self.fences_sent.append(token)
        if self.answer_pings:
            self._pongs[token] = self._pushed
        else:
            self._unanswered.append(token)
        return token

    def answer_pending_pings(self) -> None:
        """The server catches up: every ping not answered yet is answered now (in order), after
        every frame pushed so far."""
        for token in self._unanswered:
            self._pongs[token] = self._pushed
        self._unanswered.clear()

    def fence_result(self, token: bytes) -> int | None:
        return self._pongs.pop(token, None)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = (code, reason)
        self._up_send.close()

    # ------------------------------------------------------------ the test's side (the server)

    async def expect(self) -> wire.ClientMessage:
        """The next client message (fails the test, bounded by its fail_after, if none comes)."""
        return await self._up_recv.receive()

    def sent_so_far(self) -> list[wire.ClientMessage]:
        """Every client message already sent and not yet taken (never blocks)."""
        taken: list[wire.ClientMessage] = []
        while True:
            try:
                taken.append(self._up_recv.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return taken

    async def expect_text(self) -> str:
        message = await self.expect()
        assert message.client_content is not None, message
        turns = message.client_content.turns or []
        return "".join(part.text or "" for turn in turns for part in turn.parts or [])

    async def push(self, **fields: Any) -> None:
        data = wire.encode_server(wire.ServerMessage(**fields))
        await self._down_send.send((data, trio.current_time()))
        self._pushed += 1

    def push_at_once(self, *messages: wire.ServerMessage) -> None:
        """Several frames arriving in one read (no scheduling round between them here)."""
        for message in messages:
            self._down_send.send_nowait((wire.encode_server(message), trio.current_time()))
            self._pushed += 1

    async def handle(self, name: str, *, index: int | None = None) -> None:
        """A resumable handle (``index``: Vertex ``lastConsumedClientMessageIndex``)."""
        await self.push(
            session_resumption_update=wire.SessionResumptionUpdate(
                new_handle=name,
                resumable=True,
                last_consumed_client_message_index=None if index is None else wire.Int64(index),
            )
        )

    async def answer(self, text: str) -> None:
        """A whole model turn: text, then ``turnComplete``."""
        content = wire.Content(role="model", parts=[wire.Part(text=text)])
        await self.push(server_content=wire.ServerContent(model_turn=content))
        await self.push(server_content=wire.ServerContent(turn_complete=True))

    def drop(self) -> None:
        """The connection dies without a close frame."""
        self._down_send.close()


class ScriptedServer:
    """Hands each new connection to the test (``accept``), which answers setup and plays on."""

    def __init__(self) -> None:
        self._new_send, self._new_recv = trio.open_memory_channel[ScriptedConnection](8)
        self.answer_pings = True
        """``answer_pings`` of the connections made from now on (set before the session can ping)."""

    @asynccontextmanager
    async def connect(self, url: str, headers: list[tuple[str, str]]) -> AsyncIterator[ScriptedConnection]:
        conn = ScriptedConnection()
        conn.answer_pings = self.answer_pings
        await self._new_send.send(conn)
        yield conn

    async def accept(
        self, *, first_handle: str | None = None, index: int | None = None
    ) -> ScriptedConnection:
        """The next connection, set up; with ``first_handle`` a handle follows setupComplete."""
        conn = await self._new_recv.receive()
        setup = await conn.expect()
        assert setup.setup is not None, setup
        conn.setup = setup.setup
        await conn.push(setup_complete=wire.SetupComplete(session_id="scripted"))
        if first_handle is not None:
            await conn.handle(first_handle, index=index)
        return conn


def resumed_from(conn: ScriptedConnection) -> str | None:
    """The handle the session's setup on ``conn`` resumed from."""
    assert conn.setup is not None
    resumption = conn.setup.session_resumption
    return resumption.handle if resumption is not None else None


def scripted_config(*, vertex: bool, **options: Any) -> SessionConfig:
    """A session config for a scripted (or modelled) peer: the Gemini API or Vertex flavour."""
    options.setdefault("rotation", RotationPolicy(timer=False, quiet_timeout_s=5.0, handle_timeout_s=5.0))
    if vertex:
        options.update(auth=vertex_auth(), session_resumption={"transparent": True})
    else:
        options.update(auth=ApiKey("test-key-123"), session_resumption=True)
    return SessionConfig(
        model=TEXT_MODEL,
        generation_config={"response_modalities": ["TEXT"]},
        base_url="ws://127.0.0.1:9",  # never dialled: the scripted peer is the transport
        **options,
    )
