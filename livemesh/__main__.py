"""``python -m livemesh {serve,bench,chat}``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``serve`` never pays for the bench.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS = {
    "serve": ("livemesh.emulator.cli", "run the local Live API emulator"),
    "bench": ("livemesh.bench.cli", "many sessions with real traffic against the emulator"),
    "chat": ("livemesh.chat", "an interactive terminal chat"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand (the ``livemesh`` console script and ``python -m livemesh``).

    Args:
        argv: The command line without the program name (default ``sys.argv[1:]``).

    Returns:
        The subcommand's exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="livemesh", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == wanted:
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    return int(modules[args.command].run(args))


if __name__ == "__main__":
    raise SystemExit(main())
