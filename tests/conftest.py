"""Fixtures shared by the whole suite."""

from __future__ import annotations

import pytest

from livemesh.transport import ENGINES, Engine


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each WebSocket engine's name in turn (``TransportOptions(engine=...)``): a test taking this
    fixture runs once per engine."""
    name: Engine = request.param
    return name
