"""Tools the model calls, run and answered by the session, with telemetry (the seed's
``14_live_function_calling``).

    python examples/function_calling.py           # against an in-process emulator
    python examples/function_calling.py --real    # against the Gemini Live API (GEMINI_API_KEY)

The seed declares a JSON schema by hand and answers calls in an ``on_tool_call`` callback. Here
plain Python functions are the tools: the declaration comes from the signature and docstring, the
session runs each call (async functions in its nursery, sync ones in a worker thread) and sends
exactly one answer per call id: the return value, or ``{"error": ...}`` if the function raised,
so one bad call never leaves the model waiting forever. The session's metrics count the calls,
the errors and the time from call to answer.

The emulator's scripted model calls a declared tool when a user turn reads
``call NAME {json args}``; the real model decides for itself from the questions.
"""

from __future__ import annotations

import json

import trio
from _target import live_target, parser

import livemesh
from livemesh.wire import helpers

PRICES = {"AAPL": 178.50, "GOOG": 141.80}


async def get_stock_price(symbol: str) -> dict[str, object]:
    """Get the current stock price for a ticker symbol such as AAPL."""
    await trio.sleep(0.05)  # a quote service's latency
    return {"symbol": symbol, "price": PRICES[symbol.upper()], "currency": "USD"}


def convert_currency(amount: float, to: str) -> dict[str, object]:
    """Convert an amount of US dollars to another currency (EUR or GBP)."""
    rate = {"EUR": 0.92, "GBP": 0.79}[to.upper()]
    return {"amount": round(amount * rate, 2), "currency": to.upper()}


EMULATOR_PROMPTS = [
    'call get_stock_price {"symbol": "AAPL"}',
    'call convert_currency {"amount": 178.5, "to": "EUR"}',
    'call get_stock_price {"symbol": "NOPE"}',  # raises KeyError: answered with {"error": ...}
]
REAL_PROMPTS = [
    "What's Apple's stock price? Use the tool.",
    "Convert 178.50 US dollars to euros. Use the tool.",
    "What's the stock price of the ticker NOPE? Use the tool.",
]


async def run_turn(session: livemesh.Session, prompt: str) -> None:
    """Send one prompt; show tool calls as they arrive and the answer's text."""
    print(f"> {prompt}")
    await session.send_client_content(prompt)
    async for message in session:
        for call in message.tool_call.function_calls or [] if message.tool_call else []:
            print(f"  [tool] {call.name}({json.dumps(call.args)})")
        if text := helpers.extract_text(message):
            print(text, end="", flush=True)
        if message.server_content is not None and message.server_content.turn_complete:
            print()
            return


async def main(real: bool) -> None:
    async with live_target(real, "text") as target:
        async with livemesh.open_session(
            **target.options,
            response_modalities=["TEXT"],
            tools=[get_stock_price, convert_currency],
            tool_timeout=10.0,
        ) as session:
            for prompt in REAL_PROMPTS if real else EMULATOR_PROMPTS:
                await run_turn(session, prompt)
            m = session.statistics()
    print(
        f"telemetry: tool_calls={m.tool_calls} tool_errors={m.tool_errors} "
        f"tool_cancellations={m.tool_cancellations} "
        f"latency_mean={1000 * m.tool_latency_mean_s:.1f}ms latency_max={1000 * m.tool_latency_max_s:.1f}ms "
        f"turns={m.turns}"
    )


if __name__ == "__main__":
    trio.run(main, parser(__doc__).parse_args().real)
