"""Exception-group handling shared by the session and the pool (one place, one rule)."""

from __future__ import annotations

import trio


def unwrap_group(group: BaseExceptionGroup, preferred: BaseException | None) -> BaseException:
    """The one meaningful exception in a nursery's group: ``preferred`` (the block's own) if it is
    there, else the single leaf that is not a ``Cancelled``, else the group itself."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    if preferred is not None and preferred in leaves:
        return preferred
    meaningful = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    return meaningful[0] if len(meaningful) == 1 else group
