"""Who may open a Live session, and with which setup: credentials, model and setup checks.

Pure decisions over a route, a setup and the emulator's configuration (no I/O): each failure is a
:class:`~livemesh.emulator.closes.Refusal` carrying the service's close code and text, which the
connection sends after reading the setup, as the service does.
"""

from __future__ import annotations

import attrs

from livemesh import wire
from livemesh.emulator import closes
from livemesh.emulator.config import EmulatorConfig
from livemesh.emulator.families import ModelFamily, family_of
from livemesh.emulator.routing import Route
from livemesh.emulator.tokens import EphemeralToken, TokenStore, apply_locked
from livemesh.models import refused_settings


@attrs.frozen
class Admitted:
    """A checked setup: the model ``NAME``, the effective setup (a token's locked fields applied),
    the key quotas are counted against, and the token to spend once the session is admitted."""

    model: str
    setup: wire.Setup
    key: str | None = attrs.field(repr=False)
    family: ModelFamily = attrs.field(repr=False)
    token: EphemeralToken | None = attrs.field(default=None, repr=False)


def model_name(raw: str) -> str:
    """``models/NAME``, ``NAME`` or a Vertex publisher path, as ``NAME``."""
    return raw.rsplit("/", 1)[-1].strip() if raw else ""


def admit(route: Route, setup: wire.Setup, config: EmulatorConfig, tokens: TokenStore) -> Admitted:
    """Check the credential, the model and the setup, in the service's order (auth first)."""
    resume = bool(setup.session_resumption and setup.session_resumption.handle)
    token = None
    key = route.credential
    if route.api == "gemini" and route.constrained:
        token = tokens.admit(route.credential, resume=resume)
        key = token.key
        setup = apply_locked(setup, token.locked_setup)
    elif not route.credential:
        raise closes.Refusal(closes.POLICY, closes.TEXT_UNREGISTERED)
    elif route.kind == "key":  # Gemini API, or Vertex express mode
        if config.api_keys is not None and route.credential not in config.api_keys:
            raise closes.Refusal(closes.POLICY, closes.TEXT_BAD_KEY)
    elif config.bearer_tokens is not None and route.credential not in config.bearer_tokens:
        raise closes.Refusal(closes.POLICY, closes.TEXT_BAD_TOKEN)
    name = model_name(setup.model)
    if not name:
        raise closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
    if name not in config.live_models:
        raise closes.Refusal(closes.POLICY, closes.model_not_found(name, route.version))
    family = family_of(name, config.families)
    validate_setup(setup, route, family)
    return Admitted(name, setup, key, family, token)


def refuse_unknown_fields(message: wire.ClientMessage) -> None:
    """1007 for a member the API does not know, at any depth (protobuf's JSON parser refuses
    unknown names: the message never reaches the model)."""
    unknown = wire.unknown_fields(message)
    if unknown:
        raise closes.Refusal(closes.INVALID_ARGUMENT, closes.unknown_name(unknown[0][0]))


def validate_setup(setup: wire.Setup, route: Route, family: ModelFamily) -> None:
    """1007 for what the service refuses: a member it does not know, two response modalities (or
    one the model does not answer in), ``transparent`` resumption off Vertex, a function
    declaration without a name, and the settings the model's family refuses."""
    refuse_unknown_fields(wire.ClientMessage(setup=setup))
    invalid = closes.Refusal(closes.INVALID_ARGUMENT, closes.TEXT_INVALID_ARGUMENT)
    generation = setup.generation_config
    modalities = (generation.response_modalities if generation else None) or []
    if len(modalities) > 1 or any(m not in family.response_modalities for m in modalities):
        raise invalid
    if refused_settings(family.behavior, setup):
        raise invalid
    if setup.session_resumption and setup.session_resumption.transparent and route.api != "vertex":
        raise invalid
    for tool in setup.tools or []:
        for declaration in tool.function_declarations or []:
            if not declaration.name:
                raise invalid
