"""The ``numvault`` command, from Python.

The command is a Rust program (``crates/numvault-cli``, built on clap)
shipped as a wheel of its own, ``numvault-cli``, which installs the binary
``numvault`` next to the Python interpreter (the environment's ``bin/``)::

    pip install . && pip install ./crates/numvault-cli   # from a checkout

``python -m numvault ARGS`` and :func:`main` run that binary (found next to
``sys.executable``, in the environment's scripts directory or on ``PATH``)
and return its exit status; without it they print how to install it.
``numvault --help`` lists the verbs: info, ls, show, verify, log, compact,
import, status, export, bench.

Exit status: 0 success; 1 problems found (damage, a broken hash chain, a
source that failed to import); 2 usage error; 3 the command could not run
(store missing or locked, I/O error, or the binary is not installed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Optional, Sequence

_EXE = "numvault.exe" if os.name == "nt" else "numvault"
# Set for the child: a ``numvault`` that turns out to be a leftover Python
# console script (from an older numvault) would call main() again.
_GUARD = "NUMVAULT_CLI_SHIM"


def find_binary() -> Optional[str]:
    """Path of the installed ``numvault`` binary, or None."""
    dirs = [Path(sys.executable).parent]
    scripts = sysconfig.get_path("scripts")
    if scripts:
        dirs.append(Path(scripts))
    for d in dirs:
        exe = d / _EXE
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    return shutil.which("numvault")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``numvault`` binary with ``argv`` (default: ``sys.argv[1:]``);
    returns its exit status (128 + N if signal N ended it)."""
    args = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    if os.environ.get(_GUARD):
        print(
            "numvault: the 'numvault' found is not the command's binary (a console\n"
            "script left by an older numvault?); from a numvault source checkout run:\n"
            "    pip install --force-reinstall ./crates/numvault-cli",
            file=sys.stderr,
        )
        return 3
    exe = find_binary()
    if exe is None:
        print(
            "numvault: the numvault command is not installed in this environment.\n"
            "It ships as its own wheel; from a numvault source checkout run:\n"
            "    pip install ./crates/numvault-cli",
            file=sys.stderr,
        )
        return 3
    if argv is None:
        # Behave like the native command: Ctrl-C reaches the child (same
        # process group); the wrapper only waits for it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ, **{_GUARD: "1"})
    code = subprocess.call([exe, *args], env=env)
    return 128 - code if code < 0 else code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
