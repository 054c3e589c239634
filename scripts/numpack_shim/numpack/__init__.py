"""Shim: NumPack 0.7's package name, mapped onto numvault.

Used only by ``scripts/numpack-compat.sh`` to run NumPack 0.7's own test
suite against ``numvault.NumPack``. Never installed.
"""

import sys as _sys

import numpy as _np

# Importing NumPack 0.7 patches numpy.issubdtype to accept a tuple of types
# (its tests rely on it: np.issubdtype(dtype, (np.integer, np.bool_))).
# numvault never patches NumPy; the shim does what importing numpack does.
_orig_issubdtype = _np.issubdtype


def _issubdtype(arg1, arg2):
    if isinstance(arg2, tuple):
        return any(_orig_issubdtype(arg1, a) for a in arg2)
    return _orig_issubdtype(arg1, arg2)


_np.issubdtype = _issubdtype

import numvault as _nv
from numvault import *  # noqa: F401,F403
from numvault import LazyArray, NumPack  # noqa: F401
from numvault.numpack import *  # noqa: F401,F403

for _name in ("pack", "unpack", "get_package_info", "force_cleanup_windows_handles"):
    if hasattr(_nv, _name):
        globals()[_name] = getattr(_nv, _name)

try:
    import numvault.io as io  # noqa: F401

    _sys.modules["numpack.io"] = io
    for _sub in list(_sys.modules):
        if _sub.startswith("numvault.io."):
            _sys.modules["numpack.io." + _sub[len("numvault.io."):]] = _sys.modules[_sub]
except ImportError:
    pass

__version__ = "0.7.0"
