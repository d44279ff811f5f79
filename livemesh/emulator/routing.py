"""Which Live endpoint a request path names, and which credential it carries.

Pure functions over the request target and headers (sans-IO). The SDK puts a double slash in the
path when its base URL ends with ``/``; paths are normalised before matching. Credentials are
kept out of reprs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

import attrs

_GEMINI_RE: Final = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.GenerativeService\."
    r"(BidiGenerateContent|BidiGenerateContentConstrained)$"
)
_VERTEX_RE: Final = re.compile(
    r"^/ws/google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/BidiGenerateContent$"
)
_SLASHES_RE: Final = re.compile(r"/{2,}")


@attrs.frozen
class Route:
    """A Live endpoint: ``api`` is ``"gemini"`` or ``"vertex"``; ``credential`` is the key, token
    name (constrained) or bearer token, as sent (never shown in reprs)."""

    api: Literal["gemini", "vertex"]
    version: str
    constrained: bool
    credential: str | None = attrs.field(default=None, repr=False)
    kind: Literal["key", "token", "bearer"] = "key"
    """What ``credential`` is: an API key, an ephemeral token name, or a bearer token."""


def normalise_path(target: str) -> tuple[str, dict[str, list[str]]]:
    """The path with repeated slashes collapsed, and the parsed query string."""
    path, _, query = target.partition("?")
    if "://" in path:  # an absolute-form target
        path = urlsplit(path).path
    return _SLASHES_RE.sub("/", path) or "/", parse_qs(query)


def live_route(target: str, headers: Mapping[str, str]) -> Route | None:
    """The Live endpoint ``target`` names, or None if it names none. ``headers`` keys are lowercase."""
    path, query = normalise_path(target)
    if match := _GEMINI_RE.match(path):
        constrained = match.group(2).endswith("Constrained")
        if constrained:
            credential = _token_from(headers.get("authorization"), "token") or _first(query, "access_token")
            credential = credential or headers.get("x-goog-api-key") or _first(query, "key")
        else:
            credential = headers.get("x-goog-api-key") or _first(query, "key")
        return Route(
            "gemini", match.group(1), constrained, credential or None, "token" if constrained else "key"
        )
    if match := _VERTEX_RE.match(path):
        bearer = _token_from(headers.get("authorization"), "bearer") or _first(query, "access_token")
        if bearer:
            return Route("vertex", match.group(1), False, bearer, "bearer")
        key = headers.get("x-goog-api-key") or _first(query, "key")  # Vertex express mode
        return Route("vertex", match.group(1), False, key or None, "key")
    return None


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _token_from(header: str | None, scheme: str) -> str | None:
    if not header:
        return None
    head, _, value = header.strip().partition(" ")
    if head.lower() != scheme:
        return None
    return value.strip() or None
