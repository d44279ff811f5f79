"""The sans-I/O engine (livemesh.transport_sansio) against the emulator over ws and wss, and the real
session actor running on it: same errors, closes, cancellation and pings as the default engine."""

from __future__ import annotations

import json
import logging
import ssl
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.errors import AuthError, ConfigError, QuotaError, ServiceClosedError, SetupRejectedError
from livemesh.session import Session
from livemesh.transport import CloseInfo, Connection, ConnectionLostError, TransportOptions
from livemesh.transport_sansio import SansioConnection, open_connection
from tests.emulator.helpers import GEMINI, text_setup
from tests.session.conftest import make_config
from tests.session.test_tools import get_stock_price

KEY = "sansio-SECRET-key"


@pytest.fixture(params=[False, True], ids=["ws", "wss"])
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    async with open_emulator(EmulatorConfig(tls=request.param, resumption_update_interval_s=0.05)) as e:
        yield e


def options(emu: Emulator, **fields: Any) -> TransportOptions:
    context = ssl.create_default_context(cadata=emu.ca_pem.decode()) if emu.ca_pem else None
    return TransportOptions(ssl_context=context, **fields)


def url(emu: Emulator, key: str = KEY) -> str:
    return f"{emu.url}{GEMINI}?key={key}"


async def setup(conn: Connection) -> wire.ServerMessage:
    await conn.send(wire.encode_client(wire.ClientMessage(setup=text_setup())))
    return wire.decode_server(await conn.receive())


def turn(text: str) -> bytes:
    content = wire.Content(parts=[wire.Part(text=text)], role="user")
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


async def say(conn: Connection, text: str) -> str:
    await conn.send(turn(text))
    return await read_turn(conn)


async def test_handshake_text_turn_and_clean_close(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options(emu)) as conn:
            assert isinstance(conn, SansioConnection)
            assert conn.close_info is None
            assert (await setup(conn)).setup_complete is not None
            assert await say(conn, "hello there") == "You said: hello there"
            assert KEY not in repr(conn)
        assert conn.close_info == CloseInfo(1000, "")
        await emu.wait_idle()


async def test_key_in_a_header_and_a_batched_send(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_connection(
            f"{emu.url}{GEMINI}", [("x-goog-api-key", KEY)], options=options(emu)
        ) as c:
            assert isinstance(c, SansioConnection)
            await setup(c)
            await c.send_many([turn("one"), turn("two")])
            while (text := await read_turn(c)) != "You said: two":
                # "two" may interrupt "one" at any point, but nothing of "one" follows the
                # turnComplete that ended it (a cancelled turn writes no frame)
                assert "You said: one".startswith(text)
            assert await say(c, "recall") == json.dumps(["one", "two"])
        await emu.wait_idle()


@pytest.mark.parametrize(("close_code", "expected"), [(1011, 1011), (None, 1006)])
async def test_server_closes_surface_through_close_info(
    emu: Emulator, close_code: int | None, expected: int
) -> None:
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options(emu)) as conn:
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
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = EmulatorConfig(tls=emu.ca_pem is not None, api_keys=frozenset({"the-good-key"}))
    with trio.fail_after(10):
        async with open_emulator(config) as strict:
            async with open_connection(url(strict, "a-bad-key"), options=options(strict)) as conn:
                await conn.send(wire.encode_client(wire.ClientMessage(setup=text_setup())))
                with pytest.raises(AuthError) as bad:
                    await conn.receive()
                assert bad.value.code == 1008
                assert "a-bad-key" not in str(bad.value)
            await strict.wait_idle()
    assert "a-bad-key" not in caplog.text


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
async def test_refused_upgrade_maps_like_the_default_engine(status: int, error: type[Exception]) -> None:
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        await request.reject(status)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
            with pytest.raises(error) as refused:
                async with open_connection(f"ws://127.0.0.1:{server.port}/x?key={KEY}"):
                    pass  # pragma: no cover
            assert getattr(refused.value, "code", None) == status
            assert KEY not in str(refused.value)
            nursery.cancel_scope.cancel()


async def test_connecting_to_nothing_is_retryable() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    with trio.fail_after(5), pytest.raises(ConnectionLostError):
        async with open_connection(f"ws://127.0.0.1:{port}/x"):
            pass  # pragma: no cover


async def test_untrusted_certificate_is_a_connection_error() -> None:
    async with open_emulator(EmulatorConfig(tls=True)) as emu:
        with trio.fail_after(5), pytest.raises(ConnectionLostError):
            async with open_connection(
                url(emu), options=TransportOptions(ssl_context=ssl.create_default_context())
            ):
                pass  # pragma: no cover
        await emu.wait_idle()


async def test_cancel_mid_receive_closes_the_socket(emu: Emulator) -> None:
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with open_connection(url(emu), options=options(emu)) as conn:
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


async def test_large_frames_both_ways_and_the_size_limit(emu: Emulator) -> None:
    big = "x" * 100_000  # an 100 KB frame up, frames of tens of KB down (within the context window)
    with trio.fail_after(20):
        async with open_connection(url(emu), options=options(emu)) as conn:
            await setup(conn)
            assert await say(conn, big) == f"You said: {big}"
        async with open_connection(url(emu), options=options(emu, max_message_bytes=10_000)) as small:
            await setup(small)
            await small.send(turn(big))
            with pytest.raises(ServiceClosedError) as too_big:
                while True:
                    await small.receive()
            assert too_big.value.code == 1009
        await emu.wait_idle()


async def test_ping_waits_for_the_pong_with_and_without_a_reader(emu: Emulator) -> None:
    with trio.fail_after(10):
        async with open_connection(url(emu), options=options(emu)) as conn:
            await setup(conn)
            await conn.ping()  # nobody receiving: ping reads for itself
            replies: list[str] = []
            answered = trio.Event()
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    replies.append(await read_turn(conn))
                    answered.set()
                    while True:  # keeps consuming: without a consumer a ping stops reading at the
                        await conn.receive()  # queue bound (resumption updates come every 50 ms)

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


# ----------------------------------------------------------------------------- the session actor


def sansio(config: Any) -> Any:
    return lambda u, h: open_connection(u, h, options=config.transport)


async def test_session_actor_chats_calls_tools_and_rotates_on_this_engine(emu: Emulator) -> None:
    config = make_config(emu, tools=[get_stock_price], transport=options(emu))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            session = Session(config, connect=sansio(config))
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


async def test_session_actor_on_the_trio_websocket_engine_through_the_option(emu: Emulator) -> None:
    """The fallback engine, chosen the way users choose it: ``TransportOptions(engine=...)``."""
    config = make_config(emu, tools=[get_stock_price], transport=options(emu, engine="trio-websocket"))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            session = Session(config)
            await nursery.start(session.run)
            assert await session.ask("hello") == "You said: hello"
            answer = await session.ask('call get_stock_price {"symbol": "AAPL"}')
            assert answer.startswith("get_stock_price returned")
            await session.rotate()
            assert await session.ask("recall") == json.dumps(["hello"])
            await session.aclose()
    assert session.statistics().rotations == 1
    await emu.wait_idle()


def bare_connection(
    stream: trio.abc.Stream, *, options: TransportOptions | None = None, max_size: int | None = 2**20
) -> SansioConnection:
    """A connection past its handshake on any trio stream, to drive the byte level directly
    (``max_size``: the largest frame it accepts, ``None`` for any)."""
    import websockets.frames
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    protocol = ClientProtocol(parse_uri("ws://peer/"), state=State.OPEN, max_size=max_size)
    options = options or TransportOptions()
    return SansioConnection(stream, protocol, options=options, frames=websockets.frames, states=State)


async def test_a_send_cancelled_mid_frame_aborts_the_connection() -> None:
    """The peer must never see bytes after a partial frame: the stream is closed at once."""
    client_stream, peer = trio.testing.lockstep_stream_pair()
    conn = bare_connection(client_stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            cancelled = trio.Event()

            async def big_send() -> None:
                with trio.CancelScope() as scope:
                    nursery.start_soon(cancel_after_first_bytes, scope)
                    await conn.send(b'"' + b"x" * 100_000 + b'"')
                cancelled.set()

            async def cancel_after_first_bytes(scope: trio.CancelScope) -> None:
                assert await peer.receive_some(10)  # part of the frame left
                scope.cancel()

            nursery.start_soon(big_send)
        assert cancelled.is_set()
        assert conn.close_info == CloseInfo(1006, "")
        with pytest.raises(ConnectionLostError):
            await conn.send(b"{}")
        with pytest.raises(trio.ClosedResourceError):
            await client_stream.send_all(b"more")  # closed: nothing can follow the partial frame


async def test_invalid_utf8_text_frame_fails_the_connection_with_1007() -> None:
    client_stream, peer = trio.testing.memory_stream_pair()
    conn = bare_connection(client_stream)
    with trio.fail_after(5):
        await peer.send_all(b"\x81\x02\xff\xfe")  # unmasked text frame, 2 bytes of invalid UTF-8
        await peer.aclose()
        with pytest.raises(ServiceClosedError) as bad:
            await conn.receive()
        assert bad.value.code == 1007


async def test_missing_websockets_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("websockets", "websockets.client", "websockets.uri"):
        monkeypatch.setitem(sys.modules, name, None)  # what a missing package looks like to import
    with pytest.raises(ConfigError, match="pip install"):
        async with open_connection("ws://127.0.0.1:9/x"):
            pass  # pragma: no cover


def _server_frame(text: str) -> bytes:
    payload = text.encode()  # FIN + text, unmasked (server to client)
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    return bytes([0x81, 127]) + len(payload).to_bytes(8, "big") + payload


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_frames_read_late_are_dated_no_later_than_their_arrival(tls: bool) -> None:
    """``arrived_after`` dates a frame by its arrival, not by when it was read: a frame that sat in
    the socket (or trio's TLS buffers) while nobody read is dated no later than the moment it was
    known to be there. The session dates resumption handles with it (issue 4)."""
    import trustme

    a, b = trio.socket.socketpair()
    client_stream: trio.abc.Stream = trio.SocketStream(a)
    server_stream: trio.abc.Stream = trio.SocketStream(b)
    if tls:
        ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost").configure_cert(server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        client_stream = trio.SSLStream(client_stream, client_ctx, server_hostname="localhost")
        server_stream = trio.SSLStream(server_stream, server_ctx, server_side=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client_stream.do_handshake)  # type: ignore[attr-defined]
            nursery.start_soon(server_stream.do_handshake)  # type: ignore[attr-defined]
    conn = bare_connection(client_stream)
    with trio.fail_after(10):
        got: list[bytes | str] = []

        async def receive_one() -> None:
            got.append(await conn.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            await trio.testing.wait_all_tasks_blocked()  # the reader waits on an empty socket
            before_a = trio.current_time()
            await server_stream.send_all(_server_frame("a"))
        assert got == ["a"]
        assert conn.arrived_after is not None and conn.arrived_after >= before_a  # woken by its arrival
        await server_stream.send_all(_server_frame("b") + _server_frame("c"))
        sent = trio.current_time()
        await trio.testing.wait_all_tasks_blocked()
        assert await conn.receive() == "b"
        assert conn.arrived_after is not None and conn.arrived_after <= sent  # read later, dated earlier
        assert await conn.receive() == "c"
        assert conn.arrived_after is not None and conn.arrived_after <= sent
        # A burst bigger than one read arrives while the reader waits: the frames of the second
        # read are dated by the burst's arrival, not by the last empty-buffer time before it.
        big = "x" * (2 * TransportOptions().receive_buffer_size)
        got.clear()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_one)
            await trio.testing.wait_all_tasks_blocked()
            before_burst = trio.current_time()
            await server_stream.send_all(_server_frame(big) + _server_frame("d"))
        assert got == [big]
        assert await conn.receive() == "d"
        assert conn.arrived_after is not None and conn.arrived_after >= before_burst
    await trio.aclose_forcefully(client_stream)
    await trio.aclose_forcefully(server_stream)


async def test_reconnects_resume_tls_with_the_options_session_cache() -> None:
    # Rotation reconnects every few minutes: the second connection made with the same options
    # resumes the first one's TLS session (no certificate chain verified again); options with
    # the cache turned off make a full handshake every time.
    async with open_emulator(EmulatorConfig(tls=True)) as emu:
        with trio.fail_after(10):
            for cached, expected in ((True, [False, True, True]), (False, [False, False])):
                opts = options(emu) if cached else options(emu, tls_sessions=None)
                reused = []
                for _ in expected:
                    async with open_connection(url(emu), options=opts) as conn:
                        assert isinstance(conn, SansioConnection)
                        await setup(conn)
                        assert await say(conn, "hi") == "You said: hi"
                        stream = conn._stream
                        assert isinstance(stream, trio.SSLStream)
                        reused.append(stream.session_reused)
                assert reused == expected
                assert "SSLSession" not in repr(opts)
