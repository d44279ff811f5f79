"""Every code block in README.md is checked: ```python blocks run as written (against the
in-process emulator) and what a ``print(...)  # text`` comment promises must be printed; every
```sh command is one that CI runs word for word (a script under .ci/), or one another test runs
exactly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
# Every CI script (.ci/run calls the others, e.g. .ci/docs): a command any of them runs counts.
CI_SCRIPTS = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / ".ci").iterdir()))

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
BLOCKS = [(m.group(1), m.group(2), README.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(README)]
PYTHON = [(code, line) for lang, code, line in BLOCKS if lang == "python"]
SHELL = [(code, line) for lang, code, line in BLOCKS if lang == "sh"]

# Commands another test runs exactly as README shows them: the command and that test's marker.
EXERCISED = {
    "python -m livemesh chat": ("tests/test_chat.py", '["-m", "livemesh", "chat"]'),
    "python examples/text_chat.py": ("tests/examples/test_examples.py", 'run_example("text_chat.py")'),
    "python examples/audio_streaming.py --fast": (
        "tests/examples/test_examples.py",
        'run_example("audio_streaming.py", "--fast"',
    ),
    "python examples/session_resumption.py": (
        "tests/examples/test_examples.py",
        'run_example("session_resumption.py")',
    ),
    "python examples/function_calling.py": (
        "tests/examples/test_examples.py",
        'run_example("function_calling.py")',
    ),
    "python examples/web_voice.py": (
        "tests/examples/test_web_voice.py",
        'str(EXAMPLES / "web_voice.py"), "--port", "0"',
    ),
}
PRINT_PROMISE = re.compile(r"^\s*print\(.*\)\s*#\s*(.+?)\s*$")


def test_readme_has_its_sections_in_order() -> None:
    headings = re.findall(r"^## (.+)$", README, re.M)
    wanted = [
        "What it is, and why",
        "Install",
        "Quickstart",
        "Concepts",
        "The emulator",
        "Configuration",
        "Errors",
        "Deployment",
        "Numbers",
        "How it compares",
    ]
    assert headings == wanted
    assert len(PYTHON) >= 4 and len(SHELL) >= 3


def test_quickstart_is_at_most_15_lines() -> None:
    section = README.split("## Quickstart", 1)[1]
    code = _FENCE.search(section)
    assert code is not None and code.group(1) == "python"
    assert len(code.group(2).splitlines()) <= 15


@pytest.mark.parametrize(("code", "line"), PYTHON, ids=[f"README.md:{line}" for _, line in PYTHON])
def test_python_block_runs(code: str, line: int, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = {"__name__": "__main__"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # our own README
    printed = capsys.readouterr().out
    for promised in (m.group(1) for m in map(PRINT_PROMISE.match, code.splitlines()) if m):
        assert promised in printed, f"README.md:{line} promised {promised!r}, printed {printed!r}"


def _commands() -> list[tuple[str, int]]:
    found = []
    for code, line in SHELL:
        for text in code.splitlines():
            found.extend((part.strip(), line) for part in text.split("&&") if part.strip())
    return found


@pytest.mark.parametrize(("command", "line"), _commands(), ids=[c for c, _ in _commands()])
def test_shell_command_is_run_somewhere(command: str, line: int) -> None:
    if any(row.strip() == command for row in CI_SCRIPTS.splitlines()):
        return  # a CI script runs it word for word
    if command == "python -m livemesh bench":
        # The whole bench takes ~1 min (tests/bench covers its parts); here: it exists and parses.
        done = subprocess.run(
            [sys.executable, "-m", "livemesh", "bench", "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0 and "--sessions" in done.stdout
        return
    assert command in EXERCISED, f"README.md:{line}: no test runs {command!r}"
    path, marker = EXERCISED[command]
    assert marker in (ROOT / path).read_text(encoding="utf-8")


def test_the_two_commands_are_the_ones_ci_runs() -> None:
    """Install + bench and install + tests come first, word for word (CI runs them)."""
    section = README.split("## Install", 1)[1].split("\n## ", 1)[0]
    commands = [code.strip() for lang, code in _FENCE.findall(section) if lang == "sh"]
    assert commands[:2] == [
        "python -m pip install -e '.[test]' && python -m livemesh bench",
        "python -m pip install -e '.[test]' && python -m pytest -q -p no:cacheprovider",
    ]
    assert SHELL[0][0].strip() == commands[0]
    assert "python -m pip install -e '.[test]'" in CI
    assert "python -m pytest -q -p no:cacheprovider" in CI


def test_configuration_names_in_readme_exist() -> None:
    """The configuration table never names a field that is not there (and misses none of the
    session's own fields), so README cannot drift from the code unnoticed."""
    import attrs

    import livemesh

    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    named = set(re.findall(r"`([a-z_]+)`", table))
    known = {
        a.name
        for cls in (livemesh.SessionConfig, livemesh.RotationPolicy, livemesh.RetryPolicy, livemesh.Callbacks)
        for a in attrs.fields(cls)
    }
    assert named <= known, f"README names unknown options: {sorted(named - known)}"
    public = {a.name for a in attrs.fields(livemesh.SessionConfig) if a.init and not a.name.startswith("_")}
    assert public <= named, f"SessionConfig fields README does not list: {sorted(public - named)}"
