"""The field-derived strategies: every field of every class is generated, with the right types,
and a class or field added later is covered without any change to livemesh.testing."""

from __future__ import annotations

import typing
from typing import Any

import attrs
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from livemesh.testing import strategies as lst
from livemesh.testing._fields import fields_of, known_values, message_classes
from livemesh.wire import messages as m
from tests.testing.budget import PER_CLASS, PURE

CLASSES = message_classes()


def _conforms(value: Any, tp: Any) -> bool:
    """Whether ``value`` is a value of field type ``tp`` (as the codec reads the types)."""
    if tp is Any:
        return value is not None
    if tp is m.Int64:
        return type(value) is int and -(2**63) <= value < 2**63
    if tp is m.Duration:
        return type(value) is float and value >= 0
    supertype = getattr(tp, "__supertype__", None)
    if supertype is not None:
        return isinstance(value, supertype)
    if tp is int:
        return type(value) is int and -(2**31) <= value < 2**31
    if tp is float:
        return type(value) is float and value == value and abs(value) != float("inf")
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_conforms(v, item) for v in value)
    if origin is dict:
        key, item = typing.get_args(tp)
        return isinstance(value, dict) and all(
            _conforms(k, key) and (item is Any or _conforms(v, item)) for k, v in value.items()
        )
    return isinstance(value, tp)


def test_every_field_of_every_class_has_a_strategy() -> None:
    """Building the strategies walks every field type: a type nothing knows raises here."""
    for profile in (lst.WIRE, lst.KNOWN):
        for cls in CLASSES:
            for field in fields_of(cls):
                profile.for_field(cls, field.name)
                profile.for_field(cls, field)  # a field description names its field too
            profile.messages(cls)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@PER_CLASS
@given(data=st.data())
def test_every_field_draws_values_of_its_type(cls: type, data: st.DataObject) -> None:
    for field in fields_of(cls):
        if field.extra:
            continue
        value = data.draw(lst.WIRE.value(cls, field.name), label=field.name)
        assert _conforms(value, field.type), (cls.__name__, field.name, value)
    instance = data.draw(lst.messages(cls))
    assert type(instance) is cls


@PURE
@given(lst.client_messages())
def test_a_client_message_sets_exactly_one_oneof_field(message: m.ClientMessage) -> None:
    assert sum(getattr(message, name) is not None for name in m.CLIENT_ONEOF) == 1


@PURE
@given(lst.server_messages())
def test_a_server_message_sets_at_most_one_oneof_field_and_is_never_empty(message: m.ServerMessage) -> None:
    assert sum(getattr(message, name) is not None for name in m.SERVER_ONEOF) <= 1
    assert message.kind != ""


@PURE
@given(lst.server_messages(["tool_call", "usage_metadata"]))
def test_kinds_choose_the_oneof_fields(message: m.ServerMessage) -> None:
    assert message.kind in ("tool_call", "usage_metadata")


def test_kinds_must_name_oneof_fields() -> None:
    with pytest.raises(ValueError, match="kinds"):
        lst.server_messages(["setup"])
    with pytest.raises(ValueError, match="kinds"):
        lst.client_messages([])


def test_a_field_type_nothing_knows_is_an_error_not_a_gap() -> None:
    with pytest.raises(TypeError, match="no strategy for field type"):
        lst.WIRE.for_type(complex)


def test_overrides_and_exclusions_must_name_real_fields() -> None:
    with pytest.raises(ValueError, match="no field"):
        lst.MessageStrategies(overrides={(m.Part, "nope"): st.none()})
    with pytest.raises(ValueError, match="no field"):
        lst.MessageStrategies(exclude=[(m.Part, "nope")])


FIXED = lst.MessageStrategies(
    overrides={(m.Transcription, "text"): st.just("fixed")}, exclude=[(m.Transcription, "finished")]
)


@PURE
@given(FIXED.messages(m.Transcription))
def test_overrides_and_exclusions_apply(transcription: m.Transcription) -> None:
    assert transcription.text in (None, "fixed")
    assert transcription.finished is None


# A module standing in for a newer wire module: a class with fields of every kind the message
# classes use, one of them an enum-valued field naming its constants class, one the unknown
# members. The strategies must cover it with no change on their side.


class Mood:
    CALM = "CALM"
    LOUD = "LOUD"


@attrs.define
class NewThing:
    label: str | None = None
    count: int | None = None
    big: m.Int64 | None = None
    wait: m.Duration | None = None
    data: bytes | None = None
    mood: str | None = attrs.field(default=None, metadata={"enum": Mood})
    moods: list[str] | None = attrs.field(default=None, metadata={"enum": Mood})
    parts: list[m.Part] | None = None
    tags: dict[str, str] | None = None
    payload: dict[str, Any] | None = None
    extra: dict[str, Any] | None = attrs.field(default=None, metadata={"extra": True})


@PURE
@given(st.data())
def test_a_class_added_later_is_generated_from_its_field_types(data: st.DataObject) -> None:
    thing = data.draw(lst.KNOWN.messages(NewThing))
    for field in fields_of(NewThing):
        value = getattr(thing, field.name)
        if value is not None and not field.extra:
            assert _conforms(value, field.type), (field.name, value)
    assert thing.mood in (None, *known_values(Mood))
    assert all(v in known_values(Mood) for v in thing.moods or ())
    assert thing.extra is None  # KNOWN: no unknown members


def test_the_wire_profile_reaches_unknown_enum_values_and_members() -> None:
    """WIRE may set an enum field to text its constants class does not know, and ``extra``."""
    find(lst.WIRE.messages(NewThing), lambda t: t.mood is not None and t.mood not in known_values(Mood))
    thing = find(lst.WIRE.messages(NewThing), lambda t: bool(t.extra))
    assert all(key.startswith("zz") for key in thing.extra)


def test_unknown_member_names_are_unknown_to_every_class() -> None:
    names = {name for cls in CLASSES for f in fields_of(cls) for name in (f.name, f.json_name)}
    assert not any(name.startswith("zz") for name in names)
