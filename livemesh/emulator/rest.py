"""The REST side on the Live port: model listing and ephemeral tokens, as the SDK calls them.

``GET /{v1,v1beta,v1alpha}/models`` (and ``/models/NAME``) lists the Live models with their
family's ``supportedGenerationMethods`` (always with ``bidiGenerateContent``; the current Live-only
model without ``generateContent``), then the other models; ``POST /v1alpha/auth_tokens``
issues ``auth_tokens/...`` (see :mod:`livemesh.emulator.tokens`). Errors use Google's JSON
error shape ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from livemesh.emulator import closes
from livemesh.emulator.config import EmulatorConfig
from livemesh.emulator.families import family_of
from livemesh.emulator.routing import normalise_path
from livemesh.emulator.tokens import TokenStore, format_time
from livemesh.emulator.wsio import HttpRequest, HttpResponse

_MODELS_RE: Final = re.compile(r"^/(v1|v1beta|v1alpha)/models(?:/(.+))?$")
_TOKENS_RE: Final = re.compile(r"^/(v1alpha|v1beta|v1)/auth_tokens$")
_STATUS: Final = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    429: "RESOURCE_EXHAUSTED",
}


def error(code: int, message: str, *, reason: str | None = None) -> HttpResponse:
    """Google's error shape; ``reason`` adds a ``google.rpc.ErrorInfo`` detail (``API_KEY_INVALID``)."""
    body: dict[str, Any] = {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}
    if reason is not None:
        info = "type.googleapis.com/google.rpc.ErrorInfo"
        body["details"] = [{"@type": info, "reason": reason, "domain": "googleapis.com"}]
    return HttpResponse(code, orjson.dumps({"error": body}))


def _json(obj: Any) -> HttpResponse:
    return HttpResponse(200, orjson.dumps(obj))


def model_entry(name: str, *, methods: tuple[str, ...], input_token_limit: int) -> dict[str, Any]:
    """One ``models.list`` entry, as the service writes it."""
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "description": "livemesh emulator model"
        + (" (Live API)" if "bidiGenerateContent" in methods else ""),
        "inputTokenLimit": input_token_limit,
        "outputTokenLimit": 8192,
        "supportedGenerationMethods": list(methods),
    }


class RestApi:
    """Answers the REST requests of one emulator."""

    def __init__(self, config: EmulatorConfig, tokens: TokenStore) -> None:
        self._config = config
        self._tokens = tokens

    def _models(self) -> list[dict[str, Any]]:
        config = self._config
        limits = config.limits
        entries = []
        for name in config.live_models:
            family = family_of(name, config.families)
            window = (
                limits.context_window_native_audio if family.native_audio else limits.context_window_default
            )
            entries.append(model_entry(name, methods=family.methods, input_token_limit=window))
        for name in config.other_models:
            entries.append(
                model_entry(
                    name,
                    methods=("generateContent", "countTokens"),
                    input_token_limit=limits.context_window_default,
                )
            )
        return entries

    def _key(self, request: HttpRequest, query: dict[str, list[str]]) -> str | HttpResponse:
        key = request.headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if not key:
            return error(403, closes.TEXT_UNREGISTERED)
        if self._config.api_keys is not None and key not in self._config.api_keys:
            return error(400, closes.TEXT_BAD_KEY, reason="API_KEY_INVALID")
        return key

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path, query = normalise_path(request.target)
        if match := _MODELS_RE.match(path):
            if request.method != "GET":
                return error(405, "Method not allowed.")
            key = self._key(request, query)
            if isinstance(key, HttpResponse):
                return key
            models = self._models()
            name = match.group(2)
            if name is None:
                return _json({"models": models})
            found = [m for m in models if m["name"] == f"models/{name.removeprefix('models/')}"]
            if not found:
                return error(404, f"models/{name} is not found for API version {match.group(1)}.")
            return _json(found[0])
        if _TOKENS_RE.match(path):
            if request.method != "POST":
                return error(405, "Method not allowed.")
            key = self._key(request, query)
            if isinstance(key, HttpResponse):
                return key
            try:
                body = orjson.loads(request.body or b"{}")
            except orjson.JSONDecodeError:
                return error(400, "Invalid JSON payload received.")
            if not isinstance(body, dict):
                return error(400, "Invalid JSON payload received.")
            try:
                token = self._tokens.issue(body, key)
            except closes.Refusal as refusal:
                return error(refusal.code, refusal.reason)
            reply: dict[str, Any] = {
                "name": token.name,
                "expireTime": format_time(token.expire_at),
                "newSessionExpireTime": format_time(token.new_session_expire_at),
            }
            if token.uses_left is not None:
                reply["uses"] = token.uses_left
            return _json(reply)
        return error(404, f"The requested URL {path} was not found on this server.")
