"""The asyncio examples given for README.md ("Quickstart", "With asyncio"), run verbatim."""

from __future__ import annotations

import pytest

from livemesh.aio import guest

QUICKSTART = """
import asyncio
import livemesh.aio


async def main() -> None:
    async with livemesh.aio.open_emulator() as emu:  # a local Live API, in this process
        async with livemesh.aio.open_session(
            model="gemini-live-2.5-flash-preview", auth="any-key", base_url=emu.url,
            response_modalities=["TEXT"],
        ) as session:
            print(await session.ask("My name is Alice."))  # You said: My name is Alice.
            await livemesh.aio.run_trio(emu.drop)  # the network fails; the session resumes by itself
            print(await session.ask("recall"))  # ["My name is Alice."]

asyncio.run(main())
"""


def test_the_asyncio_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(QUICKSTART.strip().splitlines()) <= 15  # as the trio one
    exec(compile(QUICKSTART, "quickstart", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out.splitlines() == ["You said: My name is Alice.", '["My name is Alice."]']
    assert guest._RUNS == {}


POOL_AND_TOOLS = '''
import asyncio

import livemesh.aio
from livemesh.emulator import EmulatorConfig


async def get_weather(city: str) -> dict[str, str]:
    """The weather in a city."""
    await asyncio.sleep(0.01)  # an asyncio tool: it runs on your loop, as an asyncio task
    return {"city": city, "sky": "sunny"}


async def conversation(pool: livemesh.aio.Pool, url: str, n: int) -> str:
    async with pool.session(
        model="gemini-live-2.5-flash-preview", auth="any-key", base_url=url,
        response_modalities=["TEXT"], tools=[get_weather],
    ) as session:
        await session.ask(f"I am caller {n}.")
        return await session.ask('call get_weather {"city": "Paris"}')


async def main() -> None:
    async with livemesh.aio.open_emulator(EmulatorConfig()) as emu:  # a local Live API, in this process
        async with livemesh.aio.open_pool(max_sessions=3) as pool:  # 9 callers, 3 at a time
            answers = await asyncio.gather(*(conversation(pool, emu.url, n) for n in range(9)))
            print(answers[0])  # get_weather returned {"city": "Paris", "sky": "sunny"}
            print(pool.metrics().started, "sessions")  # 9 sessions

asyncio.run(main())
'''


def test_the_pool_and_tools_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(POOL_AND_TOOLS, "pool and tools", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out.splitlines()
    assert printed == ['get_weather returned {"city": "Paris", "sky": "sunny"}', "9 sessions"]
