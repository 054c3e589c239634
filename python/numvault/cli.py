"""The ``numvault`` command.

The command is written in Rust (``crates/numvault-cli``, built on clap) and
compiled into the extension module; this console-script entry point hands it
the arguments. ``numvault --help`` lists the verbs: info, ls, show, verify,
log, compact, import, status, export, bench.

Exit status: 0 success; 1 problems found (damage, a broken hash chain, a
source that failed to import); 2 usage error; 3 the command could not run
(store missing or locked, I/O error).
"""

from __future__ import annotations

import signal
import sys
from typing import Optional, Sequence

from . import _core


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``numvault`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Behave like a native command: Ctrl-C stops it, and writing into a
    # closed pipe (``numvault log S | head``) ends it quietly.
    if argv is None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    return int(_core._cli_main(["numvault", *args]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
