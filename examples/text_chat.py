"""Multi-turn text chat with streamed replies (the seed's ``11_live_text_chat``).

    python examples/text_chat.py            # against an in-process emulator
    python examples/text_chat.py --real     # against the Gemini Live API (GEMINI_API_KEY)

The seed prints replies from an ``on_message`` callback and sleeps five seconds hoping the answer
is done. Here the reply is read with ``async for`` and the loop stops at ``turnComplete``, so the
program waits exactly as long as the model talks and not a millisecond longer. Leaving the
``async with`` block flushes anything queued and closes the WebSocket with a close frame.
"""

from __future__ import annotations

import trio
from _target import live_target, parser

import livemesh
from livemesh.wire import helpers

QUESTIONS = ["What is machine learning?", "Give me one everyday example of it, in one sentence."]


async def stream_reply(session: livemesh.Session) -> str:
    """Print the model's text as it arrives; return the whole reply at ``turnComplete``."""
    pieces: list[str] = []
    async for message in session:
        text = helpers.extract_text(message)
        if text:
            pieces.append(text)
            print(text, end="", flush=True)
        if message.server_content is not None and message.server_content.turn_complete:
            print()
            break
    return "".join(pieces)


async def main(real: bool) -> None:
    async with live_target(real, "text") as target:
        print(f"model: {target.options['model']}")
        async with livemesh.open_session(
            **target.options,
            response_modalities=["TEXT"],
            system_instruction="You are a helpful assistant. Answer briefly.",
        ) as session:
            for question in QUESTIONS:
                print(f"> {question}")
                await session.send_client_content(question)
                await stream_reply(session)
            if target.emulator is not None:
                # The emulator's scripted model answers "recall" with the user turns it holds:
                # both questions are in the one conversation's context.
                print(f"> recall\n{await session.ask('recall')}")
            print(f"turns: {session.statistics().turns}")


if __name__ == "__main__":
    trio.run(main, parser(__doc__).parse_args().real)
