"""A hostile server in a pool: one ``toolCall`` with 100,000 function calls (a 5 MB frame).

The session it reaches fails with :class:`~livemesh.errors.ToolCallLimitError` naming the cap,
before it records or starts any call; a healthy session of the same pool keeps answering turns
meanwhile and after, and the pool opens new sessions as before. Progress is asserted by turns
answered, never by timing (``fail_after`` only bounds a hang).
"""

from __future__ import annotations

import trio

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.errors import ToolCallLimitError
from livemesh.pool import Restart, RestartPolicy, SessionFailure, open_pool
from livemesh.session import Session, SessionConfig, function_tool
from livemesh.testing import open_scripted_server

CALLS = 100_000


def _hostile_frame() -> bytes:
    calls = [wire.FunctionCall(id=f"c{i}", name="lookup", args={"n": i}) for i in range(CALLS)]
    return wire.encode_server(wire.ServerMessage(tool_call=wire.ToolCall(function_calls=calls)))


async def lookup(n: int) -> dict[str, int]:
    """A registered tool the hostile calls name (none of them may run)."""
    return {"n": n}


def _config(base_url: str) -> SessionConfig:
    return SessionConfig(
        model="gemini-2.0-flash-live-001",
        generation_config={"response_modalities": ["TEXT"]},
        auth=ApiKey("test-key"),
        base_url=base_url,
        tools=[function_tool(lookup)],
    )


async def test_a_huge_tool_call_fails_its_session_and_the_pool_keeps_serving() -> None:
    frame = _hostile_frame()
    assert len(frame) > 5_000_000
    answered_before = answered_after = 0
    victim_failed = trio.Event()
    victim_error: list[BaseException] = []
    async with (
        open_emulator(EmulatorConfig()) as emu,
        open_scripted_server([frame]) as hostile,
        open_pool(max_sessions=4) as pool,
    ):
        with trio.fail_after(120):  # bounds a hang; nothing here is judged by time
            async with pool.session(_config(emu.url)) as healthy:
                assert await healthy.ask("before") != ""

                async def victim() -> None:
                    try:
                        async with pool.session(_config(hostile.url)) as session:
                            async for _ in session:
                                pass
                    except ToolCallLimitError as exc:
                        victim_error.append(exc)
                    finally:
                        victim_failed.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(victim)
                    # The healthy session answers while the hostile frame is read and judged ...
                    while not victim_failed.is_set():
                        assert await healthy.ask(f"during {answered_before}") != ""
                        answered_before += 1
                # ... and after: its connection and the pool's supervision are untouched.
                for i in range(3):
                    assert await healthy.ask(f"after {i}") != ""
                    answered_after += 1
                assert healthy.error is None
            # The pool still opens sessions.
            async with pool.session(_config(emu.url)) as fresh:
                assert await fresh.ask("a new session") != ""
        snapshot = pool.metrics()
    assert victim_error, "the victim's session did not fail with ToolCallLimitError"
    error = victim_error[0]
    assert "max_calls_per_tool_call" in str(error) and f"{CALLS}" in str(error)
    assert answered_after == 3
    assert snapshot.active == 0 and snapshot.started == 3
    # No call of the hostile frame ran: nothing answered any of them.
    assert all(message.tool_response is None for message in hostile.connections[0].received)


async def test_the_pool_supervises_a_session_killed_by_a_huge_tool_call() -> None:
    """The same frame to a supervised session: the pool reports the typed failure to
    ``on_session_error``, counts it, and its other session goes on answering."""
    failures: list[SessionFailure] = []
    reported = trio.Event()

    def on_session_error(failure: SessionFailure) -> None:
        failures.append(failure)
        reported.set()

    async def drain(session: Session) -> None:
        async for _ in session:
            pass

    answered_after = 0
    async with (
        open_emulator(EmulatorConfig()) as emu,
        open_scripted_server([_hostile_frame()]) as hostile,
        open_pool(max_sessions=4, on_session_error=on_session_error) as pool,
    ):
        with trio.fail_after(120):  # bounds a hang; nothing here is judged by time
            async with pool.session(_config(emu.url)) as healthy:
                supervised = await pool.start(
                    _config(hostile.url), drain, restart=RestartPolicy(restart=Restart.TEMPORARY)
                )
                while not reported.is_set():
                    assert await healthy.ask("during") != ""
                await supervised.wait()
                for i in range(3):
                    assert await healthy.ask(f"after {i}") != ""
                    answered_after += 1
            snapshot = pool.metrics()
    assert len(failures) == 1 and isinstance(failures[0].error, ToolCallLimitError)
    assert "max_calls_per_tool_call" in str(failures[0].error)
    assert snapshot.failed == 1
    assert answered_after == 3
