"""``data-engine``: the command line. Sub-commands live in :mod:`data_engine.commands`.

User mistakes (:class:`EngineError`) print one line on stderr and exit with status 2; nothing
else the user did wrong should ever show a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from data_engine.commands import COMMAND_MODULES
from data_engine.errors import EngineError
from data_engine.store.home import HOME_ENV, Home


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="data-engine",
        description="A continuous data engine: ingest data, mine label issues, review, retrain, deploy.",
    )
    parser.add_argument(
        "--home", default=None, help=f"the engine's home directory (default: ${HOME_ENV} or ./.data-engine)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a subsystem not built yet; the others still work
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``data-engine`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    home = Home.resolve(args.home)
    try:
        return int(args.handler(args, home) or 0)
    except EngineError as exc:
        print(f"data-engine: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("data-engine: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`... | head`): not an error of ours. Python's documented recipe (the
        # signal module's note on SIGPIPE): point stdout at devnull so the exit flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
