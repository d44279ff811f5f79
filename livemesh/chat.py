"""``python -m livemesh chat``: an interactive terminal chat, the first thing to try.

By default it starts an emulator in this process (nothing to install, no key, no network) and
talks to its scripted model; ``--real`` talks to the Gemini Live API with ``GEMINI_API_KEY``.
Replies stream in as the model sends them; the two demo tools (``get_weather``, ``roll_dice``)
show their calls as they run. Commands::

    /rotate   move the session to a fresh connection now (what a goAway does), then report
    /stats    the session's metrics (turns, traffic, connections, rotations, tools ...)
    /drop     emulator only: cut the connection abruptly (no close frame), as a network would;
              ``/drop 1011`` closes it with that code and the service's text (1007/1008 are fatal)
    /goaway   emulator only: announce the connection's end, as the service does at ~9 minutes
    /help     this list;  /quit, Ctrl-D or Ctrl-C leave

The emulator's scripted model answers ``recall`` with the user turns its context holds (so after
``/rotate`` or ``/drop`` it proves nothing was lost), ``stats`` with its own counters, and
``call NAME {json}`` by calling a declared tool.

Shape: one task prints every server message as it arrives (so the session's inbox never fills,
even while the user thinks); the main task reads lines in a worker thread
(``trio.to_thread.run_sync(..., abandon_on_cancel=True)``, so Ctrl-C is not stuck behind a
blocking ``readline``) and waits for the end of each reply before prompting again.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from livemesh import wire
from livemesh.auth import ApiKey
from livemesh.emulator import Emulator, EmulatorConfig, open_emulator
from livemesh.errors import LivemeshError
from livemesh.rest import resolve_model
from livemesh.session import Callbacks, FunctionTool, Session, function_tool, open_session
from livemesh.wire import helpers

__all__ = ["add_arguments", "run"]

HELP = """commands: /rotate  /stats  /drop [CODE] (emulator)  /goaway (emulator)  /help  /quit
emulator words: recall | stats | call get_weather {"city": "Paris"} | call roll_dice {"sides": 20}"""

SYSTEM_INSTRUCTION = (
    "You are a friendly assistant in a terminal chat. Answer briefly. "
    "Use the get_weather and roll_dice tools when they help."
)

REPLY_TIMEOUT_S = 120.0
"""How long to wait for a reply before giving the prompt back (the model may stay silent)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the chat's options (``--real``, ``--model``, ``--system``, ``-v``, ``--chunk-delay``).

    Args:
        parser: The ``chat`` subcommand's parser.
    """
    parser.description = "Chat with the local emulator (default) or the Gemini Live API (--real)."
    parser.epilog = HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--real", action="store_true", help="use the Gemini Live API (needs GEMINI_API_KEY)")
    parser.add_argument("--model", help="a Live model name (default: resolved for text)")
    parser.add_argument("--system", default=SYSTEM_INSTRUCTION, help="the system instruction")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the session's moves and reconnects as they happen"
    )
    parser.add_argument(
        "--chunk-delay",
        type=float,
        default=0.04,
        help="emulator: seconds between reply chunks, so streaming is visible (default 0.04)",
    )


def run(args: argparse.Namespace) -> int:
    """Chat until the user leaves or the session ends.

    The library's log lines are shown dimmed between the chat's own (``-v``: moves and
    reconnects too) and the logger is put back as it was afterwards.

    Args:
        args: The parsed options (see :func:`add_arguments`).

    Returns:
        The exit status: 0 when the user left, 1 when the session failed or ``--real`` has no key.
    """
    console = Console(highlight=False)
    logger = logging.getLogger("livemesh")
    handler = _ConsoleLog(console)
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logger.propagate = False
    try:
        return trio.run(_chat, args, console)
    except KeyboardInterrupt:
        console.print("\n[dim]bye[/dim]")
        return 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class _ConsoleLog(logging.Handler):
    """The library's log lines, dimmed, between the chat's own lines (instead of bare stderr)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        self._console.print(f"  [{style}]{escape(record.getMessage())}[/{style}]")


# ---------------------------------------------------------------------------------- tools


def demo_tools(console: Console) -> list[FunctionTool]:
    """Two tools that report their own runs, so the user sees a call start and end.

    Args:
        console: Where the tools print their runs.

    Returns:
        ``get_weather`` (async, with a pretend latency) and ``roll_dice`` (sync, run in a thread).
    """

    async def get_weather(city: str) -> dict[str, Any]:
        """Get the current weather in a city."""
        await trio.sleep(0.3)  # a weather service's latency
        seed = sum(city.lower().encode())
        return {"city": city, "temperature_c": seed % 30, "sky": ("sunny", "cloudy", "rainy")[seed % 3]}

    def roll_dice(sides: int = 6) -> dict[str, Any]:
        """Roll a die with the given number of sides."""
        if sides < 2:
            raise ValueError("a die needs at least 2 sides")
        return {"sides": sides, "result": secrets.randbelow(sides) + 1}

    return [function_tool(_reporting(f, console)) for f in (get_weather, roll_dice)]


def _reporting(func: Callable[..., Any], console: Console) -> Callable[..., Any]:
    """``func`` with a line printed when it returns or raises. The wrapper is async (so it prints
    from trio); a sync ``func`` still runs in a worker thread, as the session would run it."""

    @functools.wraps(func)
    async def call(*args: Any, **kwargs: Any) -> Any:
        start = trio.current_time()
        try:
            if inspect.iscoroutinefunction(func):
                result = await func(*args, **kwargs)
            else:
                result = await trio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
        except Exception as exc:
            took = 1000 * (trio.current_time() - start)
            console.print(f"  [red]✗ {func.__name__} raised {exc!r}[/red] [dim]({took:.0f} ms)[/dim]")
            raise
        took = 1000 * (trio.current_time() - start)
        console.print(f"  [green]✓ {func.__name__} → {json.dumps(result)}[/green] [dim]({took:.0f} ms)[/dim]")
        return result

    return call


# ---------------------------------------------------------------------------------- the chat


@attrs.define
class _Turn:
    """What the printer tells the prompt loop: a reply finished."""

    done: trio.Event = attrs.Factory(trio.Event)
    streaming: bool = False


@asynccontextmanager
async def _target(
    args: argparse.Namespace, console: Console
) -> AsyncIterator[tuple[dict[str, Any], Emulator | None]]:
    """Session options for the real service or an in-process emulator (yielded with it)."""
    if args.real:
        key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise _Exit("--real needs GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment")
        auth = ApiKey(key)
        model = args.model or await resolve_model("text", auth)
        console.print(f"[dim]Gemini Live API, model {model}[/dim]")
        yield {"model": model, "auth": auth}, None
        return
    config = EmulatorConfig(
        first_chunk_delay_s=args.chunk_delay,
        chunk_interval_s=args.chunk_delay,
        chunks_per_reply=6,
        resumption_update_interval_s=0.5,
    )
    async with open_emulator(config) as emu:
        auth = ApiKey("emulator")
        model = args.model or await resolve_model("text", auth, base_url=emu.http_url)
        console.print(f"[dim]in-process emulator at {emu.url}, model {model}[/dim]")
        yield {"model": model, "auth": auth, "base_url": emu.url}, emu


class _Exit(Exception):
    """A message for the user and exit code 1 (no traceback)."""


async def _chat(args: argparse.Namespace, console: Console) -> int:
    failure: LivemeshError | None = None
    try:
        async with _target(args, console) as (options, emu):

            def on_go_away(go_away: wire.GoAway) -> None:
                left = go_away.time_left
                console.print(
                    f"[yellow]goAway: the service ends this connection in {left} s; moving on[/yellow]"
                )

            async with open_session(
                **options,
                response_modalities=["TEXT"],
                system_instruction=args.system,
                tools=demo_tools(console),
                callbacks=Callbacks(on_go_away=on_go_away),
            ) as session:
                console.print(f"[dim]{HELP}[/dim]")
                failure = await _converse(session, emu, console)
            # open_session cancels this block when the session fails; its error is then here.
            failure = failure or session.error
        if failure is not None:
            raise failure
    except _Exit as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    except LivemeshError as exc:
        console.print(f"[red]session ended: {type(exc).__name__}: {exc}[/red]")
        return 1
    console.print("[dim]bye[/dim]")
    return 0


async def _converse(session: Session, emu: Emulator | None, console: Console) -> LivemeshError | None:
    """The prompt loop next to the printer task, until /quit, EOF or the session ends (its error)."""
    failure: list[LivemeshError] = []
    turn = _Turn()
    async with trio.open_nursery() as nursery:

        async def printer() -> None:
            try:
                await _print_replies(session, console, lambda: turn)
            except LivemeshError as exc:
                failure.append(exc)
            nursery.cancel_scope.cancel()  # the session ended: stop reading input

        nursery.start_soon(printer)
        try:
            while True:
                line = await _read_line(console)
                if line is None:
                    break
                if not line:
                    continue
                if line.startswith("/"):
                    if not await _command(line, session, emu, console):
                        break
                    continue
                turn = _Turn()
                await session.send_client_content(line)
                with trio.move_on_after(REPLY_TIMEOUT_S) as waited:
                    await turn.done.wait()
                if waited.cancelled_caught:
                    console.print("[yellow](no reply yet; it will print when it comes)[/yellow]")
        except LivemeshError as exc:
            failure.append(exc)
        nursery.cancel_scope.cancel()
    return failure[0] if failure else None


async def _read_line(console: Console) -> str | None:
    """One line typed by the user (stripped); None at end of input."""
    console.print("[bold cyan]you>[/bold cyan] ", end="")
    sys.stdout.flush()
    line: str = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    if not line:
        console.print()
        return None
    return line.strip()


async def _print_replies(session: Session, console: Console, current: Callable[[], _Turn]) -> None:
    """Print every server message worth seeing as it arrives; mark the end of each reply."""
    async for message in session:
        turn = current()
        for call in message.tool_call.function_calls or [] if message.tool_call else []:
            if turn.streaming:
                console.print()
            turn.streaming = False
            console.print(f"  [magenta]⚙ {call.name}({json.dumps(call.args or {})})[/magenta]")
        text = helpers.extract_text(message)
        if text:
            if not turn.streaming:
                console.print("[bold green]model>[/bold green] ", end="")
                turn.streaming = True
            console.print(text, end="", markup=False, soft_wrap=True)
            sys.stdout.flush()
        content = message.server_content
        if content is not None and content.interrupted:
            console.print(" [yellow](interrupted)[/yellow]", end="")
        if content is not None and content.turn_complete:
            if turn.streaming:
                console.print()
            turn.streaming = False
            turn.done.set()


async def _command(line: str, session: Session, emu: Emulator | None, console: Console) -> bool:
    """Run one slash command; False to leave."""
    name = line.split()[0].lower()
    if name in ("/quit", "/exit", "/q"):
        return False
    if name == "/help":
        console.print(f"[dim]{HELP}[/dim]")
    elif name == "/stats":
        console.print(_stats_table(session))
    elif name == "/rotate":
        start = trio.current_time()
        await session.rotate("user asked")
        m = session.statistics()
        console.print(
            f"[cyan]rotated to a new connection in {1000 * (trio.current_time() - start):.0f} ms "
            f"(connections={m.connections}, input held for {1000 * m.last_move_stall_s:.0f} ms)[/cyan]"
        )
    elif name in ("/drop", "/goaway"):
        if emu is None:
            console.print("[yellow]/drop and /goaway need the emulator (run without --real)[/yellow]")
        elif name == "/drop" and not emu.live_connections():
            console.print("[yellow]no live connection right now (the session is reconnecting)[/yellow]")
        elif name == "/drop":
            words = line.split()
            code = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
            await emu.drop(close_code=code)
            if code is None:
                console.print("[cyan]the emulator cut the connection; the session resumes by itself[/cyan]")
            else:
                console.print(f"[cyan]the emulator closed the connection with {code}[/cyan]")
        else:
            await emu.send_go_away(time_left=5.0)
    else:
        console.print(f"[yellow]unknown command {name}[/yellow]  [dim]{HELP}[/dim]")
    return True


def _stats_table(session: Session) -> Table:
    m = session.statistics()
    table = Table(title=f"session {m.session_id} ({m.state})", show_header=False)
    table.add_column("metric", style="dim")
    table.add_column("value", justify="right")
    rows = [
        ("turns", m.turns),
        ("interruptions", m.interruptions),
        ("messages in / out", f"{m.messages_in} / {m.messages_out}"),
        ("bytes in / out", f"{m.bytes_in} / {m.bytes_out}"),
        ("connections", m.connections),
        ("rotations", m.rotations),
        ("reconnects", m.reconnects),
        ("goAways", m.go_aways),
        ("drops", m.drops),
        ("replayed", m.replayed),
        ("replay ambiguous", m.replay_ambiguous),
        ("tool calls", m.tool_calls),
        ("tool errors", m.tool_errors),
        (
            "tool latency mean / max",
            f"{1000 * m.tool_latency_mean_s:.0f} / {1000 * m.tool_latency_max_s:.0f} ms",
        ),
        ("max move stall", f"{1000 * m.max_move_stall_s:.0f} ms"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    return table
