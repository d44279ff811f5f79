"""Talk to the model from a browser: an asyncio backend (Starlette on uvicorn) relaying a
microphone into pooled livemesh sessions, and the reply's voice back.

    python -m pip install -e '.[web]'
    python examples/web_voice.py               # then open http://127.0.0.1:8000
    python examples/web_voice.py --real        # the Gemini Live API (GEMINI_API_KEY)
    python examples/web_voice.py --port 0      # any free port (printed)

The page (``examples/web_voice/``, plain HTML and JS) captures the microphone; an AudioWorklet
turns it into 16 kHz 16-bit PCM, sent in 40 ms binary frames over a WebSocket (``/ws/voice``).
This backend relays each frame into a pooled session (``livemesh.aio``: livemesh's trio code
runs as a guest of uvicorn's asyncio loop) and streams the reply's 24 kHz PCM back as binary
frames, with JSON text frames for transcripts and for ``interrupted``, on which the page stops
playing at once (barge-in: speak over the model and it stops talking).

That is the seed's *server-to-server* approach (client app -> your backend -> Live API): the
API key stays here, and so do the pool's rotation, resumption and admission. The seed's
*client-to-server* alternative is here too: ``POST /api/token`` mints a one-use ephemeral token
(``livemesh.aio.create_ephemeral_token``) locked to this model and configuration, and the page's
"direct" mode opens the Live API WebSocket itself with it, so its audio no longer passes through
this backend. A real backend authenticates its user before minting one.

By default everything runs against the local emulator, served in this process's guest run
alongside the sessions (``livemesh.aio.open_emulator``): one process, one thread, no key. Its
"model" answers each utterance with a tone as long as the words "You said: [audio ...]" would
take to say.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

import livemesh
import livemesh.aio
from livemesh.emulator import Emulator, EmulatorConfig
from livemesh.endpoints import model_name
from livemesh.wire import helpers

STATIC = Path(__file__).resolve().parent / "web_voice"

# What every conversation asks for; also what an ephemeral token locks.
VOICE = {
    "response_modalities": ["AUDIO"],
    "speech_config": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}},
    "input_audio_transcription": True,
    "output_audio_transcription": True,
}

# The emulator's pace: a reply streams over ~2 s, in 20 chunks, like a model speaking.
DEMO_EMULATOR = EmulatorConfig(first_chunk_delay_s=0.05, chunk_interval_s=0.1, chunks_per_reply=20)


@attrs.define
class Backend:
    """What the request handlers share: the pool, where sessions connect, the emulator."""

    pool: livemesh.aio.Pool
    config: livemesh.SessionConfig
    auth: livemesh.ApiKey
    emulator: Emulator | None
    conversations: list[str] = attrs.Factory(list)
    """Server session ids of the conversations served so far (the tests read the emulator's
    stats of each)."""
    finished: asyncio.Event = attrs.Factory(asyncio.Event)
    """Set each time a conversation's session has closed (and cleared by whoever waits)."""


@contextlib.asynccontextmanager
async def open_backend(real: bool, emulator: EmulatorConfig = DEMO_EMULATOR) -> AsyncIterator[Backend]:
    """The pool, and the emulator unless ``real``, for the app's lifetime."""
    async with contextlib.AsyncExitStack() as stack:
        if real:
            key = os.environ.get("GEMINI_API_KEY")
            if not key:
                raise SystemExit("--real needs GEMINI_API_KEY in the environment")
            auth, base_url, emu = livemesh.ApiKey(key), None, None
        else:
            emu = await stack.enter_async_context(livemesh.aio.open_emulator(emulator))
            auth, base_url = livemesh.ApiKey("emulator-key"), emu.url  # any non-empty key
        model = await livemesh.aio.resolve_model("audio", auth, base_url=base_url)
        config = livemesh.SessionConfig.build(VOICE, model=model, auth=auth, base_url=base_url)
        pool = await stack.enter_async_context(livemesh.aio.open_pool(max_sessions=20))
        yield Backend(pool=pool, config=config, auth=auth, emulator=emu)


def create_app(real: bool = False, emulator: EmulatorConfig = DEMO_EMULATOR) -> Starlette:
    """The ASGI app: the page, its static files, the relay and the token endpoint."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_backend(real, emulator) as backend:
            app.state.backend = backend
            yield

    return Starlette(
        routes=[
            Route("/", page),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            WebSocketRoute("/ws/voice", voice),
            Route("/api/token", token, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


async def page(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html")


# ----------------------------------------------------------------------------- server-to-server


async def voice(ws: WebSocket) -> None:
    """One conversation: the page's microphone in, the model's voice out, until the page leaves."""
    backend: Backend = ws.app.state.backend
    await ws.accept()
    try:
        async with backend.pool.session(backend.config) as session:
            await ws.send_json({"type": "ready", "model": backend.config.model})
            try:
                async with asyncio.TaskGroup() as group:
                    replies = group.create_task(relay_replies(session, ws))
                    await relay_microphone(ws, session)  # returns when the page leaves
                    replies.cancel()  # cancels its wait in session.receive(), nothing else
            finally:
                if session.server_session_id:
                    backend.conversations.append(session.server_session_id)
    except WebSocketDisconnect:
        pass  # the page left while the session opened
    except livemesh.LivemeshError as exc:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.send_json({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
            await ws.close(1011)
    finally:
        backend.finished.set()


async def relay_microphone(ws: WebSocket, session: livemesh.aio.Session) -> None:
    """Binary frames are 16 kHz PCM; ``{"type": "stop"}`` means the microphone was turned off."""
    while True:
        frame = await ws.receive()
        if frame["type"] == "websocket.disconnect":
            return
        if frame.get("bytes") is not None:
            await session.send_realtime_input(audio=frame["bytes"])
        elif frame.get("text") and json.loads(frame["text"]).get("type") == "stop":
            await session.send_realtime_input(audio_stream_end=True)  # flush the last utterance


async def relay_replies(session: livemesh.aio.Session, ws: WebSocket) -> None:
    """The reply's 24 kHz PCM as binary frames; transcripts, ``interrupted`` and the end of each
    turn as JSON. Ends quietly if the page is gone."""
    with contextlib.suppress(WebSocketDisconnect):
        async for message in session:
            content = message.server_content
            if content is None:
                continue
            if content.interrupted:  # first: the page must stop what it is playing now
                await ws.send_json({"type": "interrupted"})
            for pcm in helpers.extract_audio(content):
                await ws.send_bytes(pcm)
            if heard := helpers.input_transcript(content):
                await ws.send_json({"type": "input_transcript", "text": heard})
            if spoken := helpers.output_transcript(content):
                await ws.send_json({"type": "output_transcript", "text": spoken})
            if content.turn_complete:
                await ws.send_json({"type": "turn_complete"})


# ----------------------------------------------------------------------------- client-to-server


async def token(request: Request) -> JSONResponse:
    """A one-use ephemeral token locked to this model and configuration, and where to use it.

    The page connects to ``url + "?access_token=" + token`` itself: the key never leaves this
    backend, and a token that leaks opens one session, of this configuration, within a minute.
    """
    backend: Backend = request.app.state.backend
    config = backend.config
    minted = await livemesh.aio.create_ephemeral_token(
        backend.auth,
        uses=1,
        expire_time=datetime.timedelta(minutes=30),
        new_session_expire_time=datetime.timedelta(minutes=1),
        constraints=livemesh.LiveConnectConstraints(
            model=config.model, setup=config.setup(backend.auth, handle=None)
        ),
        base_url=config.base_url,
    )
    return JSONResponse(
        {
            "token": minted.name,
            "url": config.url(livemesh.EphemeralToken(minted.name)),  # no credential in it
            "model": model_name(backend.auth, config.model),  # "models/NAME", for the page's setup
        },
        headers={"cache-control": "no-store"},
    )


# ----------------------------------------------------------------------------- running it


async def serve(host: str, port: int, real: bool) -> None:
    listener = socket.create_server((host, port))
    bound = listener.getsockname()
    server = uvicorn.Server(uvicorn.Config(create_app(real), lifespan="on", log_level="warning"))
    target = "the Gemini Live API" if real else "the emulator"
    print(f"serving on http://{bound[0]}:{bound[1]} ({target})", flush=True)
    await server.serve(sockets=[listener])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--real", action="store_true", help="the Gemini Live API (needs GEMINI_API_KEY)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.real))
    except KeyboardInterrupt:  # uvicorn shut down gracefully first, then re-raised Ctrl-C
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
