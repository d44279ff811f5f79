"""livemesh.aio inside a running uvicorn server (Starlette): the pool opened by the app's
lifespan, sessions lent to request and WebSocket handlers, shut down with the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

import livemesh.aio
from livemesh.aio import guest
from tests.aio.helpers import run, text_options


def make_app(events: dict[str, asyncio.Event]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with livemesh.aio.open_emulator() as emu, livemesh.aio.open_pool(max_sessions=4) as pool:
            app.state.emu, app.state.pool = emu, pool
            yield
        events["shut down"].set()

    async def ask(request: Request) -> JSONResponse:
        pool: livemesh.aio.Pool = request.app.state.pool
        async with pool.session(**text_options(request.app.state.emu.url)) as session:
            answer = await session.ask(request.query_params["q"])
            return JSONResponse({"answer": answer, "loop_runs": guest.current_guest_run() is not None})

    async def chat(ws: WebSocket) -> None:
        """Each text frame is a user turn; the model's turns are streamed back as they come. A
        client that leaves cancels the wait in ``session.receive()`` and nothing else."""
        await ws.accept()
        pool: livemesh.aio.Pool = ws.app.state.pool
        async with pool.session(**text_options(ws.app.state.emu.url)) as session:

            async def downstream() -> None:
                try:
                    async for message in session:
                        if message.server_content is not None and message.server_content.turn_complete:
                            await ws.send_text(json.dumps({"turn_complete": True}))
                        elif text := livemesh.wire.helpers.extract_text(message):
                            await ws.send_text(json.dumps({"text": text}))
                except asyncio.CancelledError:
                    events["receive cancelled"].set()
                    raise

            async with asyncio.TaskGroup() as group:
                receiver = group.create_task(downstream())
                try:
                    while True:
                        await session.send_client_content(await ws.receive_text())
                except WebSocketDisconnect:
                    receiver.cancel()
            if session.state == "open":
                events["session still open"].set()

    return Starlette(routes=[Route("/ask", ask), WebSocketRoute("/chat", chat)], lifespan=lifespan)


def test_a_pool_in_a_uvicorn_server() -> None:
    async def main() -> None:
        names = ("shut down", "receive cancelled", "session still open")
        events = {name: asyncio.Event() for name in names}
        listener = socket.create_server(("127.0.0.1", 0))  # bound before serving: no wait for a port
        port = listener.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(make_app(events), lifespan="on", log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            replies = await asyncio.gather(*(client.get("/ask", params={"q": f"hi {n}"}) for n in range(6)))
            assert [r.json() for r in replies] == [
                {"answer": f"You said: hi {n}", "loop_runs": True} for n in range(6)
            ]
        async with websockets.connect(f"ws://127.0.0.1:{port}/chat") as ws:
            await ws.send("hello")
            frames = []
            while not frames or "turn_complete" not in frames[-1]:
                frames.append(json.loads(await ws.recv()))
            assert "".join(f.get("text", "") for f in frames) == "You said: hello"
        # leaving the WebSocket cancelled the handler's receive, and only that
        await events["receive cancelled"].wait()
        await events["session still open"].wait()
        server.should_exit = True
        await serving
        assert events["shut down"].is_set()
        assert guest.current_guest_run() is None  # the lifespan ended it with the server

    run(main)
