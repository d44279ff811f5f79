"""``python -m livemesh chat`` driven through a pseudo-terminal, as a person would use it: type,
watch the reply stream in, force a rotation, check the conversation survived, read the stats,
leave with Ctrl-C / ``/quit`` / Ctrl-D. Each expectation has a bounded timeout."""

from __future__ import annotations

import os
import re
import signal
import sys

import pexpect

PROMPT = r"you>(?:\x1b\[[0-9;]*m)* "
"""The prompt, in whatever colour the terminal gets."""
TIMEOUT = 10


def spawn() -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(TERM="xterm-256color", COLUMNS="160", LINES="50")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "livemesh", "chat"],
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(50, 160),
        # As a terminal starts it: a suite run in the background (a CI step may be) passes SIGINT
        # on ignored, and Ctrl-C would never reach the chat.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    child.expect("in-process emulator at ws://127.0.0.1:")
    child.expect(PROMPT)
    return child


def say(child: pexpect.spawn, line: str) -> None:
    child.sendline(line)
    child.expect_exact(line)  # the terminal echoes what was typed


def finish(child: pexpect.spawn) -> str:
    """Wait for the process to end; its whole transcript must be free of tracebacks."""
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def test_chat_stream_rotate_recall_stats_and_ctrl_c() -> None:
    child = spawn()
    transcript = []
    try:
        say(child, "hello there")
        child.expect_exact("You said: hello there")
        child.expect(PROMPT)

        say(child, "/rotate")
        child.expect(r"rotated to a new connection in \d+ ms \(connections=2")
        child.expect(PROMPT)

        say(child, "recall")
        child.expect_exact('["hello there"]')  # the turn before the rotation is still there
        child.expect(PROMPT)

        say(child, 'call get_weather {"city": "Paris"}')
        child.expect_exact('⚙ get_weather({"city": "Paris"})')  # shown when the call arrives
        child.expect(r"✓ get_weather → \{.*\}.*\(\d+ ms\)")  # and when it returned
        child.expect_exact("get_weather returned {")
        child.expect(PROMPT)

        say(child, "/stats")
        child.expect(r"rotations[^\n]*\s1\s")
        child.expect(r"tool calls[^\n]*\s1\s")
        child.expect(PROMPT)
        transcript.append(str(child.before))

        child.sendintr()  # Ctrl-C while waiting for input
        child.expect_exact("bye")
        transcript.append(finish(child))
    finally:
        child.close(force=True)
    assert not any("Traceback" in part for part in transcript)


def test_chat_drop_is_survived_and_quit_leaves_cleanly() -> None:
    child = spawn()
    try:
        say(child, "first words")
        child.expect_exact("You said: first words")
        child.expect(PROMPT)
        say(child, "/drop")
        child.expect_exact("the session resumes by itself")
        child.expect(PROMPT)
        say(child, "recall")
        child.expect_exact('["first words"]')
        child.expect(PROMPT)
        say(child, "/quit")
        child.expect_exact("bye")
        assert "Traceback" not in finish(child)
    finally:
        child.close(force=True)


def test_chat_ctrl_c_mid_reply_and_ctrl_d() -> None:
    """Ctrl-C while a reply is streaming also leaves cleanly; Ctrl-D (EOF) at the prompt too."""
    child = spawn()
    try:
        say(child, "/help")
        child.expect_exact("call roll_dice")
        child.expect(PROMPT)
        child.sendeof()
        child.expect_exact("bye")
        assert "Traceback" not in finish(child)
    finally:
        child.close(force=True)

    child = spawn()
    try:
        say(child, 'call get_weather {"city": "Oslo"}')
        child.expect_exact("⚙ get_weather")  # the tool is running (it takes 300 ms)
        child.sendintr()
        child.expect_exact("bye")
        out = finish(child)
        assert "Traceback" not in out and not re.search(r"Error\b", out)
    finally:
        child.close(force=True)


def test_chat_reports_a_fatal_close_and_exits_1() -> None:
    """A 1011 close is survived; a 1008 (policy: fatal) ends the chat with the service's reason."""
    child = spawn()
    try:
        say(child, "remember me")
        child.expect(PROMPT)
        say(child, "/drop 1011")
        child.expect_exact("closed the connection with 1011")
        child.expect(PROMPT)
        say(child, "recall")
        child.expect_exact('["remember me"]')  # resumed on a new connection
        child.expect(PROMPT)
        say(child, "/drop 1008")
        child.expect_exact("session ended: ServiceClosedError: connection closed with 1008")
        child.expect(pexpect.EOF)
        out = str(child.before)
        child.close()
        assert child.exitstatus == 1
        assert "Traceback" not in out
    finally:
        child.close(force=True)


def test_chat_real_without_a_key_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    command = f"{sys.executable} -m livemesh chat --real"
    output, status = pexpect.run(command, env=env, withexitstatus=True, timeout=TIMEOUT, encoding="utf-8")
    assert status == 1
    assert "--real needs GEMINI_API_KEY" in output and "Traceback" not in output
