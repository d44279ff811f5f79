"""Checks of user settings that raise :class:`~livemesh.errors.ConfigError` naming the setting.

attrs' own validators raise ``ValueError``/``TypeError`` with attrs' wording; livemesh promises
one typed error for every bad setting, raised where the setting is made, whose message names
the class, the field and the value refused. The plain functions serve classes that are not attrs
classes (they take the name to show); the attrs validators name ``Class.field`` themselves.

A ``bool`` is never accepted as a number (``True`` would pass as 1), and NaN fails every bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any

import attrs

from livemesh.errors import ConfigError

__all__ = [
    "at_least",
    "check_int_at_least",
    "check_non_negative",
    "check_positive",
    "instance_of",
    "non_negative",
    "one_of",
    "positive",
    "probability",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_positive(name: str, value: object) -> None:
    """Refuse anything but a number above 0 (``inf`` is allowed: "no bound").

    Args:
        name: The setting, as the message shows it.
        value: Its value.

    Raises:
        ConfigError: ``value`` is not a number, or not above 0.
    """
    if not _is_number(value) or not value > 0:  # type: ignore[operator]
        raise ConfigError(f"{name} must be a positive number, not {value!r}")


def check_non_negative(name: str, value: object) -> None:
    """Refuse anything but a finite number >= 0.

    Args:
        name: The setting, as the message shows it.
        value: Its value.

    Raises:
        ConfigError: ``value`` is not a number, is negative, or is not finite.
    """
    if not _is_number(value) or not 0 <= value < math.inf:  # type: ignore[operator]
        raise ConfigError(f"{name} must be a finite number >= 0, not {value!r}")


def check_int_at_least(name: str, value: object, minimum: int) -> None:
    """Refuse anything but an ``int`` >= ``minimum``.

    Args:
        name: The setting, as the message shows it.
        value: Its value.
        minimum: The smallest value allowed.

    Raises:
        ConfigError: ``value`` is not an ``int`` (a ``bool`` is not one here), or is too small.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, not {value!r}")


def _name(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def positive(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a number above 0 (see :func:`check_positive`)."""
    check_positive(_name(instance, attribute), value)


def non_negative(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a finite number >= 0 (see :func:`check_non_negative`)."""
    check_non_negative(_name(instance, attribute), value)


def probability(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """attrs validator: a number in [0, 1]."""
    if not _is_number(value) or not 0 <= value <= 1:  # type: ignore[operator]
        raise ConfigError(f"{_name(instance, attribute)} must be a probability in [0, 1], not {value!r}")


def at_least(minimum: int) -> Validator:
    """attrs validator: an ``int`` >= ``minimum`` (see :func:`check_int_at_least`).

    Args:
        minimum: The smallest value allowed.

    Returns:
        The validator.
    """

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int_at_least(_name(instance, attribute), value, minimum)

    return validate


def instance_of(*types: type) -> Validator:
    """attrs validator: an instance of one of ``types`` (the message names the type refused).

    Args:
        *types: The types allowed.

    Returns:
        The validator.
    """
    wanted = " or ".join(t.__name__ for t in types)

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, types):
            raise ConfigError(f"{_name(instance, attribute)} must be {wanted}, not {type(value).__name__}")

    return validate


def one_of(choices: Collection[object]) -> Validator:
    """attrs validator: one of ``choices``.

    Args:
        choices: The values allowed.

    Returns:
        The validator.
    """

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ConfigError(f"{_name(instance, attribute)} must be one of {listed}, not {value!r}")

    return validate
