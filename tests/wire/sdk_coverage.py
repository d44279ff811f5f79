"""Walk google-genai's Live pydantic models and match every field against livemesh.wire.

Starts at ``LiveClientMessage``, ``LiveServerMessage`` and ``LiveConnectConfig`` and follows every
model class their fields reach. Each SDK field is then one of:

* typed: the mapped livemesh class has a field of the same JSON name (the pydantic alias, or the
  rename in :data:`livemesh.wire.coverage.RENAMED_FIELDS`) and a compatible type: same scalar
  kind, an enum whose livemesh constants know every SDK member, a list of the same, a model class
  mapped in turn;
* raw: inside a class the omission table lists as ``raw``, reached through a livemesh field of
  free-form JSON;
* omitted: listed as ``omitted`` (or inside such a class).

Anything else is a problem, reported with the SDK field's name. ``python -m tests.wire.sdk_coverage``
prints the counts.
"""

from __future__ import annotations

import enum
import typing
from collections import deque
from typing import Any, Literal

import attrs
import pydantic
from google.genai import types

from livemesh.wire import coverage
from livemesh.wire import messages as m
from livemesh.wire.fields import WireField, wire_fields

Status = Literal["typed", "raw", "omitted"]
_RANK = {"typed": 0, "raw": 1, "omitted": 2}
ROOTS: tuple[type[pydantic.BaseModel], ...] = (
    types.LiveClientMessage,
    types.LiveServerMessage,
    types.LiveConnectConfig,
)


@attrs.define
class Report:
    """What the walk found: per SDK class its status, per field its status, and the problems."""

    classes: dict[str, Status] = attrs.Factory(dict)
    fields: dict[str, Status] = attrs.Factory(dict)
    problems: list[str] = attrs.Factory(list)

    def count(self, status: Status) -> int:
        return sum(1 for s in self.fields.values() if s == status)

    def summary(self) -> str:
        total = len(self.fields)
        return (
            f"{len(self.classes)} SDK classes, {total} fields: {self.count('typed')} typed, "
            f"{self.count('raw')} carried as raw JSON, {self.count('omitted')} omitted"
        )


def wire_class(sdk_name: str) -> type | None:
    name = coverage.CLASS_NAMES.get(sdk_name, sdk_name)
    cls = getattr(m, name, None)
    return cls if isinstance(cls, type) and attrs.has(cls) else None


def _members(tp: Any) -> list[Any]:
    """The alternatives of a (possibly Optional/Union/Annotated) annotation, None removed."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin is typing.Union or origin is getattr(__import__("types"), "UnionType", None):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                out.extend(_members(arg))
        return out
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _sdk_item(tp: Any, field_name: str) -> Any:
    """List element type; the SDK's tool lists are an ``Annotated[list, validator]`` of Tool."""
    if tp is list and field_name == "tools":
        return types.Tool
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0]
    return None


def _unspecified(value: str) -> bool:
    return "UNSPECIFIED" in value.upper()


class _Walker:
    def __init__(self) -> None:
        self.report = Report()
        self.queue: deque[tuple[type[pydantic.BaseModel], Status]] = deque()

    def visit(self, sdk_cls: type[pydantic.BaseModel], status: Status) -> None:
        name = sdk_cls.__name__
        old = self.report.classes.get(name)
        if old is not None and _RANK[old] <= _RANK[status]:
            return
        self.report.classes[name] = status
        self.queue.append((sdk_cls, status))

    def run(self) -> Report:
        for root in ROOTS:
            self.visit(root, "typed")
        while self.queue:
            sdk_cls, status = self.queue.popleft()
            if self.report.classes[sdk_cls.__name__] != status:
                continue  # upgraded since it was queued
            self._walk_class(sdk_cls, status)
        return self.report

    # ------------------------------------------------------------------ one class

    def _walk_class(self, sdk_cls: type[pydantic.BaseModel], status: Status) -> None:
        name = sdk_cls.__name__
        if status != "typed":
            for field_name, info in sdk_cls.model_fields.items():
                self.report.fields[f"{name}.{field_name}"] = status
                self._follow(info.annotation, field_name, status)
            return
        if sdk_cls is types.LiveConnectConfig:
            self._walk_connect_config()
            return
        target = wire_class(name)
        if target is None:
            self.report.problems.append(f"{name}: no livemesh class models it (nor is it in OMISSIONS)")
            return
        by_json = {f.json_name: f for f in wire_fields(target)}
        for field_name, info in sdk_cls.model_fields.items():
            self._field(name, field_name, info, by_json)

    def _walk_connect_config(self) -> None:
        name = "LiveConnectConfig"
        setup = {f.json_name: f for f in wire_fields(m.Setup)}
        generation = {f.json_name: f for f in wire_fields(m.GenerationConfig)}
        for field_name, info in types.LiveConnectConfig.model_fields.items():
            place = generation if field_name in coverage.CONNECT_GENERATION_FIELDS else setup
            self._field(name, field_name, info, place)

    def _field(self, sdk_name: str, field_name: str, info: Any, by_json: dict[str, WireField]) -> None:
        key = f"{sdk_name}.{field_name}"
        listed = coverage.OMISSIONS.get(key)
        if listed is not None:
            self.report.fields[key] = listed.kind
            self._follow(info.annotation, field_name, listed.kind)
            return
        renamed = coverage.RENAMED_FIELDS.get(key)
        json_name = (
            next(f.json_name for f in by_json.values() if f.name == renamed)
            if renamed is not None
            else (info.alias or field_name)
        )
        target = by_json.get(json_name)
        if target is None:
            self.report.problems.append(
                f"{key} (JSON {json_name!r}) is neither modelled in livemesh.wire nor listed in OMISSIONS"
            )
            return
        self.report.fields[key] = "typed"
        problem = self._compatible(info.annotation, target, target.type, field_name)
        if problem:
            self.report.problems.append(f"{key}: {problem}")

    def _follow(self, annotation: Any, field_name: str, status: Status) -> None:
        for member in _members(annotation):
            item = _sdk_item(member, field_name)
            for tp in _members(item) if item is not None else [member]:
                for inner in _members(tp):
                    if _is_model(inner):
                        self._visit_listed(inner, status)
                    elif typing.get_origin(inner) is dict:
                        value = typing.get_args(inner)[1]
                        if _is_model(value):
                            self._visit_listed(value, status)

    def _visit_listed(self, sdk_cls: type[pydantic.BaseModel], status: Status) -> None:
        listed = coverage.omission(sdk_cls.__name__)
        self.visit(sdk_cls, listed.kind if listed is not None and status == "typed" else status)

    # ------------------------------------------------------------------ types

    def _compatible(self, annotation: Any, field: WireField, ours: Any, field_name: str) -> str | None:
        """Why the SDK annotation and our field type disagree, or None. Queues model classes."""
        members = _members(annotation)
        problems = []
        for member in members:
            problem = self._one(member, field, ours, field_name)
            if problem is None:
                # The other alternatives of a union (str or File for a Content) are SDK sugar;
                # their model classes must still be modelled or listed.
                for other in members:
                    if other is not member:
                        self._follow(other, field_name, "typed")
                return None
            problems.append(problem)
        return "; ".join(problems)

    def _one(self, sdk: Any, field: WireField, ours: Any, field_name: str) -> str | None:
        item = _sdk_item(sdk, field_name)
        if item is not None:
            if typing.get_origin(ours) is not list:
                return f"the SDK has a list, livemesh {ours!r}"
            return self._compatible(item, field, typing.get_args(ours)[0], field_name)
        if _is_model(sdk):
            listed = coverage.omission(sdk.__name__)
            if ours in (m.JSONObject, Any):
                if listed is None or listed.kind != "raw":
                    return f"livemesh keeps {sdk.__name__} as raw JSON without an OMISSIONS entry"
                self.visit(sdk, "raw")
                return None
            expected = wire_class(sdk.__name__)
            if ours is not expected or expected is None:
                ours_name = coverage.CLASS_NAMES.get(sdk.__name__, sdk.__name__)
                return f"{sdk.__name__} should be livemesh {ours_name}"
            self.visit(sdk, "typed")
            return None
        if isinstance(sdk, type) and issubclass(sdk, enum.Enum):
            if ours is not str or field.enum is None:
                return f"enum {sdk.__name__} should be a str field with an enum constants class"
            missing = {e.value for e in sdk if not _unspecified(e.value)} - set(m.known_values(field.enum))
            if missing:
                return f"{field.enum.__name__} lacks {sorted(missing)}"
            return None
        if typing.get_origin(sdk) is Literal:
            if ours is m.NullValue and typing.get_args(sdk) == ("NULL_VALUE",):
                return None
            return None if ours is str else f"Literal should be str, livemesh {ours!r}"
        if typing.get_origin(sdk) is dict:
            _key, value = typing.get_args(sdk)
            if value is str:
                return None if ours == m.StringMap else f"dict[str, str] should be StringMap, not {ours!r}"
            if value is Any:
                return None if ours == m.JSONObject else f"dict[str, Any] should be JSONObject, not {ours!r}"
            return f"unexpected dict type {sdk!r}"
        if sdk is Any:
            return None if ours in (Any, m.JSONObject) else f"Any should be Any, not {ours!r}"
        scalar = {
            bool: (bool,),
            int: (int, m.Int64),
            float: (float,),
            bytes: (bytes,),
            str: (str, m.Duration),
        }
        if sdk in scalar:
            return None if ours in scalar[sdk] else f"{sdk.__name__} should be {scalar[sdk]}, not {ours!r}"
        return f"no rule for SDK type {sdk!r}"


def walk() -> Report:
    """Walk the SDK's Live types (see the module docstring)."""
    return _Walker().run()


if __name__ == "__main__":
    report = walk()
    print(report.summary())
    for problem in report.problems:
        print("PROBLEM", problem)
