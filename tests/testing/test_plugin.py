"""The pytest plugin, exercised as a user's project runs it: through pytest's own ``pytester``.

Each test writes a small project (its test files and pytest configuration) and runs pytest on
it. Nothing in these projects loads the plugin explicitly: pytest finds it through livemesh's
``pytest11`` entry point, as it would in a user's environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).parent / "examples"

TRIO_MODE = """
[pytest]
trio_mode = true
"""

EMULATOR_TEST = """
import livemesh


async def test_hello(emulator):
    async with livemesh.open_session(
        model="gemini-live-2.5-flash-preview", auth="test-key", base_url=emulator.url,
        response_modalities=["TEXT"],
    ) as session:
        assert await session.ask("hello") == "You said: hello"
    assert emulator.stats(session.server_session_id).turns == 1
    assert emulator.http_url.startswith("http://127.0.0.1:")
"""

SCRIPTED_TEST = """
from hypothesis import given, settings

import livemesh
from livemesh.testing import strategies as lst


@settings(max_examples=5, deadline=None)
@given(turn=lst.model_turns("TEXT"))
async def test_a_drawn_turn(turn, scripted_server):
    async with scripted_server(turn) as server:
        async with livemesh.open_session(
            model="m", auth="test-key", base_url=server.url, response_modalities=["TEXT"],
            session_resumption=False,
        ) as session:
            await session.receive()  # setupComplete
            received = [await session.receive() for _ in turn]
    assert received == turn
    assert server.connections[0].setup.model == "models/m"
"""


def _project(pytester: pytest.Pytester, ini: str, **files: str) -> None:
    pytester.makeini(ini)
    pytester.makepyfile(**{name: textwrap.dedent(text) for name, text in files.items()})


def test_a_trio_mode_project_gets_the_fixtures_with_nothing_in_its_conftest(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester, TRIO_MODE, test_emulator=EMULATOR_TEST, test_scripted=SCRIPTED_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_project_that_marks_its_trio_tests_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    marked = {
        name: "import pytest\npytestmark = pytest.mark.trio\n" + textwrap.dedent(text)
        for name, text in (("test_emulator", EMULATOR_TEST), ("test_scripted", SCRIPTED_TEST))
    }
    _project(pytester, "[pytest]\n", **marked)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_emulator_config_comes_from_a_conftest_or_a_parametrize(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        TRIO_MODE,
        conftest="""
        import pytest
        from livemesh.emulator import EmulatorConfig

        @pytest.fixture
        def emulator_config():
            return EmulatorConfig(chunks_per_reply=3)
        """,
        test_config="""
        import pytest
        from livemesh.emulator import EmulatorConfig

        async def test_from_the_conftest(emulator):
            assert emulator.config.chunks_per_reply == 3

        @pytest.mark.parametrize("emulator_config", [EmulatorConfig(chunks_per_reply=7)])
        async def test_from_a_parametrize(emulator):
            assert emulator.config.chunks_per_reply == 7
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_handler_that_breaks_on_some_stream_fails_its_property_test(pytester: pytest.Pytester) -> None:
    """The fixture does not swallow what the test finds: a handler that cannot take an
    interruption fails, and hypothesis reports the stream that broke it."""
    _project(
        pytester,
        TRIO_MODE,
        test_broken="""
        from hypothesis import given, settings

        import livemesh
        from livemesh.testing import strategies as lst


        def handle(message):
            if message.server_content is not None and message.server_content.interrupted:
                raise RuntimeError("nobody told me turns can be interrupted")


        @settings(max_examples=50, deadline=None, database=None)
        @given(stream=lst.server_streams(modality="TEXT"))
        async def test_handler(stream, scripted_server):
            async with scripted_server(stream) as server:
                async with livemesh.open_session(
                    model="m", auth="test-key", base_url=server.url, response_modalities=["TEXT"],
                    session_resumption=False, rotation=livemesh.RotationPolicy(on_go_away=False),
                    close_timeout=0.1,
                ) as session:
                    for _ in stream:
                        handle(await session.receive())
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines(
        [r".*(Falsifying example|Failing test case).*", r".*nobody told me turns can be.*"]
    )


def test_the_documented_examples_pass(pytester: pytest.Pytester) -> None:
    """The two complete examples of the "Testing your agent" page, run as a user's tests."""
    files = {f"test_{path.stem}": path.read_text(encoding="utf-8") for path in sorted(EXAMPLES.glob("*.py"))}
    assert set(files) == {"test_agent_example", "test_handler_example"}
    _project(pytester, TRIO_MODE, **files)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    _project(pytester, TRIO_MODE, test_emulator=EMULATOR_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:livemesh")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'emulator' not found*"])


def _hide_hypothesis(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import hypothesis`` fail in the subprocesses, as if it were not installed."""
    shadow = pytester.mkdir("hidden")
    (shadow / "hypothesis").mkdir()
    (shadow / "hypothesis" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'hypothesis' (hidden by the test)\")\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(shadow), *sys.path]))


def test_without_hypothesis_the_plugin_still_loads_and_its_fixtures_work(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hide_hypothesis(pytester, monkeypatch)
    _project(
        pytester,
        TRIO_MODE,
        test_emulator=EMULATOR_TEST,
        test_import="""
        import pytest

        def test_strategies_say_what_to_install():
            with pytest.raises(ImportError, match=r"pip install 'livemesh\\[testing\\]'"):
                import livemesh.testing.strategies

        def test_the_rest_of_livemesh_testing_imports():
            from livemesh.testing import open_scripted_server, to_json
        """,
    )
    # Where hypothesis is not installed, neither is its own pytest plugin.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=3)


def test_without_pytest_trio_the_plugin_loads_and_harms_nothing(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        "[pytest]\n",
        test_sync="""
        def test_plain():
            assert 1 + 1 == 2

        def test_the_factory(scripted_server):
            from livemesh.testing import open_scripted_server
            assert scripted_server is open_scripted_server
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:trio")
    result.assert_outcomes(passed=2)
    listing = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:trio", "--fixtures")
    listing.stdout.fnmatch_lines(["*emulator_config*", "*scripted_server*"])


def test_livemesh_its_testing_package_and_the_plugin_never_import_hypothesis() -> None:
    """The core library does not depend on hypothesis: only livemesh.testing.strategies imports it."""
    code = (
        "import sys, livemesh, livemesh.emulator, livemesh.testing, livemesh.testing.plugin\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'\n"
        "import livemesh.testing.strategies\n"
        "assert 'hypothesis' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
