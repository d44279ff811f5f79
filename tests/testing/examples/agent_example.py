"""An emulator test of a tool-using agent that survives a goAway."""

import json

import pytest
import trio

import livemesh
from livemesh.emulator import Emulator, EmulatorConfig


def get_weather(city: str) -> dict[str, str]:
    """The weather in a city."""
    return {"city": city, "sky": "sunny"}


class WeatherAgent:
    """The agent under test: it asks the model, which calls its tool."""

    def __init__(self, session: livemesh.Session) -> None:
        self.session = session

    async def forecast(self, city: str) -> str:
        # The emulator's scripted model turns "call NAME {args}" into a toolCall.
        return await self.session.ask(f"call get_weather {json.dumps({'city': city})}")


# A fresh resumption handle every 0.2 s, so one covers each tool call soon after it.
@pytest.mark.parametrize("emulator_config", [EmulatorConfig(resumption_update_interval_s=0.2)])
async def test_the_agent_survives_a_go_away(emulator: Emulator) -> None:
    async with livemesh.open_session(
        model="gemini-live-2.5-flash-preview",
        auth="test-key",
        base_url=emulator.url,
        response_modalities=["TEXT"],
        tools=[get_weather],
    ) as session:
        agent = WeatherAgent(session)
        assert await agent.forecast("Paris") == 'get_weather returned {"city": "Paris", "sky": "sunny"}'
        await emulator.send_go_away(time_left=1.0)  # the service will end this connection soon
        with trio.fail_after(5):
            await session.wait_moved(1)  # the session resumed on a new connection
        assert await agent.forecast("Oslo") == 'get_weather returned {"city": "Oslo", "sky": "sunny"}'
        stats = json.loads(await session.ask("stats"))  # the scripted model's own count
        assert stats["tool_responses"] == 2
    server = emulator.stats(session.server_session_id)
    assert server.connections == 2 and server.resumptions == 1
