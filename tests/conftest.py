"""Fixtures and hypothesis profiles shared by the whole suite.

``stateful-deep`` runs the session's stateful tests (tests/session/core/test_stateful_core.py,
tests/session/test_stateful_actor.py) 50 times longer than CI does, with longer runs of steps:
select it with ``python -m pytest tests/session --hypothesis-profile=stateful-deep`` (an hour
or more; ``-k core`` for the core's alone). The stateful tests scale their CI counts by the
profile's (tests/session/stateful.py, ``scaled``); other tests simply run 5,000 examples.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from livemesh.transport import ENGINES, Engine

settings.register_profile(
    "stateful-deep",
    max_examples=5000,
    stateful_step_count=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each WebSocket engine's name in turn (``TransportOptions(engine=...)``): a test taking this
    fixture runs once per engine."""
    name: Engine = request.param
    return name
