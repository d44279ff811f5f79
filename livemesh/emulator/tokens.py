"""Ephemeral auth tokens (``POST /v1alpha/auth_tokens``) and their enforcement on connect.

A token has ``uses`` (default 1; a resume is not a use), ``expireTime`` (default +30 min: no
connection or resume after it), ``newSessionExpireTime`` (default +60 s: no *new* session after
it) and an optional locked ``bidiGenerateContentSetup`` whose fields override the client's setup.
Times are wall-clock (RFC 3339 on the wire), as the SDK computes them from its own clock.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

import attrs
import orjson

from livemesh import wire
from livemesh.emulator import closes


@attrs.define(eq=False)
class EphemeralToken:
    name: str = attrs.field(repr=False)
    key: str | None = attrs.field(repr=False)
    uses_left: int | None
    """None: unlimited (the API's ``uses: 0``)."""
    expire_at: float
    new_session_expire_at: float
    locked_setup: dict[str, Any] | None = None


def parse_time(text: Any, default: float) -> float:
    """An RFC 3339 timestamp as epoch seconds (``Z`` or an offset; microseconds allowed)."""
    if not isinstance(text, str) or not text:
        return default
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise closes.Refusal(400, f"invalid timestamp {text!r:.40}") from None


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat()


class TokenStore:
    """Every token an emulator issued (bounded: expired tokens are pruned on each issue)."""

    def __init__(self, *, max_tokens: int = 100_000) -> None:
        self._tokens: dict[str, EphemeralToken] = {}
        self._max = max_tokens

    def issue(self, body: dict[str, Any], key: str | None) -> EphemeralToken:
        """A new token from a request body (``uses``, ``expireTime``, ``newSessionExpireTime``,
        ``bidiGenerateContentSetup``); :class:`~closes.Refusal` with an HTTP status if invalid."""
        now = time.time()
        self._prune(now)
        if len(self._tokens) >= self._max:
            raise closes.Refusal(429, "too many live tokens")
        uses = body.get("uses", 1)
        if isinstance(uses, str) and uses.isdigit():
            uses = int(uses)
        if not isinstance(uses, int) or isinstance(uses, bool) or uses < 0:
            raise closes.Refusal(400, "uses must be a non-negative integer")
        expire_at = parse_time(body.get("expireTime") or body.get("expire_time"), now + 1800)
        new_session = parse_time(
            body.get("newSessionExpireTime") or body.get("new_session_expire_time"), now + 60
        )
        locked = body.get("bidiGenerateContentSetup") or body.get("bidi_generate_content_setup")
        if locked is not None and not isinstance(locked, dict):
            raise closes.Refusal(400, "bidiGenerateContentSetup must be an object")
        if isinstance(locked, dict) and isinstance(locked.get("setup"), dict):
            locked = locked["setup"]
        if locked:
            try:
                message = wire.decode_client(orjson.dumps({"setup": locked}))
            except Exception:
                raise closes.Refusal(400, "bidiGenerateContentSetup is not a valid setup") from None
            unknown = wire.unknown_fields(message)
            if unknown:
                raise closes.Refusal(400, closes.unknown_name(unknown[0][0]))
        token = EphemeralToken(
            "auth_tokens/" + secrets.token_urlsafe(24),
            key,
            uses or None,
            expire_at,
            min(new_session, expire_at),
            locked or None,
        )
        self._tokens[token.name] = token
        return token

    def admit(self, name: str | None, *, resume: bool) -> EphemeralToken:
        """The token for a connection, checked (a new session spends one use); 1008 if refused."""
        token = self._tokens.get(name or "")
        if token is None and name and not name.startswith("auth_tokens/"):
            token = self._tokens.get("auth_tokens/" + name)
        now = time.time()
        if token is None or now > token.expire_at:
            raise closes.Refusal(closes.POLICY, closes.TEXT_BAD_TOKEN)
        if not resume:
            if now > token.new_session_expire_at or token.uses_left == 0:
                raise closes.Refusal(closes.POLICY, closes.TEXT_BAD_TOKEN)
        return token

    @staticmethod
    def spend(token: EphemeralToken, *, resume: bool) -> None:
        if not resume and token.uses_left is not None:
            token.uses_left -= 1

    def _prune(self, now: float) -> None:
        for name in [n for n, t in self._tokens.items() if now > t.expire_at]:
            del self._tokens[name]


def apply_locked(setup: wire.Setup, locked: dict[str, Any] | None) -> wire.Setup:
    """``setup`` with every field the token locks replaced by the token's value."""
    if not locked:
        return setup
    locked_setup = wire.decode_client(orjson.dumps({"setup": locked})).setup
    assert locked_setup is not None
    changes = {
        field.name: getattr(locked_setup, field.name)
        for field in attrs.fields(wire.Setup)
        if getattr(locked_setup, field.name) not in (None, "")
    }
    return attrs.evolve(setup, **changes)
