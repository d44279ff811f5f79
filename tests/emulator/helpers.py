"""A tiny raw client for emulator tests: trio-websocket plus the livemesh codec, nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from livemesh import wire
from livemesh.emulator import Emulator

GEMINI = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
CONSTRAINED = "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
VERTEX = "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
MODEL = "models/gemini-live-2.5-flash-preview"


def text_setup(**fields: Any) -> wire.Setup:
    fields.setdefault("model", MODEL)
    fields.setdefault("generation_config", wire.GenerationConfig(response_modalities=["TEXT"]))
    return wire.Setup(**fields)


class Client:
    """One raw Live connection: send messages, read decoded server messages, see the close."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, message: wire.ClientMessage) -> None:
        await self.ws.send_message(wire.encode_client(message).decode())

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send_message(data)

    async def recv(self) -> wire.ServerMessage:
        return wire.decode_server(await self.ws.get_message())

    async def say(self, text: str, *, realtime: bool = False) -> None:
        if realtime:
            await self.send(wire.ClientMessage(realtime_input=wire.RealtimeInput(text=text)))
            return
        content = wire.Content(parts=[wire.Part(text=text)], role="user")
        await self.send(
            wire.ClientMessage(client_content=wire.ClientContent(turns=[content], turn_complete=True))
        )

    async def audio(self, pcm: bytes, rate: int = 16_000) -> None:
        blob = wire.Blob(data=pcm, mime_type=f"audio/pcm;rate={rate}")
        await self.send(wire.ClientMessage(realtime_input=wire.RealtimeInput(audio=blob)))

    async def until(self, kind: str) -> tuple[list[wire.ServerMessage], wire.ServerMessage]:
        """Read until a message of ``kind`` (a ServerMessage.kind or "turn_complete")."""
        seen: list[wire.ServerMessage] = []
        while True:
            message = await self.recv()
            if kind == "turn_complete":
                if message.server_content is not None and message.server_content.turn_complete:
                    return seen, message
            elif message.kind == kind:
                return seen, message
            seen.append(message)

    async def turn_text(self) -> tuple[str, list[wire.ServerMessage]]:
        """The text of the model turn up to turnComplete, and every message read on the way."""
        seen, last = await self.until("turn_complete")
        seen.append(last)
        parts = [
            p.text
            for m in seen
            if m.server_content is not None and m.server_content.model_turn is not None
            for p in m.server_content.model_turn.parts or []
            if p.text
        ]
        return "".join(parts), seen

    async def ask(self, text: str, *, realtime: bool = False) -> str:
        await self.say(text, realtime=realtime)
        reply, _ = await self.turn_text()
        return reply

    async def ask_json(self, text: str) -> Any:
        return json.loads(await self.ask(text))

    async def closed(self) -> tuple[int, str]:
        """Drain until the server closes; the close code and reason."""
        try:
            while True:
                await self.ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason.code, exc.reason.reason or ""


@asynccontextmanager
async def connect(
    emu: Emulator,
    setup: wire.Setup | None = None,
    *,
    path: str = GEMINI,
    query: str = "?key=test-key",
    headers: list[tuple[str, str]] | None = None,
    expect_setup_complete: bool = True,
) -> AsyncIterator[Client]:
    """Open a connection and send ``setup`` (answered by setupComplete unless told otherwise)."""
    url = emu.url + path + query
    async with open_websocket_url(url, extra_headers=headers or [], message_queue_size=1024) as ws:
        client = Client(ws)
        if setup is not None:
            await client.send(wire.ClientMessage(setup=setup))
            if expect_setup_complete:
                first = await client.recv()
                assert first.setup_complete is not None, first
                client.session_id = first.setup_complete.session_id  # type: ignore[attr-defined]
        yield client


def session_of(client: Client) -> str:
    return client.session_id  # type: ignore[attr-defined,no-any-return]


async def sleep_until_closed(client: Client) -> tuple[int, str]:
    """The close code and reason, bounded by 5 s."""
    with trio.fail_after(5):
        return await client.closed()
