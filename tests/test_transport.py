"""The transport seam: close-code classification, error mapping at the boundary, keepalive."""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trio_websocket

from livemesh.errors import AuthError, ContextWindowError, QuotaError, ServiceClosedError, SetupRejectedError
from livemesh.transport import (
    CloseInfo,
    ConnectionLostError,
    TransportOptions,
    classify_close,
    close_error,
    keepalive,
    open_connection,
    redact_url,
)


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        (1007, "Request contains an invalid argument.", "fatal"),
        (1007, "API key expired. Please renew the API key.", "auth"),
        (1008, "Requested entity was not found.", "fatal"),
        (1008, "Method doesn't allow unregistered callers (callers without established identity).", "auth"),
        (1008, "The operation was aborted.", "fatal"),
        (1011, "Internal error occurred.", "retryable"),
        (1011, "Deadline expired before operation could complete.", "retryable"),
        (1011, "The service is currently unavailable.", "retryable"),
        (1011, "RESOURCE_EXHAUSTED: You exceeded your current quota (concurrent sessions).", "quota"),
        (1011, "Billing account disabled", "quota"),
        (1011, "You have run out of credits", "quota"),
        (1006, "", "retryable"),
        (1000, "", "retryable"),
        (1001, "", "retryable"),
        (1002, "", "fatal"),
    ],
)
def test_close_codes_are_classified(code: int, reason: str, kind: str) -> None:
    assert classify_close(code, reason) == kind


def test_close_errors_are_typed() -> None:
    invalid = close_error(CloseInfo(1007, "Request contains an invalid argument."))
    assert isinstance(invalid, ServiceClosedError)  # after setupComplete the setup is not to blame
    refused = close_error(CloseInfo(1007, "Request contains an invalid argument."), during_setup=True)
    assert isinstance(refused, SetupRejectedError)
    bad_key = close_error(CloseInfo(1008, "API key not valid. Please pass a valid API key."))
    assert isinstance(bad_key, AuthError)
    assert isinstance(close_error(CloseInfo(1011, "RESOURCE_EXHAUSTED")), QuotaError)
    window = close_error(
        CloseInfo(1007, "The input token count (131100) exceeds the maximum number of tokens allowed (1024).")
    )
    assert isinstance(window, ContextWindowError)  # not an AuthError for speaking of "tokens"
    assert "context_window_compression" in str(window)
    lost = close_error(CloseInfo(1011, "Internal error occurred."))
    assert isinstance(lost, ConnectionLostError)
    assert (lost.code, lost.reason) == (1011, "Internal error occurred.")


def test_redact_url_drops_query_and_userinfo() -> None:
    assert redact_url("wss://user:pw@host.example:443/ws/x?key=SECRET") == "wss://host.example:443/ws/x"


ENGINES = pytest.mark.parametrize("engine", ["sansio", "trio-websocket"])


@ENGINES
async def test_open_connection_maps_close_and_rejection(engine: str) -> None:
    opts = TransportOptions(engine=engine)  # type: ignore[arg-type]
    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        if "/reject" in request.path:
            await request.reject(403)
            return
        ws = await request.accept()
        message = await ws.get_message()
        await ws.send_message(message)
        await ws.aclose(1007, "Request contains an invalid argument.")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
            port = server.port
            base = f"ws://127.0.0.1:{port}"
            async with open_connection(
                base + "/echo", [("x-goog-api-key", "SECRET-KEY")], options=opts
            ) as conn:
                assert conn.close_info is None
                await conn.send(b'{"hello": 1}')
                assert await conn.receive() == '{"hello": 1}'
                with pytest.raises(ServiceClosedError) as info:
                    await conn.receive()
                assert info.value.code == 1007
                assert conn.close_info == CloseInfo(1007, "Request contains an invalid argument.")
            with pytest.raises(AuthError) as rejected:
                async with open_connection(base + "/reject?key=SECRET-KEY", options=opts):
                    pass  # pragma: no cover
            assert rejected.value.code == 403
            assert "SECRET-KEY" not in str(rejected.value)
            nursery.cancel_scope.cancel()


@ENGINES
async def test_connecting_to_nothing_is_retryable(engine: str) -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    opts = TransportOptions(engine=engine)  # type: ignore[arg-type]
    with trio.fail_after(5), pytest.raises(ConnectionLostError):
        async with open_connection(f"ws://127.0.0.1:{port}/x", options=opts):
            pass  # pragma: no cover


class _SlowPongs:
    """A connection whose pongs take ``delay`` seconds (the service was seen taking 8-30 s)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        await trio.sleep(self.delay)


async def test_keepalive_tolerates_slow_pongs(autojump_clock: trio.testing.MockClock) -> None:
    conn = _SlowPongs(delay=25.0)
    with trio.move_on_after(300):
        await keepalive(conn, interval=20, pong_timeout=60, last_activity=lambda: 0.0)  # type: ignore[arg-type]
    assert conn.pings >= 5  # alive throughout: a 25 s pong is late, not dead


async def test_keepalive_gives_up_without_pong_or_traffic(autojump_clock: trio.testing.MockClock) -> None:
    conn = _SlowPongs(delay=1e9)
    with pytest.raises(ConnectionLostError, match="keepalive"):
        await keepalive(conn, interval=20, pong_timeout=60, last_activity=lambda: 0.0)  # type: ignore[arg-type]
    assert trio.current_time() == pytest.approx(80.0)


async def test_keepalive_does_not_ping_a_busy_connection(autojump_clock: trio.testing.MockClock) -> None:
    conn = _SlowPongs(delay=0.0)
    with trio.move_on_after(100):
        await keepalive(conn, interval=20, pong_timeout=60, last_activity=trio.current_time)  # type: ignore[arg-type]
    assert conn.pings == 0
