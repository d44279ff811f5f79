"""Strategies for values the official SDK (google-genai) accepts, and the frames it sends, for tests
that use it as an oracle.

Built on :class:`tests.wire.strategies.MessageStrategies` with the SDK's own knowledge: enum members
only, typed objects where livemesh keeps free-form JSON, and no field the SDK's types or its Gemini
API send paths lack or refuse.
"""

from __future__ import annotations

import warnings
from typing import Any

from google.genai import _common, _live_converters, types
from hypothesis import strategies as st

from livemesh.wire import messages as m
from livemesh.wire.fields import wire_fields
from tests.wire import strategies as s

# A simple OpenAPI-style schema, the shape the SDK's ``Schema`` type accepts (uppercase types).
_SCHEMA_LEAF = st.fixed_dictionaries(
    {"type": st.sampled_from(["STRING", "INTEGER", "NUMBER", "BOOLEAN"])},
    optional={"description": s.TEXT},
)
SDK_SCHEMAS = st.fixed_dictionaries(
    {"type": st.just("OBJECT")},
    optional={
        "properties": st.dictionaries(
            st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), _SCHEMA_LEAF, max_size=3
        ),
        "description": s.TEXT,
    },
)

# Where livemesh keeps free-form JSON but the SDK has a typed object, generate values of that type
# (camelCase keys, every key set, so a dump by alias gives the same dict).
SDK_JSON_FIELDS: dict[tuple[type, str], st.SearchStrategy[Any]] = {
    (m.FunctionDeclaration, "parameters"): SDK_SCHEMAS,
    (m.FunctionDeclaration, "response"): SDK_SCHEMAS,
    **{
        (m.Tool, f.name): st.just({})
        for f in wire_fields(m.Tool)
        if f.type == m.JSONObject  # the service's own tools: an empty object is a valid one
    },
    (m.Tool, "mcp_servers"): st.lists(st.fixed_dictionaries({"name": s.TEXT}), max_size=2),
    (m.ServerContent, "grounding_metadata"): st.one_of(
        st.just({}), st.fixed_dictionaries({"webSearchQueries": st.lists(s.TEXT, min_size=1, max_size=2)})
    ),
    (m.ServerContent, "url_context_metadata"): st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"urlMetadata": st.lists(st.fixed_dictionaries({"retrievedUrl": s.TEXT}), min_size=1, max_size=2)}
        ),
    ),
}

# The API's ``modelConfig`` is the SDK's ``model_selection_config`` (a rename its Vertex converter
# applies, its Gemini API path does not: see the test below).
RENAMED_BY_THE_SDK = frozenset({(m.GenerationConfig, "model_config")})

# Sent by the SDK (from LiveConnectConfig) but missing from its LiveClientSetup type.
NOT_IN_SDK_SETUP = frozenset({(m.Setup, "realtime_input_config")}) | RENAMED_BY_THE_SDK

# Fields the SDK's Gemini API converters refuse to send (ValueError "... only supported in Gemini
# Enterprise Agent Platform mode"), or a server-to-client field it refuses in client content.
GEMINI_API_REFUSES = (
    frozenset(
        {
            (m.Setup, "explicit_vad_signal"),
            (m.SessionResumptionConfig, "transparent"),
            (m.SafetySetting, "method"),
            (m.Tool, "retrieval"),
            (m.Tool, "enterprise_web_search"),
            (m.Tool, "parallel_ai_search"),
            (m.Tool, "exa_ai_search"),
            (m.FunctionCall, "partial_args"),
            (m.FunctionCall, "will_continue"),
            (m.TextResponseFormat, "schema"),  # sent as "jsonSchema" (see the test below)
        }
    )
    | RENAMED_BY_THE_SDK
)

SDK_TYPES = s.MessageStrategies(known_enums=True, overrides=SDK_JSON_FIELDS, exclude=NOT_IN_SDK_SETUP)
"""Values the SDK's pydantic types accept (enum members only, typed objects for raw JSON)."""

SDK_SENDS = s.MessageStrategies(known_enums=True, overrides=SDK_JSON_FIELDS, exclude=GEMINI_API_REFUSES)
"""Values the SDK's Gemini API send paths accept."""


def sdk_setup_frame(api_client: Any, model: str, config: Any) -> dict[str, Any]:
    """The setup frame ``connect()`` sends (live.py AsyncLive.connect, API-key branch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not isinstance(config, types.LiveConnectConfig):
            config = types.LiveConnectConfig(**config)
        parameters = types.LiveConnectParameters(model=model, config=config)
        request = _common.convert_to_dict(
            _live_converters._LiveConnectParameters_to_mldev(
                api_client=api_client, from_object=parameters.model_dump(exclude_none=True)
            )
        )
    del request["config"]
    request = _common.encode_unserializable_types(request)
    assert isinstance(request, dict)
    request["setup"]["model"] = model
    return request
