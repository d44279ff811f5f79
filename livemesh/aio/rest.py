"""livemesh's REST calls for asyncio code: ephemeral tokens and the model list.

Each runs :mod:`livemesh.rest` in the loop's guest run (the same code, errors and redaction),
so an asyncio backend mints a client's token with the key it keeps to itself.
"""

from __future__ import annotations

from typing import Any

from livemesh.aio.bridge import run_trio
from livemesh.auth import EphemeralToken
from livemesh.rest import ModelInfo
from livemesh.rest import create_ephemeral_token as trio_create_ephemeral_token
from livemesh.rest import list_live_models as trio_list_live_models
from livemesh.rest import resolve_model as trio_resolve_model

__all__ = ["create_ephemeral_token", "list_live_models", "resolve_model"]


async def create_ephemeral_token(*args: Any, **kwargs: Any) -> EphemeralToken:
    """Mint an ephemeral token for a client (:func:`livemesh.create_ephemeral_token`, same arguments).

    Leave ``client`` unset, or pass an ``httpx.AsyncClient`` used only through ``livemesh.aio``
    (the request runs in trio).

    Args:
        *args: As :func:`livemesh.create_ephemeral_token`.
        **kwargs: As :func:`livemesh.create_ephemeral_token`.

    Returns:
        The token (give the client only ``token.name``).
    """
    return await run_trio(trio_create_ephemeral_token, *args, **kwargs)


async def list_live_models(*args: Any, **kwargs: Any) -> list[ModelInfo]:
    """The models a key may open Live sessions with (:func:`livemesh.list_live_models`).

    Args:
        *args: As :func:`livemesh.list_live_models`.
        **kwargs: As :func:`livemesh.list_live_models`.

    Returns:
        The Live models.
    """
    return await run_trio(trio_list_live_models, *args, **kwargs)


async def resolve_model(*args: Any, **kwargs: Any) -> str:
    """A Live model of the kind asked for that the key may use (:func:`livemesh.resolve_model`).

    Args:
        *args: As :func:`livemesh.resolve_model`.
        **kwargs: As :func:`livemesh.resolve_model`.

    Returns:
        The model name.
    """
    return await run_trio(trio_resolve_model, *args, **kwargs)
