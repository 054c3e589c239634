"""The ``numvault`` command.

Only ``numvault --version`` exists today; the inspection and integrity verbs
come in their own issue. A verb is a function that receives the argparse
sub-parsers object, adds its parser and sets ``func`` (a callable taking the
parsed arguments and returning an exit status) with ``set_defaults``; list it
in :data:`VERBS`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, List, Optional, Sequence

from . import FORMAT_VERSION, __version__

#: Registration functions of the verbs, in help order.
VERBS: List[Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]] = []


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered verb."""
    parser = argparse.ArgumentParser(
        prog="numvault",
        description="Inspect and check numvault stores.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"numvault {__version__} (format version {FORMAT_VERSION})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in VERBS:
        register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``numvault`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    return int(func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
