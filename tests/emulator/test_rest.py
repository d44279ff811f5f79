"""REST on the Live port: model listing and ephemeral tokens, with enforcement on connect."""

from __future__ import annotations

import datetime

import httpx
import trio

from livemesh import wire
from livemesh.emulator import EmulatorConfig, open_emulator
from tests.emulator.helpers import CONSTRAINED, MODEL, connect, session_of, sleep_until_closed, text_setup

KEY = {"x-goog-api-key": "k"}


def iso(delta_s: float) -> str:
    return (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta_s)).isoformat()


async def test_models_list_and_get() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, httpx.AsyncClient(base_url=emu.http_url) as http:
            for version in ("v1", "v1beta", "v1alpha"):
                reply = await http.get(f"/{version}/models", headers=KEY)
                assert reply.status_code == 200
                names = {m["name"]: m["supportedGenerationMethods"] for m in reply.json()["models"]}
                assert "bidiGenerateContent" in names[MODEL]
            assert (await http.get(f"/v1beta/{MODEL}", headers=KEY)).json()["name"] == MODEL
            assert (await http.get("/v1beta/models/nope", headers=KEY)).status_code == 404
            assert (await http.get("/v1beta/models")).status_code == 403
            assert (await http.get("/v1beta/elsewhere", headers=KEY)).status_code == 404


async def test_bad_key_has_error_info() -> None:
    with trio.fail_after(5):
        async with open_emulator(EmulatorConfig(api_keys=frozenset({"good"}))) as emu:
            async with httpx.AsyncClient(base_url=emu.http_url) as http:
                reply = await http.get("/v1beta/models", params={"key": "bad"})
                error = reply.json()["error"]
                assert reply.status_code == 400 and error["status"] == "INVALID_ARGUMENT"
                assert error["details"][0]["reason"] == "API_KEY_INVALID"


async def token(http: httpx.AsyncClient, **body: object) -> str:
    reply = await http.post("/v1alpha/auth_tokens", headers=KEY, json=body)
    assert reply.status_code == 200, reply.text
    name: str = reply.json()["name"]
    assert name.startswith("auth_tokens/")
    return name


async def test_token_uses_and_resume_is_not_a_use() -> None:
    resume = wire.SessionResumptionConfig()
    with trio.fail_after(5):
        async with open_emulator() as emu, httpx.AsyncClient(base_url=emu.http_url) as http:
            name = await token(http, uses=1)
            auth = [("Authorization", f"Token {name}")]
            async with connect(
                emu, text_setup(session_resumption=resume), path=CONSTRAINED, query="", headers=auth
            ) as c:
                _, update = await c.until("session_resumption_update")
                assert update.session_resumption_update is not None
                handle = update.session_resumption_update.new_handle
                sid = session_of(c)
            again = text_setup(session_resumption=wire.SessionResumptionConfig(handle=handle))
            async with connect(emu, again, path=CONSTRAINED, query=f"?access_token={name}") as c:
                assert session_of(c) == sid
            async with connect(
                emu, text_setup(), path=CONSTRAINED, query="", headers=auth, expect_setup_complete=False
            ) as c:
                assert await sleep_until_closed(c) == (
                    1008,
                    "Request had invalid authentication credentials.",
                )


async def test_token_expiry_and_new_session_expiry() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, httpx.AsyncClient(base_url=emu.http_url) as http:
            expired = await token(http, expireTime=iso(-1))
            late = await token(http, newSessionExpireTime=iso(-1))
            for name in (expired, late):
                async with connect(
                    emu,
                    text_setup(),
                    path=CONSTRAINED,
                    query=f"?access_token={name}",
                    expect_setup_complete=False,
                ) as c:
                    assert (await sleep_until_closed(c))[0] == 1008
            assert (
                await http.post("/v1alpha/auth_tokens", headers=KEY, json={"uses": -1})
            ).status_code == 400
            assert (await http.post("/v1alpha/auth_tokens", headers=KEY, content=b"[")).status_code == 400
            unlimited = await token(http, uses=0)
            for _ in range(3):
                async with connect(emu, text_setup(), path=CONSTRAINED, query=f"?access_token={unlimited}"):
                    pass


async def test_locked_setup_overrides_client_setup() -> None:
    locked = {
        "model": MODEL,
        "generationConfig": {"responseModalities": ["TEXT"]},
        "systemInstruction": {"parts": [{"text": "x"}]},
    }
    with trio.fail_after(5):
        async with open_emulator() as emu, httpx.AsyncClient(base_url=emu.http_url) as http:
            name = await token(http, bidiGenerateContentSetup=locked)
            setup = wire.Setup(
                model="models/gemini-2.0-flash-live-001",
                generation_config=wire.GenerationConfig(response_modalities=["AUDIO"]),
            )
            async with connect(emu, setup, path=CONSTRAINED, query=f"?access_token={name}") as c:
                assert await c.ask("locked") == "You said: locked"  # TEXT, as the token says


async def test_broken_upgrade_gets_400() -> None:
    with trio.fail_after(5):
        async with open_emulator() as emu, httpx.AsyncClient(base_url=emu.http_url) as http:
            reply = await http.get(CONSTRAINED, headers={"upgrade": "websocket", "connection": "upgrade"})
            assert reply.status_code == 400
