"""Every capability of the ``Connection`` protocol, on both engines (the ``engine`` fixture): against
the emulator over ws and wss, and against a peer on a socket pair where every byte is the test's."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
import trio_websocket
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import AuthError, ConfigError, QuotaError, ServiceClosedError, SetupRejectedError
from livemesh.session import Session
from livemesh.transport import (
    CloseInfo,
    Connection,
    ConnectionLostError,
    Engine,
    TlsSessionCache,
    TransportOptions,
    open_connection,
)
from livemesh.transport.sansio_engine import SansioConnection
from livemesh.transport.tls import TlsState
from tests.emulator.helpers import GEMINI, text_setup
from tests.session.conftest import make_config
from tests.session.test_tools import get_stock_price
from tests.transport.helpers import (
    KEY,
    accept,
    engine_and_peer,
    open_on,
    options_for,
    server_frame,
    socket_pair,
    text,
)


@pytest.fixture(params=[False, True], ids=["ws", "wss"])
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    async with open_emulator(EmulatorConfig(tls=request.param, resumption_update_interval_s=0.05)) as e:
        yield e


def url(emu: Emulator, key: str = KEY) -> str:
    return f"{emu.url}{GEMINI}?key={key}"


def tls_of(conn: Connection) -> TlsState:
    io = conn._io if isinstance(conn, SansioConnection) else conn._stream.io  # type: ignore[attr-defined]
    assert io.tls is not None
    return io.tls


async def setup(conn: Connection) -> wire.ServerMessage:
    await conn.send(wire.encode_client(wire.ClientMessage(setup=text_setup())))
    return wire.decode_server(await conn.receive())


def turn(words: str) -> bytes:
    content = wire.Content(parts=[wire.Part(text=words)], role="user")
    return wire.encode_client(
        wire.ClientMessage(client_content=wire.ClientContent(turns=[content], turn_complete=True))
    )


async def read_turn(conn: Connection) -> str:
    words: list[str] = []
    while True:
        content = wire.decode_server(await conn.receive()).server_content
        if content is None:
            continue
        if content.model_turn is not None:
            words.extend(part.text or "" for part in content.model_turn.parts or [])
        if content.turn_complete:
            return "".join(words)


async def say(conn: Connection, words: str) -> str:
    await conn.send(turn(words))
    return await read_turn(conn)


# ------------------------------------------------------------------ options


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("connect_timeout", 0, "0"),
        ("connect_timeout", -1.0, "-1.0"),
        ("connect_timeout", float("nan"), "nan"),
        ("disconnect_timeout", 0.0, "0.0"),
        ("disconnect_timeout", "5", "'5'"),
        ("receive_buffer_size", 0, "0"),
        ("receive_buffer_size", 1.5, "1.5"),
        ("max_message_bytes", -1, "-1"),
        ("message_queue_size", 0, "0"),  # was raised to 1 by the sansio engine, silently
        ("message_queue_size", True, "True"),
        ("engine", "asyncio", "'asyncio'"),
        ("ssl_context", "ca.pem", "str"),
        ("tls_sessions", {}, "dict"),
    ],
)
def test_a_bad_transport_option_is_a_config_error_naming_field_and_value(
    field: str, value: object, shown: str
) -> None:
    with pytest.raises(ConfigError, match=f"^TransportOptions\\.{field} must be .*, not ") as info:
        TransportOptions(**{field: value})  # type: ignore[arg-type]
    assert str(info.value).endswith(shown)


def test_transport_options_keep_every_value_given() -> None:
    cache = TlsSessionCache(max_hosts=1)
    options = TransportOptions(
        connect_timeout=float("inf"),
        disconnect_timeout=0.5,
        receive_buffer_size=1,
        max_message_bytes=1,
        message_queue_size=1,
        ssl_context=None,
        engine="trio-websocket",
        tls_sessions=cache,
    )
    assert (options.connect_timeout, options.disconnect_timeout) == (float("inf"), 0.5)
    assert (options.receive_buffer_size, options.max_message_bytes, options.message_queue_size) == (1, 1, 1)
    assert options.tls_sessions is cache and cache.max_hosts == 1
    assert TransportOptions(tls_sessions=None).tls_sessions is None


# ------------------------------------------------------------------ against the emulator


async def test_handshake_text_turn_and_clean_close(emu: Emulator, engine: Engine) -> None:
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options_for(emu, engine)) as conn:
            assert conn.close_info is None
            assert (await setup(conn)).setup_complete is not None
            assert await say(conn, "hello there") == "You said: hello there"
            assert conn.received_index >= 1
            assert KEY not in repr(conn)
        assert conn.close_info == CloseInfo(1000, "")
        await emu.wait_idle()


async def test_key_in_a_header_and_a_batched_send(emu: Emulator, engine: Engine) -> None:
    with trio.fail_after(10):
        async with open_connection(
            f"{emu.url}{GEMINI}", [("x-goog-api-key", KEY)], options=options_for(emu, engine)
        ) as conn:
            await setup(conn)
            await conn.send_many([turn("one"), turn("two")])
            while (said := await read_turn(conn)) != "You said: two":
                # "two" may interrupt "one" at any point, but nothing of "one" follows the
                # turnComplete that ended it (a cancelled turn writes no frame)
                assert "You said: one".startswith(said)
            assert await say(conn, "recall") == json.dumps(["one", "two"])
        await emu.wait_idle()


@pytest.mark.parametrize(("close_code", "expected"), [(1011, 1011), (None, 1006)])
async def test_server_closes_surface_through_close_info(
    emu: Emulator, engine: Engine, close_code: int | None, expected: int
) -> None:
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options_for(emu, engine)) as conn:
            await setup(conn)
            await emu.drop(close_code=close_code)
            with pytest.raises(ConnectionLostError) as lost:
                while True:
                    await conn.receive()
            assert lost.value.code == expected
            info = conn.close_info
            assert info is not None and info.code == expected
            with pytest.raises(ConnectionLostError):
                await conn.send(turn("too late"))
        await emu.wait_idle()


async def test_bad_key_is_an_auth_error_and_never_logged(
    emu: Emulator, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = EmulatorConfig(tls=emu.ca_pem is not None, api_keys=frozenset({"the-good-key"}))
    with trio.fail_after(10):
        async with open_emulator(config) as strict:
            async with open_connection(url(strict, "a-bad-key"), options=options_for(strict, engine)) as conn:
                await conn.send(wire.encode_client(wire.ClientMessage(setup=text_setup())))
                with pytest.raises(AuthError) as bad:
                    await conn.receive()
                assert bad.value.code == 1008
                assert "a-bad-key" not in str(bad.value)
            await strict.wait_idle()
    assert "a-bad-key" not in caplog.text


async def test_cancel_mid_receive_closes_the_socket(emu: Emulator, engine: Engine) -> None:
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with open_connection(url(emu), options=options_for(emu, engine)) as conn:
                await setup(conn)
                assert emu.live_connections() == 1
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(conn.receive)
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()
        assert scope.cancelled_caught
        assert conn.close_info is not None
        await emu.wait_idle()
        assert (emu.live_connections(), emu.open_sockets()) == (0, 0)


async def test_large_frames_both_ways_and_the_size_limit(emu: Emulator, engine: Engine) -> None:
    big = "x" * 100_000  # an 100 KB frame up, frames of tens of KB down (within the context window)
    with trio.fail_after(20):
        async with open_connection(url(emu), options=options_for(emu, engine)) as conn:
            await setup(conn)
            assert await say(conn, big) == f"You said: {big}"
        small_options = options_for(emu, engine, max_message_bytes=10_000)
        async with open_connection(url(emu), options=small_options) as small:
            await setup(small)
            await small.send(turn(big))
            with pytest.raises(ServiceClosedError) as too_big:
                while True:
                    await small.receive()
            assert too_big.value.code == 1009
        await emu.wait_idle()


async def test_ping_waits_for_the_pong_with_and_without_a_reader(emu: Emulator, engine: Engine) -> None:
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options_for(emu, engine)) as conn:
            await setup(conn)
            await conn.ping()  # nobody receiving: the ping reads (or waits) for itself
            replies: list[str] = []
            answered = trio.Event()
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    replies.append(await read_turn(conn))
                    answered.set()
                    while True:  # keeps consuming (resumption updates come every 50 ms)
                        await conn.receive()

                nursery.start_soon(reader)
                await conn.send(turn("ping me"))
                for _ in range(3):
                    await conn.ping()  # the reader's reads deliver the pong
                await answered.wait()
                nursery.cancel_scope.cancel()
            assert replies == ["You said: ping me"]
            await emu.drop(close_code=1011)
            with pytest.raises(ConnectionLostError):
                while True:
                    await conn.ping()
        await emu.wait_idle()


async def test_fences_against_the_emulator(emu: Emulator, engine: Engine) -> None:
    """The emulator answers a ping once it consumed what came before it: the fence's count is the
    number of messages read before the pong, and messages numbered past it came after."""
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options_for(emu, engine)) as conn:
            await setup(conn)
            token = await conn.send_fenced([turn("fenced")])
            result = None
            while result is None:
                await conn.receive()
                result = conn.fence_result(token)
            assert 1 <= result <= conn.received_index + 1
            assert conn.fence_result(token) is None  # given once
        await emu.wait_idle()


async def test_tls_reconnects_resume_with_the_options_session_cache(engine: Engine) -> None:
    """Rotation reconnects every few minutes: a second connection made with the same options
    resumes the first one's TLS session (no certificate chain verified again); options without
    the cache make a full handshake every time. The service, like the emulator, issues TLS 1.3
    tickets."""
    async with open_emulator(EmulatorConfig(tls=True)) as emu:
        with trio.fail_after(10):
            for cached, expected in ((True, [False, True, True]), (False, [False, False])):
                opts = options_for(emu, engine) if cached else options_for(emu, engine, tls_sessions=None)
                reused = []
                for _ in expected:
                    async with open_connection(url(emu), options=opts) as conn:
                        await setup(conn)
                        assert await say(conn, "hi") == "You said: hi"
                        reused.append(tls_of(conn).ssl_object.session_reused)
                assert reused == expected
                assert "SSLSession" not in repr(opts)
            await emu.wait_idle()


async def test_session_actor_chats_calls_tools_and_rotates(emu: Emulator, engine: Engine) -> None:
    config = make_config(emu, tools=[get_stock_price], transport=options_for(emu, engine))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            session = Session(config)
            await nursery.start(session.run)
            assert await session.ask("hello") == "You said: hello"
            answer = await session.ask('call get_stock_price {"symbol": "AAPL"}')
            assert answer.startswith("get_stock_price returned")
            await session.rotate()
            assert await session.ask("after the move") == "You said: after the move"
            assert await session.ask("recall") == json.dumps(["hello", "after the move"])
            await session.aclose()
    metrics = session.statistics()
    assert (metrics.rotations, metrics.tool_calls) == (1, 1)
    await emu.wait_idle()


# ------------------------------------------------------------------ refusals, no server


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthError),
        (403, AuthError),
        (429, QuotaError),
        (404, SetupRejectedError),
        (503, ConnectionLostError),
    ],
)
async def test_a_refused_upgrade_is_mapped(engine: Engine, status: int, error: type[Exception]) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(status)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
            with pytest.raises(error) as refused:
                async with open_connection(
                    f"ws://127.0.0.1:{server.port}/x?key={KEY}", options=TransportOptions(engine=engine)
                ):
                    pass  # pragma: no cover
            assert getattr(refused.value, "code", None) == status
            assert KEY not in str(refused.value)
            nursery.cancel_scope.cancel()


async def test_connecting_to_nothing_is_retryable(engine: Engine) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(5), pytest.raises(ConnectionLostError):
        async with open_connection(f"ws://127.0.0.1:{port}/x", options=TransportOptions(engine=engine)):
            pass  # pragma: no cover


# ------------------------------------------------------------------ on a socket pair


async def test_fence_counts_the_messages_before_its_pong_exactly(engine: Engine) -> None:
    with trio.fail_after(10):
        async with engine_and_peer(engine) as (conn, peer):
            token = await conn.send_fenced([b'"a"', b'"b"'])
            one, two, ping = await peer.read_frames(3)
            assert (one.data, two.data, ping.opcode) == (b'"a"', b'"b"', Opcode.PING)
            assert bytes(ping.data) == token
            assert conn.fence_result(token) is None  # unanswered
            await peer.stream.send_all(
                text("1") + text("2") + server_frame(0xA, token) + text("3") + text("4")
            )
            got = [await conn.receive() for _ in range(4)]
            assert got == ["1", "2", "3", "4"]
            assert conn.received_index == 3
            assert conn.fence_result(token) == 2  # "3" (index 2) and later came after the pong
            assert conn.fence_result(token) is None


async def test_send_many_and_send_fenced_are_one_write_each(engine: Engine) -> None:
    """Over a socket that keeps write boundaries (SOCK_SEQPACKET: one record per send), the peer
    gets the whole batch, fence ping included, as one record."""
    a, b = socket_pair(socket.SOCK_SEQPACKET)
    peer = trio.socket.from_stdlib_socket(b)

    async def answer_upgrade() -> None:
        class Records(trio.abc.Stream):
            async def receive_some(self, max_bytes: int | None = None) -> bytes:
                return await peer.recv(1 << 20)

            async def send_all(self, data: bytes | bytearray | memoryview) -> None:
                await peer.send(data)

            async def wait_send_all_might_not_block(self) -> None:  # pragma: no cover
                pass

            async def aclose(self) -> None:  # pragma: no cover
                pass

        response, _ = await accept(Records())
        await peer.send(response)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_upgrade)
            async with open_on(engine, a) as conn:
                await conn.send_many([b'"x"', b'"y"', b'"z"'])
                first = await peer.recv(1 << 20)
                await conn.send_fenced([b'"p"', b'"q"'])
                second = await peer.recv(1 << 20)
                parser = Protocol(Side.SERVER, state=State.OPEN)
                parser.receive_data(first)
                assert [bytes(e.data) for e in parser.events_received()] == [b'"x"', b'"y"', b'"z"']
                parser.receive_data(second)
                frames = parser.events_received()
                assert [e.opcode for e in frames] == [Opcode.TEXT, Opcode.TEXT, Opcode.PING]
                peer.close()


async def test_frames_read_late_are_dated_no_later_than_their_arrival(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """``arrived_after`` dates a frame by its arrival, not by when it was read: a frame that sat in
    the socket while nobody read is dated no later than the moment it was known to be there."""
    with trio.fail_after(10):
        async with engine_and_peer(engine) as (conn, peer):
            got: list[bytes | str] = []

            async def receive_one() -> None:
                got.append(await conn.receive())

            async with trio.open_nursery() as inner:
                inner.start_soon(receive_one)
                await trio.testing.wait_all_tasks_blocked()  # the reader waits on an empty socket
                before_a = trio.current_time()
                await peer.stream.send_all(text("a"))
            assert got == ["a"]
            assert conn.arrived_after is not None and conn.arrived_after >= before_a
            await peer.stream.send_all(text("b") + text("c"))
            sent = trio.current_time()
            await trio.sleep(5)  # (virtual time) read long after they arrived
            assert await conn.receive() == "b"
            assert conn.arrived_after is not None and conn.arrived_after <= sent
            assert await conn.receive() == "c"
            assert conn.arrived_after is not None and conn.arrived_after <= sent


async def _drive_keepalive(conn: Connection) -> None:
    """What the session's mover does: the keepalive at its deadline, until it raises."""
    while True:
        await trio.sleep_until(conn.keepalive_deadline())
        await conn.keepalive()


@pytest.mark.parametrize("by_caller", [False, True], ids=["in-receive", "by-caller"])
async def test_keepalive_pings_an_idle_connection_and_a_late_pong_keeps_it(
    engine: Engine, by_caller: bool, autojump_clock: trio.testing.MockClock
) -> None:
    """Run by the waiting receive, or by the caller (``by_caller``: the receive has no deadline of
    its own; the caller's ``keepalive()`` pings, and the receive parses the pong)."""
    async with engine_and_peer(engine) as (conn, peer):
        conn.set_keepalive(interval=20, pong_timeout=60, by_caller=by_caller)
        got: list[bytes | str] = []
        start = trio.current_time()
        async with trio.open_nursery() as inner:

            async def receive() -> None:
                got.append(await conn.receive())
                inner.cancel_scope.cancel()  # (ends the caller's keepalive loop)

            inner.start_soon(receive)
            if by_caller:
                inner.start_soon(_drive_keepalive, conn)
            for _ in range(3):
                (ping,) = await peer.read_frames(1)  # one ping per idle interval, answered late
                assert ping.opcode is Opcode.PING
                await trio.sleep(50)
                await peer.stream.send_all(server_frame(0xA, bytes(ping.data)))
            assert trio.current_time() - start >= 3 * 20
            await peer.stream.send_all(text("hello"))
        assert got == ["hello"]


async def test_keepalive_does_not_ping_while_frames_flow(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    async with engine_and_peer(engine) as (conn, peer):
        conn.set_keepalive(interval=20, pong_timeout=60)
        for i in range(10):
            await trio.sleep(15)
            await peer.stream.send_all(text(str(i)))
            assert await conn.receive() == str(i)
        with pytest.raises(BlockingIOError):
            peer.sock.recv(1, socket.MSG_PEEK)  # the client wrote nothing: no ping


@pytest.mark.parametrize("by_caller", [False, True], ids=["in-receive", "by-caller"])
async def test_keepalive_gives_up_without_any_frame(
    engine: Engine, by_caller: bool, autojump_clock: trio.testing.MockClock
) -> None:
    async with engine_and_peer(engine) as (conn, peer):
        conn.set_keepalive(interval=20, pong_timeout=60, by_caller=by_caller)
        start = trio.current_time()
        async with trio.open_nursery() as inner:
            if by_caller:
                inner.start_soon(conn.receive)  # reading: the pong would be parsed
            with pytest.raises(ConnectionLostError, match="keepalive") as lost:
                await (_drive_keepalive(conn) if by_caller else conn.receive())
            inner.cancel_scope.cancel()
        assert lost.value.code == 1011
        assert trio.current_time() - start == pytest.approx(80)
        assert (await peer.read_frames(1))[0].opcode is Opcode.PING


async def test_caller_driven_keepalive_spares_a_connection_nobody_reads(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """With no receive reading (a slow consumer), unread frames may be waiting: the caller's
    keepalive neither pings nor gives up; the silence counts again from then."""
    async with engine_and_peer(engine) as (conn, peer):
        conn.set_keepalive(interval=20, pong_timeout=60, by_caller=True)
        for _ in range(5):
            await trio.sleep_until(conn.keepalive_deadline())
            await conn.keepalive()
        assert trio.current_time() >= 100
        with pytest.raises(BlockingIOError):
            peer.sock.recv(1, socket.MSG_PEEK)  # no ping written
        await peer.stream.send_all(text("still here"))
        assert await conn.receive() == "still here"
