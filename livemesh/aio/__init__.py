"""livemesh for asyncio applications (FastAPI/Starlette backends, telephony bridges, ...).

The same sessions and pools as the trio API, with the same arguments, results and exceptions,
awaited from asyncio code::

    async with livemesh.aio.open_pool(max_sessions=100) as pool:
        async with pool.session(model=..., response_modalities=["AUDIO"]) as session:
            await session.send_realtime_input(audio=pcm)
            async for message in session:
                ...

:func:`open_session`, :func:`open_pool` (``pool.session``, ``pool.start`` with an asyncio
handler), :class:`Session` (``send_*``, ``receive``, ``async for``, ``receive_turn``, ``ask``,
``rotate``, ``wait_moved``, ``statistics``, ``aclose``), the REST calls
(:func:`create_ephemeral_token`, :func:`resolve_model`, :func:`list_live_models`), the emulator
for tests (:func:`open_emulator`), and any trio code (:func:`run_trio`, :func:`trio_block`).

How it runs: livemesh's trio code runs as trio's *guest* on the asyncio loop
(``trio.lowlevel.start_guest_run``): its tasks run on the loop's thread, only trio's waits for
I/O move to a helper thread. Sending is a call into that run; receiving costs no crossing (each
session's messages are moved into an asyncio queue as they arrive). ``bench/aio_overhead.py``
measures the difference to native trio.

Pitfalls:

* **One guest run per loop.** Trio allows one guest run per host loop, so every
  ``livemesh.aio`` block on a loop shares one: the first block starts it, the last one to exit
  ends it. Do not start another trio guest run on the same loop; run your own trio code in this
  one with :func:`run_trio` and :func:`trio_block`. Each thread's loop has its own run.
* **Stop before the loop stops.** The trio run must end before the loop closes. Use the blocks
  as ``async with`` inside the loop's lifetime (in a web app: in its lifespan, not at import
  time or in ``atexit``); exiting the last block waits until the trio run has ended. A block left
  open when the loop closes leaves trio mid-run.
* **Signals belong to asyncio.** The guest run never takes ``signal.set_wakeup_fd`` and trio's
  signal handling is not used: Ctrl-C is asyncio's (``asyncio.run`` cancels the main task,
  uvicorn shuts down gracefully), and the livemesh blocks unwind with it, closing their
  sessions. Only on a loop without Ctrl-C handling of its own (default ``SIGINT`` handler) does
  trio install its handler; its ``KeyboardInterrupt`` then ends the trio run and stops the loop.
* **Blocking calls stall both.** Trio's tasks share the loop's thread: a blocking call in
  asyncio code (``time.sleep``, a synchronous HTTP client, a long computation) stalls every
  session's keepalives, audio and moves, and the reverse. Plain tools run in a worker thread;
  plain callbacks run on the loop's thread and must return quickly; move blocking work to
  ``asyncio.to_thread``.
* **Every ``async def`` you pass is asyncio code.** Tools, callbacks, ``on_handle``, handle
  stores and ``pool.start`` handlers written as ``async def`` run as asyncio tasks on the loop,
  in a copy of the context where the session or pool was opened (so context variables set
  there are visible). ``on_session_error`` is called synchronously: pass a plain function.
* **Cancellation crosses both ways.** Cancelling an asyncio task that waits in a
  ``livemesh.aio`` call cancels the trio work and waits for it; cancelling a receive cancels
  only that wait (the message stays queued). A send that had already returned in trio when the
  cancellation arrived stays sent. When a session fails, a receive raises its error, and a
  block of :func:`open_session` that is busy elsewhere is cancelled and raises it.
* **Trio objects from asyncio.** While a block is open, asyncio code may call trio's
  synchronous functions (trio documents this for guest mode: ``trio.current_time()``,
  ``emu.stats()``); trio coroutines must go through :func:`run_trio`. An ``httpx.AsyncClient``
  passed to a REST call is used from trio: do not share it with asyncio code.
"""

from livemesh.aio.bridge import open_emulator as open_emulator
from livemesh.aio.bridge import run_trio as run_trio
from livemesh.aio.bridge import trio_block as trio_block
from livemesh.aio.guest import GuestRunError as GuestRunError
from livemesh.aio.pool import Handler as Handler
from livemesh.aio.pool import Pool as Pool
from livemesh.aio.pool import Supervised as Supervised
from livemesh.aio.pool import open_pool as open_pool
from livemesh.aio.rest import create_ephemeral_token as create_ephemeral_token
from livemesh.aio.rest import list_live_models as list_live_models
from livemesh.aio.rest import resolve_model as resolve_model
from livemesh.aio.session import Session as Session
from livemesh.aio.session import open_session as open_session
