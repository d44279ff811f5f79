"""Servers on 127.0.0.1 that misbehave in ways real networks and services do, on both engines.

Each test here failed before the transport was rebuilt on its own socket layer: a 101 split over
several reads, a frame cut short while the server keeps answering pings, a refused certificate
retried as a connection loss, and a bearer token echoed in a close reason.
"""

from __future__ import annotations

import logging
import ssl
import traceback

import pytest
import trio
import trio.testing
from websockets.frames import Close

from livemesh.auth import VertexAI, secrets_of
from livemesh.errors import AuthError, CertificateError, LivemeshError, SessionError
from livemesh.session import RetryPolicy, RotationPolicy, SessionConfig, open_session
from livemesh.transport import ConnectionLostError, Engine, TransportOptions, open_connection
from tests.transport.helpers import ClientFrames, Handler, Tls, accept, raw_server, server_frame, text

TOKEN = "ya29.a0AfB_byC-not-a-real-bearer-token-1234567890"


# ------------------------------------------------------------------ a 101 in pieces


async def test_an_upgrade_answer_split_over_many_reads_opens(engine: Engine) -> None:
    """Every byte of the 101 (and of the first frame after it) arrives in a read of its own."""

    async def byte_by_byte(stream: trio.abc.Stream) -> None:
        response, _ = await accept(stream)
        for index in range(len(response)):
            await stream.send_all(response[index : index + 1])
            await trio.testing.wait_all_tasks_blocked()  # the client read it and waits again
        for byte in text("first"):
            await stream.send_all(bytes([byte]))
            await trio.testing.wait_all_tasks_blocked()
        await trio.sleep_forever()

    with trio.fail_after(20):
        async with raw_server(byte_by_byte) as port:
            async with open_connection(
                f"ws://127.0.0.1:{port}/x", options=TransportOptions(engine=engine)
            ) as conn:
                assert await conn.receive() == "first"


# ------------------------------------------------------------------ a frame cut short


async def test_a_frame_cut_short_while_pongs_keep_coming_fails_the_keepalive(
    engine: Engine, autojump_clock: trio.testing.MockClock
) -> None:
    """The server sends the head of a 10 KB frame and then only answers pings: the pongs' bytes
    are the cut frame's payload to the client, so no frame ever completes. That is not life: the
    keepalive gives up ``interval + pong_timeout`` after the last complete frame."""

    async def cut_then_pong(stream: trio.abc.Stream) -> None:
        response, _ = await accept(stream)
        await stream.send_all(response + server_frame(0x2, b"x" * 10_000)[:100])
        async for payload in ClientFrames(stream).pings():
            await stream.send_all(server_frame(0xA, payload))

    async with raw_server(cut_then_pong) as port:
        async with open_connection(
            f"ws://127.0.0.1:{port}/x", options=TransportOptions(engine=engine)
        ) as conn:
            conn.set_keepalive(interval=3, pong_timeout=5)
            start = trio.current_time()
            with trio.fail_after(600), pytest.raises(ConnectionLostError, match="keepalive") as lost:
                await conn.receive()
            assert lost.value.code == 1011
            assert trio.current_time() - start == pytest.approx(8)


# ------------------------------------------------------------------ refused certificates


async def _tls_echo(stream: trio.abc.Stream) -> None:
    response, _ = await accept(stream)
    await stream.send_all(response + text("hello"))
    await trio.sleep_forever()


async def test_a_trusted_certificate_opens(engine: Engine) -> None:
    tls = Tls("127.0.0.1")
    with trio.fail_after(10):
        async with raw_server(_tls_echo, tls=tls.server) as port:
            options = TransportOptions(engine=engine, ssl_context=tls.client)
            async with open_connection(f"wss://127.0.0.1:{port}/x", options=options) as conn:
                assert await conn.receive() == "hello"


@pytest.mark.parametrize("why", ["untrusted", "another-host"])
async def test_a_refused_certificate_is_a_certificate_error_at_once(engine: Engine, why: str) -> None:
    tls = Tls("127.0.0.1" if why == "untrusted" else "other.example")
    client = ssl.create_default_context() if why == "untrusted" else tls.client
    with trio.fail_after(10):
        async with raw_server(_tls_echo, tls=tls.server) as port:
            with pytest.raises(CertificateError) as refused:
                async with open_connection(
                    f"wss://127.0.0.1:{port}/x?key=SECRET",
                    options=TransportOptions(engine=engine, ssl_context=client),
                ):
                    pass  # pragma: no cover
    message = str(refused.value)
    assert "certificate" in message.lower()
    assert ("mismatch" in message.lower()) is (why == "another-host")
    assert "SECRET" not in message
    assert not isinstance(refused.value, ConnectionLostError)  # retrying would not help


async def test_a_session_fails_on_a_refused_certificate_without_retrying(engine: Engine) -> None:
    tls = Tls("127.0.0.1")
    accepted = 0

    async def count(stream: trio.abc.Stream) -> None:
        nonlocal accepted
        accepted += 1
        await _tls_echo(stream)

    with trio.fail_after(10):
        async with raw_server(count, tls=tls.server) as port:
            config = SessionConfig(
                model="gemini-2.0-flash-live-001",
                auth="AIza-test-key",
                base_url=f"wss://127.0.0.1:{port}",
                transport=TransportOptions(engine=engine, ssl_context=ssl.create_default_context()),
                retry=RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=1.0),
            )
            start = trio.current_time()
            with pytest.raises(CertificateError):
                async with open_session(config):
                    pass  # pragma: no cover
            assert trio.current_time() - start < 1.0  # no retry delay was waited
    assert accepted == 1


# ------------------------------------------------------------------ credentials echoed back


def _close_echoing_the_credential(sent: list[str]) -> Handler:
    """A server that reads the setup and closes with 1008, its reason quoting the request's
    ``authorization`` header (``sent`` gets each reason: the token really went back)."""

    async def handler(stream: trio.abc.Stream) -> None:
        response, request = await accept(stream)
        credential = request.headers.get("authorization", "")
        await stream.send_all(response)
        frames = ClientFrames(stream)
        await frames.next()  # the setup
        reason = f"Request had invalid authentication credentials: {credential}"
        sent.append(reason)
        await stream.send_all(server_frame(0x8, Close(1008, reason).serialize()))
        await frames.next()  # the client's answer to the close

    return handler


def _everything_shown(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), str(getattr(exc, "reason", "")), *traceback.format_exception(exc)])


async def test_an_echoed_bearer_token_is_redacted_by_the_connection(engine: Engine) -> None:
    sent: list[str] = []
    with trio.fail_after(10):
        async with raw_server(_close_echoing_the_credential(sent)) as port:
            async with open_connection(
                f"ws://127.0.0.1:{port}/x",
                [("authorization", f"Bearer {TOKEN}")],
                options=TransportOptions(engine=engine),
            ) as conn:
                await conn.send(b"{}")
                with pytest.raises(AuthError) as refused:
                    await conn.receive()
                info = conn.close_info
    assert sent and TOKEN in sent[0]
    assert info is not None and info.code == 1008
    assert TOKEN not in repr(info) and "<redacted>" in info.reason
    shown = _everything_shown(refused.value)
    assert TOKEN not in shown and "<redacted>" in shown


async def test_a_vertex_session_never_shows_its_bearer_token(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    async def provider() -> str:
        return TOKEN

    auth = VertexAI(project="proj", location="us-central1", token_provider=provider)
    caplog.set_level(logging.DEBUG)
    sent: list[str] = []
    with trio.fail_after(10):
        async with raw_server(_close_echoing_the_credential(sent)) as port:
            config = SessionConfig(
                model="gemini-live-2.5-flash",
                auth=auth,
                base_url=f"ws://127.0.0.1:{port}",
                transport=TransportOptions(engine=engine),
                rotation=RotationPolicy(timer=False),
            )
            with pytest.raises(SessionError) as failed:
                async with open_session(config):
                    pass  # pragma: no cover
    assert isinstance(failed.value, LivemeshError)
    assert sent and TOKEN in sent[0]
    shown = _everything_shown(failed.value)
    assert TOKEN not in shown
    ours = [r for r in caplog.records if r.name.startswith(("livemesh", "trio-websocket", "trio_websocket"))]
    assert ours and not any(TOKEN in r.getMessage() for r in ours)  # (the test's server logs it)
    assert any("session failed" in r.getMessage() for r in ours)
    assert TOKEN in secrets_of(auth)  # what the session redacts with, Vertex included
