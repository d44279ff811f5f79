"""URLs, headers and model names for every auth flavour, and the TLS rule."""

from __future__ import annotations

import pytest

from livemesh.auth import ApiKey, EphemeralToken, VertexAI
from livemesh.endpoints import (
    is_loopback_host,
    live_headers,
    live_url,
    model_name,
    rest_base_url,
    rest_headers,
)
from livemesh.errors import AuthError, ConfigError

KEY = ApiKey("SENTINEL-KEY-9f3a1c")
TOKEN = EphemeralToken("auth_tokens/SENTINEL-TOKEN")
GEMINI_WS = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage"


async def _bearer() -> str:
    return "ya29.bearer"


VERTEX = VertexAI(project="proj", location="europe-west4", token_provider=_bearer)


def test_api_key_urls() -> None:
    assert live_url(KEY) == f"{GEMINI_WS}.v1beta.GenerativeService.BidiGenerateContent"
    assert (
        live_url(KEY, api_version="v1alpha") == f"{GEMINI_WS}.v1alpha.GenerativeService.BidiGenerateContent"
    )
    assert live_url(KEY, api_version="v1") == f"{GEMINI_WS}.v1.GenerativeService.BidiGenerateContent"
    with pytest.raises(ConfigError, match="api_version"):
        live_url(KEY, api_version="v2")


def test_ephemeral_token_forces_v1alpha_constrained() -> None:
    expected = f"{GEMINI_WS}.v1alpha.GenerativeService.BidiGenerateContentConstrained"
    assert live_url(TOKEN) == expected
    assert live_url(TOKEN, api_version="v1beta") == expected


def test_vertex_urls() -> None:
    assert live_url(VERTEX) == (
        "wss://europe-west4-aiplatform.googleapis.com/ws/"
        "google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    )
    assert live_url(VERTEX, api_version="v1").endswith("aiplatform.v1.LlmBidiService/BidiGenerateContent")
    glob = VertexAI(project="proj", location="global", token_provider=_bearer)
    assert live_url(glob).startswith("wss://aiplatform.googleapis.com/ws/")
    assert rest_base_url(VERTEX) == "https://europe-west4-aiplatform.googleapis.com"
    with pytest.raises(ConfigError, match="Vertex"):
        live_url(VERTEX, api_version="v1beta")


@pytest.mark.parametrize(
    ("base", "ws", "http"),
    [
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://127.0.0.1:8765/", "ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("https://emu.example:443/prefix/", "wss://emu.example:443/prefix", "https://emu.example:443/prefix"),
        ("wss://emu.example", "wss://emu.example", "https://emu.example"),
        ("ws://localhost:1", "ws://localhost:1", "http://localhost:1"),
        ("ws://[::1]:9", "ws://[::1]:9", "http://[::1]:9"),
    ],
)
def test_base_url_override_keeps_the_path(base: str, ws: str, http: str) -> None:
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    assert live_url(KEY, base_url=base) == ws + path
    assert rest_base_url(KEY, base_url=base) == http


@pytest.mark.parametrize("base", ["ws://10.0.0.5:80", "http://example.com", "ws://127.example.com"])
def test_plain_text_only_to_loopback(base: str) -> None:
    with pytest.raises(ConfigError, match="allow_insecure"):
        live_url(KEY, base_url=base)
    with pytest.raises(ConfigError, match="allow_insecure"):
        rest_base_url(KEY, base_url=base)
    assert live_url(KEY, base_url=base, allow_insecure=True).startswith("ws://")


@pytest.mark.parametrize("base", ["ftp://127.0.0.1", "127.0.0.1:80", "ws://", "ws://h/?key=SENTINEL-KEY"])
def test_bad_base_urls(base: str) -> None:
    with pytest.raises(ConfigError) as info:
        live_url(KEY, base_url=base)
    assert "SENTINEL" not in str(info.value)


def test_is_loopback_host() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("127.5.5.5")
    assert is_loopback_host("[::1]") and is_loopback_host("LOCALHOST") and is_loopback_host("a.localhost")
    assert not is_loopback_host("10.0.0.1") and not is_loopback_host("localhost.evil.com")


async def test_headers() -> None:
    assert await live_headers(KEY) == [("x-goog-api-key", "SENTINEL-KEY-9f3a1c")]
    assert await live_headers(TOKEN) == [("authorization", "Token auth_tokens/SENTINEL-TOKEN")]
    assert await live_headers(EphemeralToken("bare")) == [("authorization", "Token auth_tokens/bare")]
    assert await live_headers(VERTEX) == [("authorization", "Bearer ya29.bearer")]
    assert await rest_headers(VERTEX) == [
        ("authorization", "Bearer ya29.bearer"),
        ("x-goog-user-project", "proj"),
    ]


async def test_token_provider_called_each_time() -> None:
    calls = []

    async def provider() -> str:
        calls.append(1)
        return f"tok{len(calls)}"

    vertex = VertexAI(project="p", token_provider=provider)
    assert await live_headers(vertex) == [("authorization", "Bearer tok1")]
    assert await live_headers(vertex) == [("authorization", "Bearer tok2")]


async def test_failing_token_provider_is_an_auth_error_without_its_text() -> None:
    async def broken() -> str:
        raise RuntimeError("refresh failed for secret SENTINEL-REFRESH")

    async def empty() -> str:
        return ""

    with pytest.raises(AuthError) as info:
        await live_headers(VertexAI(project="p", token_provider=broken))
    assert "SENTINEL" not in str(info.value) and "RuntimeError" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(AuthError, match="empty or malformed"):
        await live_headers(VertexAI(project="p", token_provider=empty))


def test_model_names() -> None:
    assert model_name(KEY, "gemini-2.0-flash-exp") == "models/gemini-2.0-flash-exp"
    assert model_name(TOKEN, "models/gemini-2.0-flash-exp") == "models/gemini-2.0-flash-exp"
    assert model_name(KEY, "tunedModels/x") == "tunedModels/x"
    full = "projects/proj/locations/europe-west4/publishers/google/models/gemini-live-2.5-flash"
    assert model_name(VERTEX, "gemini-live-2.5-flash") == full
    assert model_name(VERTEX, "models/gemini-live-2.5-flash") == full
    assert model_name(VERTEX, full) == full
    assert model_name(VERTEX, "publishers/other/models/m") == (
        "projects/proj/locations/europe-west4/publishers/other/models/m"
    )
    assert (
        model_name(VERTEX, "meta/llama")
        == "projects/proj/locations/europe-west4/publishers/meta/models/llama"
    )
    for bad in ("", "  ", "a b", "../x", "m?key=1", "a&b"):
        with pytest.raises(ConfigError):
            model_name(KEY, bad)
