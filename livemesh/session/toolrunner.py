"""The tool runner task: runs the calls the reader hands it, one cancel scope per call, and hands
each answer to the core for the writer (``Links.push``).

Answers do not queue behind user input in the outbox: a BLOCKING call holds realtime input, and a
user streaming audio fills the hold and then the outbox, so an answer behind them would wait for
the hold its own arrival ends (a deadlock). The core sends answers ahead of user input anyway.

It lives as long as the session (calls outlive a move: a call pending when the connection
changes is answered on the next one, or dropped there if the resumed context never issued it),
in the session's own nursery, which exists only when the session can run tools at all (a
registered function, or the ``on_tool_call`` callback). The core decides whether an answer is
still owed (``tool_done``, ``tool_stopped``): one answer per call id, none for a cancelled or
void call.
"""

from __future__ import annotations

import trio

from livemesh import wire
from livemesh.errors import ConfigError
from livemesh.session.builders import build_tool_response
from livemesh.session.callbacks import call_callback
from livemesh.session.core.ledger import PendingCall
from livemesh.session.links import Links, ToolWork
from livemesh.session.reader import safe_callback
from livemesh.session.tools import FunctionTool, run_tool

__all__ = ["run_tools"]


async def run_tools(
    links: Links,
    work: trio.MemoryReceiveChannel[ToolWork],
    tools: dict[str, FunctionTool],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run every call that arrives on ``work`` until the channel closes, then the ones running."""
    async with trio.open_nursery() as nursery:
        task_status.started()
        async for item in work:
            if isinstance(item, PendingCall):
                nursery.start_soon(_run_call, links, item, tools[item.call.name or ""])
            else:
                nursery.start_soon(_run_callback_calls, links, item)


async def _run_call(
    links: Links, pending: PendingCall, tool: FunctionTool
) -> None:
    core = links.core
    response: wire.FunctionResponse | None = None
    with trio.CancelScope() as scope:
        links.scopes[pending.id] = scope
        try:
            response = await run_tool(tool, pending.call, non_blocking=not pending.blocking)
        finally:
            del links.scopes[pending.id]
    now = trio.current_time()
    if response is None:  # cancelled: an interruption, the server, a user's answer, a resume
        out = core.tool_stopped(pending.id, now)
    else:
        out = core.tool_done(pending.id, response, now)
    links.notify()
    if out is not None:
        links.push(out)
    else:
        links.wake_writer()  # a BLOCKING call closed: held realtime input may go out


async def _run_callback_calls(
    links: Links, calls: list[wire.FunctionCall]
) -> None:
    callbacks = links.config.callbacks
    try:
        calling = wire.ToolCall(function_calls=calls)
        result = await call_callback(callbacks.on_tool_call, calling, log=links.log)
    except Exception as exc:
        links.core.counters.callback_errors += 1
        links.log.warning("on_tool_call raised %s; answering with errors", type(exc).__name__)
        result = [
            wire.FunctionResponse(id=c.id, name=c.name, response={"error": f"{type(exc).__name__}: {exc}"})
            for c in calls
        ]
        await safe_callback(links, callbacks.on_error, exc)
    links.core.callback_done()
    if result is None:
        return  # the callback answers later with send_tool_response
    if isinstance(result, tuple) and len(result) == 2 and result[0] in ("tool_response", ":tool_response"):
        result = result[1]  # the seed's {:tool_response, responses}
    try:
        out = build_tool_response(result)
    except ConfigError as exc:
        links.log.warning("on_tool_call returned an unusable value: %s", exc)
        return
    tool_response = out.message.tool_response
    responses = list(tool_response.function_responses or []) if tool_response else []
    for answer in links.core.callback_answers(responses, trio.current_time()):
        links.push(answer)
