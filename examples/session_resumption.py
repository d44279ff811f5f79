"""A conversation that outlives its connections (the seed's ``13_live_session_resumption``).

    python examples/session_resumption.py           # against an in-process emulator
    python examples/session_resumption.py --real    # against the Gemini Live API (GEMINI_API_KEY)

The service closes every connection after about 10 minutes, and networks drop. A resumption
handle names the conversation's server-side context; reconnecting with it continues the same
conversation without re-sending history. livemesh does this in two ways:

1. Inside one session, on its own: ``session.rotate()`` (what a ``goAway`` or the connection-age
   timer triggers) and an abrupt drop both move the session to a new connection with the newest
   handle; anything sent meanwhile is held and delivered, ``async for`` never notices.
2. Across processes: keep ``session.resume_handle`` (or save each one from the
   ``on_session_resumption`` callback, as the seed does) and open a new session with
   ``resume_handle=...``. The service keeps a handle valid for 2 hours after the last connection.

The proof: the emulator's scripted model answers ``recall`` with the user turns its context holds;
against the real service the example asks "What is my name?".
"""

from __future__ import annotations

import trio
from _target import Target, live_target, parser

import livemesh

INTRODUCTION = "My name is Alice."


async def check_memory(session: livemesh.Session, target: Target) -> str:
    question = "What is my name? Answer in five words or fewer." if target.real else "recall"
    answer = await session.ask(question)
    print(f"> {question}\n{answer}")
    return answer


async def main(real: bool) -> None:
    async with live_target(real, "text") as target:
        options = {**target.options, "response_modalities": ["TEXT"]}
        handles: list[str] = []

        def on_session_resumption(update: livemesh.wire.SessionResumptionUpdate) -> None:
            if update.resumable and update.new_handle:
                handles.append(update.new_handle)  # a real app would write it to a database

        async with livemesh.open_session(**options, on_session_resumption=on_session_resumption) as session:
            print(f"> {INTRODUCTION}\n{await session.ask(INTRODUCTION)}")

            await session.rotate()
            print(f"-- planned move (rotate): connections={session.statistics().connections}")
            if target.emulator is not None:
                await target.emulator.drop()  # no close frame: the client sees 1006
                print("-- the emulator dropped the connection abruptly")
            await check_memory(session, target)
            metrics = session.statistics()
            print(f"-- connections={metrics.connections} rotations={metrics.rotations} drops={metrics.drops}")
        handle = session.resume_handle  # the newest resumable handle, kept after the close
        assert handle is not None and handle == handles[-1]
        print(f"-- session closed; kept its newest handle ({len(handles)} received)")

        async with livemesh.open_session(**options, resume_handle=handle) as resumed:
            print("-- a new session, resumed from the handle")
            await check_memory(resumed, target)


if __name__ == "__main__":
    trio.run(main, parser(__doc__).parse_args().real)
