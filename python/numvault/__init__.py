"""numvault: crash-safe embedded storage for NumPy arrays.

Two APIs over one Rust engine:

* :class:`Vault` -- the native handle: ``Vault(path, mode="a", sync="flush")``,
  dict-like, thread-safe, with atomic multi-array commits.
* :class:`NumPack` -- a drop-in for code written against NumPack, with its
  exact signatures (``save``, ``load(lazy=...)``, ``replace``, ``append``,
  ``drop``, ``getitem``, ``stream_load``, ``batch_mode``,
  ``writable_batch_mode``, ...), minus its defects: every call is atomic and
  crash-safe, data is checksummed, errors raise.

:class:`LazyArray` is the memory-mapped, zero-copy snapshot returned by
``NumPack.load(name, lazy=True)`` and ``Vault.lazy(name)``.

Errors are Python's own where one fits (``KeyError`` for unknown arrays,
``IndexError`` for indices, ``ValueError`` for shape, dtype and name
problems) plus :class:`LockedError` (an ``OSError``: another writer holds
the store), :class:`CorruptionError` (an ``OSError``: damaged files),
:class:`NeedsCompactionError`, :class:`ArrayInUseError`,
:class:`LimitExceededError`, :class:`NeedsUpgradeError` and
:class:`VersionInUseError` (``ValueError`` subclasses),
:class:`ConflictError` and :class:`InternalError` (``RuntimeError``
subclasses).

Versions: ``Vault.snapshot(tag=None)`` pins the committed state cheaply (no
data is copied) and returns its id; ``Vault.at(id_or_tag)`` (or
``Vault(path, "r", version=id_or_tag)``) is a read-only handle on a
version, and ``versions``, ``diff``, ``restore``, ``delete_snapshot`` and
``gc`` list, compare, bring back and free them; :class:`NumPack` has the
same methods; ``keep_last=``/``keep_for=`` keep only recent untagged
versions. A store of format 1 needs ``upgrade()`` first
(:class:`NeedsUpgradeError`).
"""

from ._core import (
    FORMAT_VERSION,
    ArrayInUseError,
    BatchIterator,
    ConflictError,
    CorruptionError,
    InternalError,
    LimitExceededError,
    NeedsCompactionError,
    NeedsUpgradeError,
    LazyArray,
    VersionInUseError,
    LockedError,
    Vault,
    WritableArray,
    __version__,
)
from .numpack import BatchModeContext, NumPack, WritableBatchMode, force_cleanup_windows_handles


def __getattr__(name: str):  # noqa: ANN201 - module attribute hook
    """``numvault.pack``, ``numvault.unpack`` and ``numvault.get_package_info``
    (from :mod:`numvault.io`, imported on first use), as NumPack exports
    them."""
    if name in ("pack", "unpack", "get_package_info"):
        from . import io

        return getattr(io, name)
    raise AttributeError(f"module 'numvault' has no attribute '{name}'")


__all__ = [
    "FORMAT_VERSION",
    "ArrayInUseError",
    "BatchIterator",
    "BatchModeContext",
    "ConflictError",
    "CorruptionError",
    "InternalError",
    "LimitExceededError",
    "NeedsCompactionError",
    "NeedsUpgradeError",
    "LazyArray",
    "LockedError",
    "NumPack",
    "Vault",
    "VersionInUseError",
    "WritableArray",
    "WritableBatchMode",
    "__version__",
    "force_cleanup_windows_handles",
    "get_package_info",
    "pack",
    "unpack",
]
