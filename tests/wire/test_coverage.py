"""Every field of the official SDK's Live types is modelled or listed as a deliberate omission.

The walk (``tests/wire/sdk_coverage.py``) starts at ``LiveClientMessage``, ``LiveServerMessage`` and
``LiveConnectConfig``; a new SDK release that adds a field fails the first test here, naming it.
"""

from __future__ import annotations

import typing
from typing import Any

import attrs
import pytest
from google.genai import types

from livemesh import wire
from livemesh.wire import coverage
from livemesh.wire import messages as m
from livemesh.wire.fields import wire_fields
from tests.wire import sdk_coverage
from tests.wire.strategies import MESSAGE_CLASSES


def test_every_sdk_live_field_is_modelled_or_listed() -> None:
    report = sdk_coverage.walk()
    assert report.problems == [], "\n".join(report.problems)
    assert report.count("typed") > report.count("omitted")
    assert len(report.fields) == report.count("typed") + report.count("raw") + report.count("omitted")


def _sdk_class(name: str) -> Any:
    return getattr(types, name, None)


@pytest.mark.parametrize("key", sorted(coverage.OMISSIONS))
def test_each_omission_names_a_real_sdk_field_and_is_reached(key: str) -> None:
    """No stale entries: the class (and field) exist in the SDK and the walk meets them."""
    class_name, _, field = key.partition(".")
    cls = _sdk_class(class_name)
    assert cls is not None, f"{key}: the SDK has no class {class_name}"
    if field:
        assert field in cls.model_fields, f"{key}: the SDK's {class_name} has no field {field}"
    report = sdk_coverage.walk()
    reached = report.fields if field else report.classes
    assert key in reached, f"{key} is listed but the walk never reaches it"
    assert reached[key] == coverage.OMISSIONS[key].kind
    assert coverage.OMISSIONS[key].reason


@pytest.mark.parametrize("key", sorted(coverage.RENAMED_FIELDS))
def test_each_rename_names_a_real_field_on_both_sides(key: str) -> None:
    class_name, _, field = key.partition(".")
    assert field in _sdk_class(class_name).model_fields
    ours = sdk_coverage.wire_class(class_name)
    assert ours is not None
    assert coverage.RENAMED_FIELDS[key] in {f.name for f in wire_fields(ours)}


@pytest.mark.parametrize("name", sorted(coverage.CLASS_NAMES))
def test_each_class_mapping_names_real_classes(name: str) -> None:
    assert _sdk_class(name) is not None
    assert sdk_coverage.wire_class(name) is not None


# ----------------------------------------------------------------------------- the walk can fail


def test_a_field_neither_modelled_nor_listed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {k: v for k, v in coverage.OMISSIONS.items() if k != "GenerationConfig.stop_sequences"}
    monkeypatch.setattr(coverage, "OMISSIONS", table)
    problems = sdk_coverage.walk().problems
    assert problems == [
        "GenerationConfig.stop_sequences (JSON 'stopSequences') is neither modelled in livemesh.wire "
        "nor listed in OMISSIONS"
    ]


def test_raw_json_without_a_table_entry_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {k: v for k, v in coverage.OMISSIONS.items() if k != "GoogleMaps"}
    monkeypatch.setattr(coverage, "OMISSIONS", table)
    problems = sdk_coverage.walk().problems
    assert problems == ["Tool.google_maps: livemesh keeps GoogleMaps as raw JSON without an OMISSIONS entry"]


def test_an_enum_value_livemesh_lacks_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(m.InteractionStatus, "IDLE")
    problems = sdk_coverage.walk().problems
    assert problems == ["LiveServerContent.interaction_status: InteractionStatus lacks ['IDLE']"]


def test_a_mistyped_field_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = wire_fields(m.Transcription)
    wrong = tuple(attrs.evolve(f, type=int) if f.name == "finished" else f for f in fields)
    real = sdk_coverage.wire_fields

    def patched(cls: type) -> Any:
        return wrong if cls is m.Transcription else real(cls)

    monkeypatch.setattr(sdk_coverage, "wire_fields", patched)
    problems = sdk_coverage.walk().problems
    assert problems == ["Transcription.finished: bool should be (<class 'bool'>,), not <class 'int'>"]


# ----------------------------------------------------------------------------- enums


ENUM_FIELDS = [(cls, f) for cls in MESSAGE_CLASSES for f in wire_fields(cls) if f.enum is not None]


@pytest.mark.parametrize(
    ("cls", "field"), ENUM_FIELDS, ids=lambda x: getattr(x, "__name__", getattr(x, "name", ""))
)
def test_enums_decode_values_they_do_not_know_yet(cls: type, field: Any) -> None:
    future = "A_VALUE_FROM_NEXT_YEAR"
    value: Any = [future] if typing.get_origin(field.type) is list else future
    decoded = wire.converter.structure({field.json_name: value}, cls)
    assert getattr(decoded, field.name) == value
    assert wire.converter.unstructure(decoded) == {field.json_name: value}
