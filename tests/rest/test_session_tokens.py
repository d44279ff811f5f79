"""Ephemeral tokens and the resolver end to end through the session actor (``open_session``)."""

from __future__ import annotations

import pytest
import trio

from livemesh.auth import ApiKey
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.errors import AuthError
from livemesh.rest import ModelResolver, create_ephemeral_token
from livemesh.session.opening import open_session

SENTINEL = "SENTINEL-KEY-9f3a1c"
KEY = ApiKey(SENTINEL)


async def test_a_browser_style_session_on_a_backend_minted_token() -> None:
    with trio.fail_after(20):
        async with open_emulator(EmulatorConfig()) as emu:
            model = await ModelResolver(base_url=emu.http_url).resolve("text", KEY)
            token = await create_ephemeral_token(KEY, uses=1, base_url=emu.http_url)
            options = {
                "model": model,
                "auth": token.name,
                "base_url": emu.url,
                "response_modalities": ["TEXT"],
            }
            async with open_session(**options) as session:
                assert await session.ask("hello") == "You said: hello"
            # The token's one use is spent: a second session is refused as an auth failure.
            with pytest.raises(AuthError) as info:
                async with open_session(**options) as session:
                    await session.ask("again")
    assert info.value.code == 1008
    for text in (str(info.value), repr(info.value)):
        assert token.name not in text and SENTINEL not in text


async def test_a_one_use_token_survives_rotations_because_resuming_is_not_a_use() -> None:
    """A ``uses=1`` token must not block the session's own reconnects (resumption), or every
    goAway would end a browser's session (reported against other clients)."""
    # Fresh handles every 0.1 s: a rotation waits for a handle newer than its hold (issue 4).
    with trio.fail_after(20):
        async with open_emulator(EmulatorConfig(resumption_update_interval_s=0.1)) as emu:
            token = await create_ephemeral_token(KEY, uses=1, base_url=emu.http_url)
            options = {
                "model": "gemini-2.0-flash-exp",
                "auth": token,
                "base_url": emu.url,
                "response_modalities": ["TEXT"],
                "session_resumption": {},
            }
            async with open_session(**options) as session:
                assert await session.ask("my name is Alice") == "You said: my name is Alice"
                await session.rotate()
                await session.rotate()
                assert "my name is Alice" in await session.ask("recall")
                stats = session.statistics()
                assert (stats.connections, stats.rotations) == (3, 2)
