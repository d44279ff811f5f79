"""The sans-I/O core against the reference server model (tests/session/stateful.py), driven
synchronously: many examples in CI, far more under the ``stateful-deep`` hypothesis profile
(``pytest tests/session/core/test_stateful_core.py --hypothesis-profile=stateful-deep``)."""

from __future__ import annotations

from livemesh.session import SessionConfig
from tests.session.core.core_client import CoreClient
from tests.session.servermodel import ServerModel
from tests.session.stateful import Client, SessionMachine, scaled, worlds

CORE_SETTINGS = scaled(300, 60)


class CoreMachine(SessionMachine):
    def make_client(self, model: ServerModel, config: SessionConfig) -> Client:
        return CoreClient(model, config)


TestGeminiHostile, TestGeminiBehaved, TestVertexHostile, TestVertexBehaved = worlds(
    CoreMachine, CORE_SETTINGS
)
