"""A drop right after a tool-call turn: the next ``ask()`` gets its whole answer.

Reported against the earlier actor: after ``emu.drop()`` right behind a turn with a function call,
the next ``ask()`` sometimes returned ``""`` (the replayed turn interrupted, or its answer lost).
The turn that called the tool is complete and answered; its handle may not have arrived before
the drop, so the session replays what that handle did not cover, and the next turn must be
answered exactly once, with text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from livemesh.emulator.app import Emulator
from livemesh.session import open_session
from livemesh.transport import Engine, TransportOptions
from tests.session.conftest import make_config


def get_stock_price(symbol: str) -> dict[str, Any]:
    """Get the current stock price.

    Args:
        symbol: The ticker, e.g. AAPL.
    """
    return {"price": 178.50, "symbol": symbol}


@pytest.mark.parametrize("vertex", [False, True], ids=["gemini", "vertex"])
@pytest.mark.parametrize("settle", ["at-once", "settled"])
async def test_ask_after_a_drop_behind_a_tool_call_turn_is_answered(
    emu: Emulator, engine: Engine, vertex: bool, settle: str
) -> None:
    config = make_config(
        emu, vertex=vertex, tools=[get_stock_price], transport=TransportOptions(engine=engine)
    )
    with trio.fail_after(20):
        async with open_session(config) as session:
            for round_ in range(3):
                turn_text = await session.ask(f'call get_stock_price {{"symbol": "S{round_}"}}')
                assert turn_text.startswith("get_stock_price returned")
                if settle == "settled":
                    await trio.testing.wait_all_tasks_blocked()
                await emu.drop()
                answer = await session.ask(f"hello {round_}")
                assert answer != "", f"round {round_}: the turn after the drop got no text"
            context = json.loads(await session.ask("recall"))
    # Every user turn is in the context exactly once (nothing doubled by the replays).
    assert len(context) == len(set(context))
    for round_ in range(3):
        assert context.count(f"hello {round_}") == 1
    assert session.statistics().drops == 3
