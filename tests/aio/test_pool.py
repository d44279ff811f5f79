"""livemesh.aio pools: lent sessions, supervised asyncio handlers, asyncio handle stores."""

from __future__ import annotations

import asyncio
import json

import pytest

import livemesh
import livemesh.aio
from livemesh.emulator import EmulatorConfig
from tests.aio.helpers import run, text_options


def test_lent_sessions_queue_for_the_pools_slots() -> None:
    limits = livemesh.ServiceLimits(concurrent_sessions=2)

    async def main() -> None:
        async with livemesh.aio.open_emulator(EmulatorConfig(limits=limits)) as emu:
            async with livemesh.aio.open_pool(limits=limits) as pool:
                peak = 0

                async def caller(n: int) -> list[str]:
                    nonlocal peak
                    async with pool.session(**text_options(emu.url)) as session:
                        peak = max(peak, pool.metrics().active)
                        await session.ask(f"caller {n}")
                        return list(json.loads(await session.ask("recall")))

                recalls = await asyncio.gather(*(caller(n) for n in range(5)))
                assert recalls == [[f"caller {n}"] for n in range(5)]
                assert peak <= 2 and pool.metrics().started == 5

    run(main)


def test_a_supervised_asyncio_handler_is_restarted_on_a_fresh_session() -> None:
    """The handler's own exception crosses into the pool's supervision, which restarts it."""

    class HandlerBug(Exception):
        pass

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            failures: list[livemesh.SessionFailure] = []
            async with livemesh.aio.open_pool(on_session_error=failures.append) as pool:
                sessions: list[livemesh.aio.Session] = []
                answers: list[str] = []
                second = asyncio.Event()

                async def handler(session: livemesh.aio.Session) -> None:
                    assert asyncio.current_task() is not None  # an asyncio task
                    sessions.append(session)
                    answers.append(await session.ask(f"incarnation {len(answers)}"))
                    if len(answers) == 1:
                        raise HandlerBug("first incarnation fails")
                    second.set()
                    await asyncio.Event().wait()  # until cancelled by supervised.cancel()

                supervised = await pool.start(text_options(emu.url), handler)
                await second.wait()
                assert supervised.restarts == 1 and supervised.session is sessions[1]
                supervised.cancel()
                await supervised.wait()
                assert supervised.state == "ended" and supervised.session is None
            assert answers == ["You said: incarnation 0", "You said: incarnation 1"]
            assert sessions[0].state == "closed" and sessions[1].state == "closed"
            assert [type(f.error) for f in failures] == [HandlerBug]

    run(main)


def test_a_handler_whose_session_failed_unseen_is_reported_as_failed() -> None:
    """The pump consumes the session's failure; the pool must still learn of it (as under trio,
    where the error nobody received leaves the session's block)."""

    async def main() -> None:
        async with livemesh.aio.open_emulator() as emu:
            failures: list[livemesh.SessionFailure] = []
            async with livemesh.aio.open_pool(on_session_error=failures.append) as pool:
                cancelled = asyncio.Event()
                running = asyncio.Event()

                async def handler(session: livemesh.aio.Session) -> None:
                    running.set()
                    try:
                        await asyncio.Event().wait()  # busy elsewhere, never receives
                    except asyncio.CancelledError:
                        cancelled.set()
                        raise

                supervised = await pool.start(
                    text_options(emu.url),
                    handler,
                    restart=livemesh.RestartPolicy(restart=livemesh.Restart.TEMPORARY),
                )
                await running.wait()
                await livemesh.aio.run_trio(emu.drop, close_code=1008)
                await supervised.wait()
                assert cancelled.is_set()
                assert isinstance(supervised.error, livemesh.ServiceClosedError)
            assert [type(f.error) for f in failures] == [livemesh.ServiceClosedError]

    run(main)


class AsyncioStore:
    """A handle store written for asyncio (as one on an asyncio database client would be)."""

    def __init__(self) -> None:
        self.saved: dict[str, livemesh.StoredHandle] = {}
        self.loops: set[object] = set()

    async def save(self, conversation_id: str, handle: livemesh.StoredHandle) -> bool:
        await asyncio.sleep(0)
        self.loops.add(asyncio.get_running_loop())
        old = self.saved.get(conversation_id)
        if old is not None and old.seq > handle.seq:
            return False
        self.saved[conversation_id] = handle
        return True

    async def load(self, conversation_id: str) -> livemesh.StoredHandle | None:
        await asyncio.sleep(0)
        return self.saved.get(conversation_id)

    async def delete(self, conversation_id: str) -> None:
        await asyncio.sleep(0)
        self.saved.pop(conversation_id, None)


def test_an_asyncio_handle_store_runs_on_the_loop() -> None:
    async def main() -> None:
        store = AsyncioStore()
        async with livemesh.aio.open_emulator() as emu:
            async with livemesh.aio.open_pool(handle_store=store) as pool:
                async with pool.session(**text_options(emu.url), conversation_id="c-1") as session:
                    await session.ask("hello")
        assert store.loops == {asyncio.get_running_loop()}
        assert "c-1" in store.saved

    run(main)


def test_bad_pool_arguments_fail_at_the_call() -> None:
    async def on_error(failure: object) -> None:
        pass

    async def main() -> None:
        with pytest.raises(livemesh.ConfigError):
            livemesh.aio.open_pool(on_session_error=on_error)
        with pytest.raises(livemesh.ConfigError):
            livemesh.aio.open_pool(handle_store=object())
        with pytest.raises(TypeError):
            livemesh.aio.open_pool(no_such_option=1)
        async with livemesh.aio.open_emulator() as emu, livemesh.aio.open_pool() as pool:
            with pytest.raises(livemesh.ConfigError):
                pool.session(**text_options(emu.url), temperature="hot")
            with pytest.raises(livemesh.ConfigError):
                await pool.start(text_options(emu.url), lambda session: None)  # type: ignore[arg-type,return-value]

    run(main)
