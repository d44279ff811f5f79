"""Plain Python functions as Live API tools: declarations from signatures, and running one call.

``tools=[get_weather]`` is enough: the declaration (name, description, parameter schema) comes
from the function's name, docstring and type hints, and the session runs each call and answers
it. :func:`function_tool` adds options (explicit name/description/schema, NON_BLOCKING behaviour,
a timeout, response scheduling). Sync functions run in a worker thread so a blocking tool never
stalls the session's other tasks; async functions run in the session's tool nursery.

:func:`run_tool` turns any outcome into exactly one ``FunctionResponse``: the return value
(see :func:`run_tool` for the shapes, media included), an exception (``{"error": ...}``, the
session lives on), or a timeout. Cancellation propagates: the ledger decides whether a cancelled
call still owes a response.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs
import orjson
import trio

from livemesh import wire
from livemesh.errors import ConfigError, DecodeError, EncodeError

__all__ = [
    "FunctionTool",
    "ToolSpec",
    "declaration_from_function",
    "function_tool",
    "run_tool",
    "split_tools",
]

log = logging.getLogger("livemesh.session.tools")

ToolSpec: TypeAlias = (
    "Callable[..., Any] | FunctionTool | wire.Tool | wire.FunctionDeclaration | Mapping[str, Any]"
)
"""Anything ``SessionConfig(tools=[...])`` accepts."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


@attrs.frozen(kw_only=True)
class FunctionTool:
    """A function the session runs when the model calls ``declaration.name``."""

    func: Callable[..., Any] = attrs.field(repr=False)
    declaration: wire.FunctionDeclaration
    timeout: float | None = None
    scheduling: str | None = None
    """Response scheduling for NON_BLOCKING tools (``wire.Scheduling.*``); ignored for BLOCKING."""
    run_sync_in_thread: bool = True

    @property
    def name(self) -> str:
        return self.declaration.name or ""

    @property
    def non_blocking(self) -> bool:
        return self.declaration.behavior == wire.Behavior.NON_BLOCKING

    @property
    def is_async(self) -> bool:
        func = self.func
        while isinstance(func, functools.partial):
            func = func.func
        return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            type(func).__call__  # an instance with an async __call__
        )


def function_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    behavior: str | None = None,
    timeout: float | None = None,
    scheduling: str | None = None,
    run_sync_in_thread: bool = True,
) -> Any:
    """Wrap ``func`` as a :class:`FunctionTool`; usable as ``@function_tool`` or ``@function_tool(...)``.

    ``parameters`` (an OpenAPI-style schema) replaces the one derived from type hints.
    ``behavior=wire.Behavior.NON_BLOCKING`` lets the model carry on while the tool runs.
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        if not callable(f):
            raise ConfigError(f"a tool must be callable, not {type(f).__name__}")
        if behavior not in (None, wire.Behavior.BLOCKING, wire.Behavior.NON_BLOCKING):
            raise ConfigError(f"behavior must be BLOCKING or NON_BLOCKING, not {behavior!r}")
        if scheduling not in (
            None,
            wire.Scheduling.SILENT,
            wire.Scheduling.WHEN_IDLE,
            wire.Scheduling.INTERRUPT,
        ):
            raise ConfigError(f"scheduling must be SILENT, WHEN_IDLE or INTERRUPT, not {scheduling!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        decl = declaration_from_function(f, name=name, description=description, behavior=behavior)
        if parameters is not None:
            if not isinstance(parameters, Mapping):
                raise ConfigError("parameters must be a JSON-schema-like dict")
            decl = attrs.evolve(decl, parameters=dict(parameters))
        return FunctionTool(
            func=f,
            declaration=decl,
            timeout=timeout,
            scheduling=scheduling,
            run_sync_in_thread=run_sync_in_thread,
        )

    if func is None:
        return wrap
    return wrap(func)


# ----------------------------------------------------------------------------- declarations

_SCALARS: dict[Any, str] = {str: "STRING", int: "INTEGER", float: "NUMBER", bool: "BOOLEAN"}


def _schema(tp: Any, where: str) -> dict[str, Any]:
    """An OpenAPI-style schema (the uppercase types the SDK sends) for one annotation."""
    if tp is inspect.Parameter.empty or tp is Any:
        return {"type": "STRING"}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return {**_schema(rest[0], where), "nullable": True}
        return {"anyOf": [_schema(a, where) for a in rest]}
    if origin is typing.Literal:
        values = list(args)
        if all(isinstance(v, str) for v in values):
            return {"type": "STRING", "enum": values}
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return {"type": "INTEGER", "enum": [str(v) for v in values], "format": "enum"}
        raise ConfigError(f"{where}: Literal values must be all str or all int")
    if origin is typing.Annotated:
        return _schema(args[0], where)
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "STRING", "enum": [str(member.value) for member in tp]}
    if origin in (list, tuple, set, frozenset, Sequence) or tp in (list, tuple, set, frozenset):
        item = args[0] if args else Any
        return {"type": "ARRAY", "items": _schema(item, where)}
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return {"type": "OBJECT"}
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        required = sorted(getattr(tp, "__required_keys__", set()))
        return {
            "type": "OBJECT",
            "properties": {k: _schema(v, f"{where}.{k}") for k, v in hints.items()},
            **({"required": required} if required else {}),
        }
    raise ConfigError(f"{where}: cannot derive a schema for {tp!r}; pass parameters=... to function_tool")


def _doc_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """The summary paragraph and Google-style ``Args:`` descriptions of a docstring."""
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    summary = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    params: dict[str, str] = {}
    match = re.search(r"^(?:Args|Arguments|Parameters):\s*$(.*?)(?:^\S|\Z)", text, re.M | re.S)
    if match:
        for line in match.group(1).splitlines():
            item = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", line)
            if item:
                params[item.group(1)] = item.group(2).strip()
    return summary, params


def declaration_from_function(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    behavior: str | None = None,
) -> wire.FunctionDeclaration:
    """A ``FunctionDeclaration`` from ``func``'s name, docstring and type hints.

    Parameters without a default are ``required``; ``*args``/``**kwargs`` are refused (the model
    sends named arguments only). Unannotated parameters are declared as strings.
    """
    tool_name = name or getattr(func, "__name__", None)
    if not isinstance(tool_name, str) or not _NAME_RE.match(tool_name):
        raise ConfigError(f"tool name must match {_NAME_RE.pattern}, got {tool_name!r}")
    try:
        signature = inspect.signature(func)
        hints = typing.get_type_hints(func, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"tool {tool_name}: cannot read its signature ({exc})") from None
    summary, arg_docs = _doc_parts(inspect.getdoc(func))
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {tool_name}: *args/**kwargs cannot be declared; name each parameter")
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {tool_name}: positional-only parameter {pname!r} cannot be called by name"
            )
        schema = _schema(hints.get(pname, param.annotation), f"tool {tool_name}, parameter {pname}")
        if pname in arg_docs:
            schema["description"] = arg_docs[pname]
        properties[pname] = schema
        if param.default is param.empty:
            required.append(pname)
    parameters: dict[str, Any] | None = None
    if properties:
        parameters = {"type": "OBJECT", "properties": properties}
        if required:
            parameters["required"] = required
    return wire.FunctionDeclaration(
        name=tool_name,
        description=description if description is not None else (summary or None),
        parameters=parameters,
        behavior=behavior,
    )


def split_tools(
    specs: Sequence[ToolSpec], *, default_timeout: float | None
) -> tuple[tuple[FunctionTool, ...], tuple[wire.Tool, ...]]:
    """Session-run tools and declared-only tools, from what ``SessionConfig(tools=...)`` got."""
    functions: list[FunctionTool] = []
    declared: list[wire.Tool] = []
    for index, spec in enumerate(specs):
        if isinstance(spec, FunctionTool):
            functions.append(
                spec if spec.timeout is not None else attrs.evolve(spec, timeout=default_timeout)
            )
        elif isinstance(spec, wire.Tool):
            declared.append(spec)
        elif isinstance(spec, wire.FunctionDeclaration):
            declared.append(wire.Tool(function_declarations=[spec]))
        elif isinstance(spec, Mapping):
            declared.append(_tool_from_mapping(spec, index))
        elif callable(spec):
            functions.append(function_tool(spec, timeout=default_timeout))
        else:
            raise ConfigError(
                f"tools[{index}] must be a function, FunctionTool, Tool or dict, not {type(spec).__name__}"
            )
    return tuple(functions), tuple(declared)


def _tool_from_mapping(spec: Mapping[str, Any], index: int) -> wire.Tool:
    data = dict(spec)
    # A bare declaration dict ({"name": ..., "parameters": ...}) is accepted as one function.
    if "name" in data and not {"function_declarations", "functionDeclarations"} & set(data):
        data = {"function_declarations": [data]}
    try:
        tool = wire.converter.structure(_json_safe(data), wire.Tool)
    except DecodeError as exc:
        raise ConfigError(f"tools[{index}]: {exc.reason}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"tools[{index}]: {exc}") from None
    if not isinstance(tool, wire.Tool):  # pragma: no cover - converter contract
        raise ConfigError(f"tools[{index}] is not a Tool")
    for decl in tool.function_declarations or ():
        if not decl.name or not _NAME_RE.match(decl.name):
            raise ConfigError(f"tools[{index}]: function declaration needs a valid name, got {decl.name!r}")
    return tool


def _json_safe(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ----------------------------------------------------------------------------- running one call


def _response_body(value: Any) -> dict[str, Any]:
    body = value if isinstance(value, dict) else {"result": value}
    try:
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return {"error": f"tool returned a value JSON cannot carry ({type(value).__name__})"}
    return body


def _answer(
    value: Any, call: wire.FunctionCall, tool: FunctionTool, scheduling: str | None
) -> wire.FunctionResponse:
    """The response for what the tool returned (the shapes are listed in :func:`run_tool`)."""
    name = call.name or tool.name
    if isinstance(value, wire.FunctionResponse):
        response = attrs.evolve(
            value,
            id=call.id,
            name=name,
            response=value.response if value.response is not None else {},
            scheduling=value.scheduling or scheduling,
        )
    elif wire.is_media(value):
        response = wire.FunctionResponse(
            id=call.id, name=name, response={}, parts=wire.response_parts(value), scheduling=scheduling
        )
    else:
        return wire.FunctionResponse(
            id=call.id, name=name, response=_response_body(value), scheduling=scheduling
        )
    try:
        wire.encode_client(wire.ClientMessage(tool_response=wire.ToolResponse(function_responses=[response])))
    except EncodeError as exc:
        body = {"error": f"tool returned a response that cannot be sent: {exc}"}
        return wire.FunctionResponse(id=call.id, name=name, response=body, scheduling=scheduling)
    return response


async def run_tool(
    tool: FunctionTool, call: wire.FunctionCall, *, non_blocking: bool | None = None
) -> wire.FunctionResponse:
    """Run one call of ``tool`` and build its response (never raises, except ``Cancelled``).

    What the tool returns becomes the answer:

    * a ``dict``: the ``response`` as is; any other JSON value ``v``: ``{"result": v}``;
    * media for the model to see or hear (``FunctionResponse.parts``): a
      :class:`~livemesh.wire.Blob` (inline bytes with their MIME type), a
      :class:`~livemesh.wire.FileData` (a file URI), a
      :class:`~livemesh.wire.FunctionResponsePart`, or a list of only these, answered with an
      empty ``response`` and these as its parts;
    * a :class:`~livemesh.wire.FunctionResponse` for full control (``response`` and ``parts``
      together, ``scheduling``, ``will_continue``): sent as it is, with the call's ``id`` and
      ``name`` (whatever it said) and the tool's ``scheduling`` if it set none.

    The per-tool timeout answers ``{"error": "timed out after N s"}`` so the model is not left
    waiting (an unanswered BLOCKING call stalls the real service forever).

    Args:
        tool: The tool to run.
        call: The whole call (streamed arguments already assembled).
        non_blocking: Whether the call is NON_BLOCKING (only those carry ``scheduling``); the
            tool's declaration decides when not given, but on models where NON_BLOCKING is the
            default the session passes it.

    Returns:
        The one answer for the call.
    """
    if non_blocking is None:
        non_blocking = tool.non_blocking
    scheduling = tool.scheduling if non_blocking else None
    args = call.args or {}

    async def invoke() -> Any:
        if tool.is_async:
            result: Awaitable[Any] = tool.func(**args)
            return await result
        if tool.run_sync_in_thread:
            return await trio.to_thread.run_sync(functools.partial(tool.func, **args), abandon_on_cancel=True)
        return tool.func(**args)

    body: dict[str, Any]
    try:
        if tool.timeout is not None:
            with trio.fail_after(tool.timeout):
                value = await invoke()
        else:
            value = await invoke()
        return _answer(value, call, tool, scheduling)
    except ConfigError as exc:  # media parts that are not valid parts
        body = {"error": f"tool returned unusable media: {exc}"}
    except trio.TooSlowError:
        log.warning("tool %s (call %s) timed out after %s s", tool.name, call.id, tool.timeout)
        body = {"error": f"timed out after {tool.timeout:g} s"}
    except TypeError as exc:
        body = {"error": f"bad arguments for {tool.name}: {exc}"}
    except Exception as exc:
        log.info("tool %s (call %s) raised %s", tool.name, call.id, type(exc).__name__, exc_info=True)
        body = {"error": f"{type(exc).__name__}: {exc}"}
    return wire.FunctionResponse(
        id=call.id, name=call.name or tool.name, response=body, scheduling=scheduling
    )
