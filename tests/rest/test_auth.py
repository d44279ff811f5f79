"""Auth objects: construction, environment lookup, and that no secret leaks through repr/str/errors."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livemesh.auth import REDACTED, ApiKey, EphemeralToken, VertexAI, redact, resolve_auth, secrets_of
from livemesh.errors import ConfigError

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
    assert secrets_of(VertexAI(project="p", token_provider=_token)) == ()
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
