"""The session actor against the reference server model (tests/session/stateful.py), in the four
worlds: Gemini API or Vertex, hostile or behaved. Slower than the core's (each step crosses into
a trio thread), so fewer examples in CI; ``--hypothesis-profile=stateful-deep`` runs many more."""

from __future__ import annotations

from livemesh.session import SessionConfig
from tests.session.actor_client import ActorClient
from tests.session.servermodel import ServerModel
from tests.session.stateful import Client, SessionMachine, scaled, worlds

ACTOR_SETTINGS = scaled(40, 40)


class ActorMachine(SessionMachine):
    def make_client(self, model: ServerModel, config: SessionConfig) -> Client:
        return ActorClient(model, config)


TestGeminiHostile, TestGeminiBehaved, TestVertexHostile, TestVertexBehaved = worlds(
    ActorMachine, ACTOR_SETTINGS
)
