"""The API reference renders every public name of livemesh.testing, its strategies and its plugin."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "testing.md"
MODULES = ["livemesh.testing", "livemesh.testing.strategies", "livemesh.testing.plugin"]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_rendered(module_name: str) -> None:
    rendered = set(re.findall(r"^:::\s+([\w.]+)\s*$", PAGE.read_text(encoding="utf-8"), re.M))
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if f"{module_name}.{name}" not in rendered]
    assert not missing, f"{module_name}: public names {PAGE.name} does not render: {missing}"
