"""Function calls whose arguments arrive in pieces, assembled into whole calls (sans-IO).

With streamed arguments (google-genai 3.6.1: ``FunctionCall.partial_args`` and
``will_continue``; requested with ``FunctionCallingConfig.stream_function_call_arguments``) one
call arrives as several ``toolCall`` messages with the same ``id``: each carries
:class:`~livemesh.wire.messages.PartialArg` pieces, every one naming an argument by its JSON path
(RFC 9535, e.g. ``$.city`` or ``$.stops[0].name``) and carrying one value. A string may come in
several pieces, each but the last with ``PartialArg.will_continue``. The call is whole once a
piece says ``FunctionCall.will_continue`` false (or leaves it out).

:class:`StreamedCalls` takes every ``FunctionCall`` the server sends, streamed or not, and hands
back whole calls with ``args`` filled in, so what runs a tool never sees a piece. It is bounded
(calls in flight, characters per call): a peer streaming forever fails its own session with
:class:`~livemesh.errors.RemoteProtocolError`, as does a path or value that cannot be placed.

Numbers arrive as doubles (``numberValue``); an integral one becomes an ``int``, as the same
argument decodes from a whole call's ``args`` JSON (``2``, not ``2.0``), so a tool declared with
an ``int`` parameter gets the same value either way.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from typing import Any, Final

import attrs

from livemesh.errors import RemoteProtocolError
from livemesh.wire import messages as m

__all__ = ["StreamedCalls", "assemble_args", "parse_json_path"]

DEFAULT_MAX_CALLS: Final = 128
"""Calls whose pieces may be in flight at once."""
DEFAULT_MAX_CHARS: Final = 16 * 1024 * 1024
"""Characters (string values, plus four per other value or list slot) one call may stream."""

_SEGMENT = re.compile(
    r"""\.(?P<name>[^.\[\]'"]+)"""  # .name (member-name shorthand; permissive)
    r"""|\[(?P<index>\d+)\]"""  # [0]
    r"""|\['(?P<single>(?:[^'\\]|\\.)*)'\]"""  # ['name'] (normalized paths)
    r"""|\["(?P<double>(?:[^"\\]|\\.)*)"\]""",  # ["name"]
    re.S,
)


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """The steps of a singular JSON path: member names (``str``) and list indexes (``int``).

    Args:
        path: An RFC 9535 singular query such as ``$.city``, ``$.stops[0].name`` or
            ``$['a b']``.

    Returns:
        ``("stops", 0, "name")`` for ``$.stops[0].name``.

    Raises:
        RemoteProtocolError: The path does not start at ``$``, has a step that is not a member
            name or an index (wildcards, slices, filters), or names the root itself.
    """
    if not path.startswith("$"):
        raise RemoteProtocolError(f"a streamed argument's path must start with '$': {path!r}")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _SEGMENT.match(path, position)
        if match is None or match["name"] == "*":  # wildcards, slices, filters select no one place
            raise RemoteProtocolError(f"unsupported JSON path step at {position} in {path!r}")
        if match["name"] is not None:
            steps.append(match["name"])
        elif match["index"] is not None:
            steps.append(int(match["index"]))
        elif match["single"] is not None:
            steps.append(_unquote(match["single"].replace("\\'", "'").replace('"', '\\"'), path))
        else:
            steps.append(_unquote(match["double"], path))
        position = match.end()
    if not steps:
        raise RemoteProtocolError(f"a streamed argument cannot replace the whole args object: {path!r}")
    return tuple(steps)


def _unquote(inner: str, path: str) -> str:
    try:
        value = json.loads(f'"{inner}"')
    except ValueError:
        raise RemoteProtocolError(f"bad escape in JSON path {path!r}") from None
    assert isinstance(value, str)
    return value


def _value(arg: m.PartialArg) -> Any:
    if arg.string_value is not None:
        return arg.string_value
    if arg.number_value is not None:
        number = arg.number_value
        if isinstance(number, float) and number.is_integer():
            return int(number)
        return number
    if arg.bool_value is not None:
        return arg.bool_value
    if arg.null_value is not None:
        return None
    raise RemoteProtocolError(f"a streamed argument at {arg.json_path!r} carries no value")


@attrs.define(eq=False, slots=True)
class _Assembly:
    """The arguments of one call so far."""

    id: str | None
    name: str | None
    args: dict[str, Any] = attrs.Factory(dict)
    chars: int = 0
    open_strings: set[tuple[str | int, ...]] = attrs.Factory(set)
    """Paths whose last string piece said ``will_continue``: the next piece is appended."""

    def merge_args(self, args: m.JSONObject) -> None:
        for key, value in args.items():
            self.args[key] = value

    def apply(self, arg: m.PartialArg, max_chars: int) -> None:
        if arg.json_path is None:
            raise RemoteProtocolError("a streamed argument has no jsonPath")
        steps = parse_json_path(arg.json_path)
        value = _value(arg)
        self.chars += len(value) if isinstance(value, str) else 4
        if self.chars > max_chars:
            raise RemoteProtocolError(f"streamed arguments of call {self.id!r} exceed {max_chars} characters")
        container: Any = self.args
        for step, after in itertools.pairwise(steps):
            container = self._child(container, step, {} if isinstance(after, str) else [], max_chars)
        last = steps[-1]
        if steps in self.open_strings and isinstance(value, str):
            previous = self._get(container, last)
            value = (previous if isinstance(previous, str) else "") + value
        self._set(container, last, value, max_chars)
        if isinstance(value, str) and arg.will_continue:
            self.open_strings.add(steps)
        else:
            self.open_strings.discard(steps)

    def _child(self, container: Any, step: str | int, empty: Any, max_chars: int) -> Any:
        current = self._get(container, step)
        if current is None:
            self._set(container, step, empty, max_chars)
            return empty
        if not isinstance(current, type(empty)):
            kind = "an object" if isinstance(empty, dict) else "a list"
            raise RemoteProtocolError(f"streamed argument step {step!r} of call {self.id!r} is not {kind}")
        return current

    def _get(self, container: Any, step: str | int) -> Any:
        if isinstance(step, str):
            if not isinstance(container, dict):
                raise RemoteProtocolError(f"streamed argument {step!r} of call {self.id!r}: not an object")
            return container.get(step)
        if not isinstance(container, list):
            raise RemoteProtocolError(f"streamed argument [{step}] of call {self.id!r}: not a list")
        return container[step] if step < len(container) else None

    def _set(self, container: Any, step: str | int, value: Any, max_chars: int) -> None:
        if isinstance(step, str):
            if not isinstance(container, dict):
                raise RemoteProtocolError(f"streamed argument {step!r} of call {self.id!r}: not an object")
            container[step] = value
            return
        if not isinstance(container, list):
            raise RemoteProtocolError(f"streamed argument [{step}] of call {self.id!r}: not a list")
        missing = step + 1 - len(container)
        if missing > 0:
            # A gap (a leaf left out: an empty object or list) is filled with nulls, each counted
            # against the budget so a huge index cannot allocate a huge list.
            self.chars += 4 * missing
            if self.chars > max_chars:
                raise RemoteProtocolError(
                    f"streamed arguments of call {self.id!r} exceed {max_chars} characters"
                )
            container.extend([None] * missing)
        container[step] = value


def assemble_args(pieces: Iterable[m.PartialArg]) -> dict[str, Any]:
    """The arguments object the pieces of one call describe (strings continued across pieces).

    Args:
        pieces: The call's ``partial_args``, in the order they arrived.

    Returns:
        The ``args`` object, e.g. ``{"city": "Paris", "stops": [{"name": "Lyon"}]}``.

    Raises:
        RemoteProtocolError: A piece has no path or no value, or cannot be placed.
    """
    assembly = _Assembly(id=None, name=None)
    for arg in pieces:
        assembly.apply(arg, DEFAULT_MAX_CHARS)
    return assembly.args


class StreamedCalls:
    """Assembles streamed function calls; whole calls pass through untouched.

    One per session (the pieces of a call arrive on one connection, in order). Feed it every
    ``FunctionCall`` of every ``toolCall`` with :meth:`feed`; it returns the calls that are whole.
    """

    __slots__ = ("_calls", "_max_calls", "_max_chars")

    def __init__(self, *, max_calls: int = DEFAULT_MAX_CALLS, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        """Set the bounds.

        Args:
            max_calls: Calls whose pieces may be in flight at once.
            max_chars: Characters one call may stream (string values, plus four per other value).
        """
        self._calls: dict[str, _Assembly] = {}
        self._max_calls = max_calls
        self._max_chars = max_chars

    def __len__(self) -> int:
        """Calls whose pieces are still arriving."""
        return len(self._calls)

    def feed(self, call: m.FunctionCall) -> m.FunctionCall | None:
        """Take one call or piece of a call.

        Args:
            call: A ``FunctionCall`` from a ``toolCall`` message.

        Returns:
            The whole call (``args`` assembled, no ``partial_args``) once its last piece arrived;
            the call itself if it was never streamed; ``None`` while more pieces are to come.

        Raises:
            RemoteProtocolError: Too many calls in flight, a call over its size bound, or a
                piece that cannot be placed.
        """
        key = call.id or ""
        assembly = self._calls.get(key)
        if assembly is None and not call.id and len(self._calls) == 1:
            key, assembly = next(iter(self._calls.items()))  # a piece without its id: the one in flight
        if assembly is None:
            if call.will_continue is None and call.partial_args is None:
                return call  # an ordinary call: nothing to assemble
            if len(self._calls) >= self._max_calls:
                raise RemoteProtocolError(f"more than {self._max_calls} streamed calls in flight")
            assembly = _Assembly(id=call.id, name=call.name)
            self._calls[key] = assembly
        if assembly.name is None:
            assembly.name = call.name
        if call.args:
            assembly.merge_args(call.args)
        for arg in call.partial_args or ():
            assembly.apply(arg, self._max_chars)
        if call.will_continue:
            return None
        del self._calls[key]
        return m.FunctionCall(name=assembly.name, args=assembly.args, id=assembly.id)

    def feed_tool_call(self, tool_call: m.ToolCall) -> list[m.FunctionCall]:
        """Take every call of one ``toolCall`` message.

        Args:
            tool_call: The message's ``toolCall``.

        Returns:
            The calls it completed, in order (empty while all of them are still streaming).

        Raises:
            RemoteProtocolError: As :meth:`feed`.
        """
        whole = []
        for call in tool_call.function_calls or ():
            done = self.feed(call)
            if done is not None:
                whole.append(done)
        return whole

    def discard(self, ids: Iterable[str]) -> None:
        """Forget calls still streaming (the server cancelled them, ``toolCallCancellation``).

        Args:
            ids: The cancelled call ids.
        """
        for call_id in ids:
            self._calls.pop(call_id, None)

    def clear(self) -> None:
        """Forget every call still streaming (a new connection: their pieces will not continue)."""
        self._calls.clear()
