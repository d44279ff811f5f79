"""Shared helpers for session tests: an in-process emulator and session configs pointed at it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from livemesh.auth import ApiKey, VertexAI
from livemesh.emulator import EmulatorConfig, open_emulator
from livemesh.emulator.app import Emulator
from livemesh.limits import ServiceLimits
from livemesh.session import RetryPolicy, RotationPolicy, SessionConfig

TEXT_MODEL = "gemini-2.0-flash-live-001"
AUDIO_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


async def _token() -> str:
    return "test-bearer-token"


def vertex_auth() -> VertexAI:
    return VertexAI(project="proj", location="us-central1", token_provider=_token)


def make_config(emu: Emulator, *, vertex: bool = False, **options: Any) -> SessionConfig:
    """A session config for the emulator: fast retries, no timer unless asked."""
    options.setdefault("model", TEXT_MODEL)
    options.setdefault("generation_config", {"response_modalities": ["TEXT"]})
    options.setdefault("retry", RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05))
    options.setdefault("rotation", RotationPolicy(timer=False, quiet_timeout_s=2.0, handle_timeout_s=2.0))
    if vertex:
        options.setdefault("auth", vertex_auth())
        options.setdefault("session_resumption", {"transparent": True})
    else:
        options.setdefault("auth", ApiKey("test-key-123"))
    return SessionConfig(base_url=emu.url, **options)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(resumption_update_interval_s=0.05, limits=ServiceLimits())


@pytest.fixture
async def emu(emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    async with open_emulator(emulator_config) as emulator:
        yield emulator


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """pytest-trio's virtual clock, jumping ahead once every task has been blocked for 2 s of real
    time: a healthy test never is, and a stuck one then reaches its ``fail_after`` and fails
    instead of hanging the run (virtual time never passes on its own)."""
    return trio.testing.MockClock(autojump_threshold=2.0)


class NoKeepalive:
    """The keepalive part of a fake ``Connection``: off (a scripted peer never falls silent)."""

    def set_keepalive(self, *, interval: float | None, pong_timeout: float, by_caller: bool = False) -> None:
        return None

    def keepalive_deadline(self) -> float:
        return math.inf

    async def keepalive(self) -> None:
        return None
