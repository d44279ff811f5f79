"""What a message class carries, read from its attrs fields and type hints (no hypothesis here).

The strategies and the reference JSON writer both walk message classes through :func:`fields_of`,
so a field added to a class in :mod:`livemesh.wire.messages` is generated and written without any
change here. Two conventions of the message classes are honoured when present: an enum-valued
field names its constants class in ``metadata["enum"]``, and a field with ``metadata["extra"]``
holds the JSON members the class does not model.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

import attrs

from livemesh.wire import messages as m

__all__ = ["Field", "camel", "fields_of", "known_values", "message_classes", "strip_optional"]


def camel(name: str) -> str:
    """``turn_complete`` -> ``turnComplete``: the protobuf JSON name of a field."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; any other type -> ``(type, False)``."""
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return next(arg for arg in args if arg is not type(None)), True
    return tp, False


def known_values(constants: type) -> tuple[str, ...]:
    """The values a constants class (``Modality``, ``Behavior`` ...) knows, in definition order."""
    return tuple(v for k, v in vars(constants).items() if k.isupper() and isinstance(v, str))


@attrs.frozen
class Field:
    """One field of a message class, as the wire sees it."""

    name: str
    json_name: str
    type: Any
    """The resolved type, ``Optional`` removed."""
    optional: bool
    default: Any
    enum: type | None
    """The constants class of an enum-valued field."""
    extra: bool
    """Whether this field holds the JSON members the class does not model."""

    @property
    def item_type(self) -> Any:
        """The element type of a list field, else the field's type."""
        if typing.get_origin(self.type) is list:
            return typing.get_args(self.type)[0]
        return self.type


@functools.cache
def fields_of(cls: type) -> tuple[Field, ...]:
    """The fields of a message class in declaration order (its ``extra`` field included, marked)."""
    hints = typing.get_type_hints(cls)
    out = []
    for attribute in attrs.fields(cls):
        tp, optional = strip_optional(hints[attribute.name])
        out.append(
            Field(
                name=attribute.name,
                json_name=camel(attribute.name),
                type=tp,
                optional=optional,
                default=attribute.default,
                enum=attribute.metadata.get("enum"),
                extra=bool(attribute.metadata.get("extra")),
            )
        )
    return tuple(out)


@functools.cache
def message_classes() -> tuple[type, ...]:
    """Every attrs class of :mod:`livemesh.wire.messages` (the set the converter registers)."""
    return tuple(
        obj
        for obj in vars(m).values()
        if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == m.__name__
    )
