"""Auth objects: construction, environment lookup, and that no secret leaks through repr/str/errors."""

from __future__ import annotations

import pickle

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from livemesh.auth import (
    CLOUD_PLATFORM_SCOPE,
    REDACTED,
    ApiKey,
    EphemeralToken,
    VertexAI,
    bearer_token,
    google_auth_token_provider,
    redact,
    resolve_auth,
    secrets_of,
)
from livemesh.endpoints import live_headers
from livemesh.errors import AuthError, ConfigError

SENTINEL = "SENTINEL-KEY-9f3a1c"


async def _token() -> str:
    return "ya29.SENTINEL-BEARER"


def test_api_key_repr_and_str_hide_the_key() -> None:
    key = ApiKey(SENTINEL)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"a": key})):
        assert SENTINEL not in text
        assert "f3a1" not in text  # not even a suffix
    assert repr(key) == "ApiKey(<redacted>)"
    assert key.key == SENTINEL


def test_ephemeral_token_repr_hides_the_name() -> None:
    token = EphemeralToken("auth_tokens/" + SENTINEL)
    assert SENTINEL not in repr(token) and SENTINEL not in str(token)
    assert repr(token).startswith("EphemeralToken(<redacted>")


def test_vertex_repr_shows_project_not_provider() -> None:
    vertex = VertexAI(project="my-proj", location="europe-west4", token_provider=_token)
    assert repr(vertex) == "VertexAI(project='my-proj', location='europe-west4')"
    assert str(vertex) == repr(vertex)
    assert vertex.location == "europe-west4"
    assert VertexAI(project="p", token_provider=_token).location == "us-central1"


def test_equal_keys_are_equal_and_hashable() -> None:
    assert ApiKey(SENTINEL) == ApiKey(SENTINEL)
    assert ApiKey(SENTINEL) != ApiKey(SENTINEL + "x")
    assert len({ApiKey(SENTINEL), ApiKey(SENTINEL)}) == 1
    assert pickle.loads(pickle.dumps(ApiKey(SENTINEL))) == ApiKey(SENTINEL)


@pytest.mark.parametrize("bad", ["", " leading", "trailing ", "new\nline", "cr\rlf", "nul\0"], ids=repr)
def test_malformed_keys_are_refused_without_echo(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        ApiKey(bad)
    if bad.strip():
        assert bad.strip() not in str(info.value)
    with pytest.raises(ConfigError):
        EphemeralToken(bad)


def test_non_string_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be a str"):
        ApiKey(123)  # type: ignore[arg-type]


def test_vertex_validation() -> None:
    with pytest.raises(ConfigError):
        VertexAI(project="", token_provider=_token)
    with pytest.raises(ConfigError):
        VertexAI(project="a/b", token_provider=_token)
    with pytest.raises(ConfigError, match="token_provider"):
        VertexAI(project="p", token_provider="not callable")  # type: ignore[arg-type]


def test_from_env_order_and_missing() -> None:
    assert ApiKey.from_env({"GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "o"}) == ApiKey("g")
    assert ApiKey.from_env({"GOOGLE_API_KEY": "o"}) == ApiKey("o")
    assert ApiKey.from_env({"GEMINI_API_KEY": "", "GOOGLE_API_KEY": "o"}) == ApiKey("o")
    assert ApiKey.from_env({"GEMINI_API_KEY": " g\n"}) == ApiKey("g")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        ApiKey.from_env({})


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", SENTINEL)
    assert ApiKey.from_env() == ApiKey(SENTINEL)
    assert resolve_auth(None) == ApiKey(SENTINEL)


def test_resolve_auth() -> None:
    key = ApiKey(SENTINEL)
    vertex = VertexAI(project="p", token_provider=_token)
    assert resolve_auth(key) is key
    assert resolve_auth(vertex) is vertex
    assert resolve_auth(SENTINEL) == key
    assert resolve_auth("auth_tokens/abc") == EphemeralToken("auth_tokens/abc")
    assert resolve_auth(None, {"GEMINI_API_KEY": SENTINEL}) == key
    with pytest.raises(ConfigError, match="auth must be"):
        resolve_auth(42)  # type: ignore[arg-type]


def test_redact_and_secrets_of() -> None:
    token = EphemeralToken("auth_tokens/" + SENTINEL)
    assert secrets_of(ApiKey(SENTINEL)) == (SENTINEL,)
    assert set(secrets_of(token)) == {"auth_tokens/" + SENTINEL, SENTINEL}
    assert secrets_of(VertexAI(project="p", token_provider=_token)) == ()  # no token issued yet
    text = f"bad key {SENTINEL} in auth_tokens/{SENTINEL}"
    scrubbed = redact(text, *secrets_of(token))
    assert SENTINEL not in scrubbed
    assert scrubbed == "bad key <redacted> in <redacted>"
    assert redact("nothing", "") == "nothing"


@given(
    secret=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=40),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_redact_removes_every_occurrence(secret: str, before: str, after: str) -> None:
    text = before + secret + after + secret
    scrubbed = redact(text, secret)
    assert secret not in scrubbed or secret in REDACTED
    key = ApiKey(secret)
    assert secret not in repr(key) or secret in repr(ApiKey("x"))


class FakeCredentials:
    """Duck-typed google-auth credentials: ``valid``, ``token``, ``refresh(request)``."""

    def __init__(self) -> None:
        self.valid = False
        self.token: str | None = None
        self.refreshes = 0
        self.requests: list[object] = []

    def refresh(self, request: object) -> None:
        self.refreshes += 1
        self.requests.append(request)
        self.token = f"ya29.fake{self.refreshes}"
        self.valid = True


async def test_vertex_bearer_tokens_are_remembered_for_redaction_never_shown() -> None:
    issued = iter(f"ya29.token-{n}" for n in range(20))

    async def provider() -> str:
        return next(issued)

    vertex = VertexAI(project="p", token_provider=provider)
    first = await bearer_token(vertex)
    assert secrets_of(vertex) == (first,)
    for _ in range(19):
        await bearer_token(vertex)
    assert secrets_of(vertex)[-1] == "ya29.token-19" and len(secrets_of(vertex)) == 8  # the newest few
    assert "ya29" not in repr(vertex) and "ya29" not in str(vertex)
    assert vertex == VertexAI(project="p", token_provider=provider)  # not part of equality
    text = redact("Request had invalid authentication credentials: Bearer ya29.token-19", *secrets_of(vertex))
    assert text == "Request had invalid authentication credentials: Bearer <redacted>"


@pytest.mark.parametrize("returned", ["", "two words", None])
async def test_a_bad_vertex_token_is_an_auth_error_without_its_text(returned: object) -> None:
    async def provider() -> object:
        return returned

    vertex = VertexAI(project="p", token_provider=provider)  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="empty or malformed"):
        await bearer_token(vertex)
    assert secrets_of(vertex) == ()


async def test_google_auth_provider_refreshes_only_when_invalid() -> None:
    creds = FakeCredentials()
    provider = google_auth_token_provider(creds, request_factory=lambda: "REQ")
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(provider)
        assert creds.refreshes == 1 and creds.requests == ["REQ"]
        assert await provider() == "ya29.fake1"
        creds.valid = False  # expired
        assert await provider() == "ya29.fake2"
    vertex = VertexAI(project="p", token_provider=provider)
    assert "fake" not in repr(vertex)


async def test_google_auth_provider_default_credentials_are_loaded_lazily(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.auth

    creds = FakeCredentials()
    calls: list[list[str]] = []

    def fake_default(scopes: list[str]) -> tuple[FakeCredentials, str]:
        calls.append(scopes)
        return creds, "proj"

    monkeypatch.setattr(google.auth, "default", fake_default)
    provider = google_auth_token_provider(request_factory=object)
    assert calls == []
    with trio.fail_after(5):
        assert await provider() == "ya29.fake1"
        assert await provider() == "ya29.fake1"
    assert calls == [[CLOUD_PLATFORM_SCOPE]]


async def test_google_auth_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "google.auth", None)  # what an absent package looks like
    provider = google_auth_token_provider()
    with pytest.raises(ConfigError, match="pip install google-auth"):
        await provider()
    # A connection awaits the provider through bearer_token/live_headers: the hint survives
    # (it was turned into AuthError("... failed: ConfigError"), losing it).
    vertex = VertexAI(project="p", token_provider=provider)
    with pytest.raises(ConfigError, match="pip install google-auth requests"):
        await bearer_token(vertex)
    with pytest.raises(ConfigError, match="pip install google-auth requests"):
        await live_headers(vertex)
    assert secrets_of(vertex) == ()


async def test_a_failing_vertex_provider_is_an_auth_error_naming_only_the_error_type() -> None:
    async def provider() -> str:
        raise RuntimeError(f"refresh failed for refresh_token={SENTINEL}")

    with pytest.raises(AuthError) as info:
        await bearer_token(VertexAI(project="p", token_provider=provider))
    assert str(info.value) == "Vertex AI token provider failed: RuntimeError"
    assert info.value.__cause__ is None and info.value.__suppress_context__
