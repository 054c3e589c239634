"""One-file packages of a whole numvault store: :func:`pack`, :func:`unpack`,
:func:`get_package_info`.

The container (``.npkg``) is specified byte for byte in ``docs/PACKAGE.md``:
a 16-byte header, the members' bytes back to back (each stored or one zstd
stream), an index (member names, offsets, sizes, BLAKE3 of each member's
original bytes, a JSON summary of the arrays) and a 56-byte trailer holding
the index's position and BLAKE3.

``pack`` copies the store's own files (MANIFEST, the live log, HISTORY,
imports.json, every data file, the version files: versions and their tags
travel with the package) while holding the store's writer lock, so no
writer can commit during the copy and the package is one consistent state.
``unpack`` treats a package as untrusted: it validates the whole index
(names against the store layout, offsets and sizes against each other and
the file, totals against a cap and the free space) before writing anything,
restores into a temporary directory beside the target, checks every
member's size and BLAKE3 while writing it (a member that decompresses past
its declared size is stopped there), opens the result and runs
``Vault.verify()``, and only then renames it into place. Any failure raises
:class:`PackageError` (a ``ValueError``) naming the member, and leaves no
target and no temporary directory.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import struct
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional, Union

from .utils import (
    DependencyError,
    Progress,
    _check_dependency,
    _fsync_dir,
    atomic_output,
    is_numvault_store,
    replace_dir,
)

MAGIC = b"\x89NVPKG\r\n"
VERSION = 1
INDEX_MAGIC = b"NVPKIDX\x00"
END_MAGIC = b"NVPKEND\x00"
HEADER_BYTES = 16
TRAILER_BYTES = 56
METHOD_STORED = 0
METHOD_ZSTD = 1
MAX_INDEX_BYTES = 256 << 20
MAX_SUMMARY_BYTES = 64 << 20
MAX_MEMBERS = 1_000_000
#: Default cap on the total original size of a package's members
#: (``unpack(..., max_size=...)``): 1 TiB.
DEFAULT_MAX_SIZE = 1 << 40
BLOCK = 1 << 20

_NAME_RE = re.compile(r"\A(?:MANIFEST|HISTORY|imports\.json|wal-[0-9a-f]{16}\.log|data/[0-9a-f]{16}\.nvd"
                      r"|versions/[0-9a-f]{16}\.nvv)\Z")


class PackageError(ValueError):
    """A package is damaged, truncated, not a package, or refused as unsafe.
    ``source`` is the package file, ``member`` the member concerned (None
    for the header, index or trailer). Nothing was written to the target."""

    def __init__(self, source: Any, member: Optional[str], message: str) -> None:
        self.source = str(source)
        self.member = member
        where = f"member '{member}'" if member else "package"
        super().__init__(f"Invalid package {self.source}: {where}: {message}")


class PackageTooLargeError(PackageError, OSError):
    """The members of a package total more than the free space of the
    target's file system: a :class:`PackageError` and an ``OSError``
    (``errno.ENOSPC``). Nothing was written."""

    def __init__(self, source: Any, message: str) -> None:
        PackageError.__init__(self, source, None, message)
        OSError.__init__(self, errno.ENOSPC, f"Invalid package {source}: package: {message}")


def _blake3() -> Any:
    return _check_dependency("blake3").blake3


def _zstd() -> Any:
    return _check_dependency("zstandard")


# ---------------------------------------------------------------------------
# index
# ---------------------------------------------------------------------------


class Member:
    __slots__ = ("name", "method", "offset", "stored_size", "original_size", "digest")

    def __init__(self, name: str, method: int, offset: int, stored_size: int, original_size: int,
                 digest: bytes) -> None:
        self.name, self.method, self.offset = name, method, offset
        self.stored_size, self.original_size, self.digest = stored_size, original_size, digest


def _encode_index(members: List[Member], summary: Dict[str, Any]) -> bytes:
    out = [INDEX_MAGIC, struct.pack("<I", len(members))]
    for m in members:
        nb = m.name.encode("utf-8")
        out.append(struct.pack("<H", len(nb)))
        out.append(nb)
        out.append(struct.pack("<BQQQ", m.method, m.offset, m.stored_size, m.original_size))
        out.append(m.digest)
    sb = json.dumps(summary, separators=(",", ":"), sort_keys=True).encode("utf-8")
    out.append(struct.pack("<I", len(sb)))
    out.append(sb)
    return b"".join(out)


class _Cursor:
    def __init__(self, buf: bytes, source: Any) -> None:
        self.buf, self.pos, self.source = buf, 0, source

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.buf):
            raise PackageError(self.source, None, f"index ends inside {what} (index byte {self.pos})")
        b = self.buf[self.pos : self.pos + n]
        self.pos += n
        return b


def read_index(f: BinaryIO, source: Any, size: int) -> tuple:
    """(members, summary) of the package open as ``f`` (``size`` bytes),
    validated: header, trailer, index hash, every member's name, method,
    offset and sizes. Raises :class:`PackageError`."""
    blake3 = _blake3()
    if size < HEADER_BYTES + TRAILER_BYTES:
        raise PackageError(source, None, f"file is {size} bytes, shorter than a package's header and trailer")
    f.seek(0)
    head = f.read(HEADER_BYTES)
    if head[:8] != MAGIC:
        raise PackageError(source, None, "not a numvault package (bad magic)")
    version, flags = struct.unpack("<II", head[8:16])
    if version != VERSION:
        raise PackageError(source, None, f"format version {version} is not supported (this numvault reads {VERSION})")
    if flags != 0:
        raise PackageError(source, None, f"unknown header flags {flags:#x}")
    f.seek(size - TRAILER_BYTES)
    tr = f.read(TRAILER_BYTES)
    if len(tr) != TRAILER_BYTES or tr[48:56] != END_MAGIC:
        raise PackageError(source, None, "no valid trailer (the file is truncated or damaged)")
    index_offset, index_len = struct.unpack("<QQ", tr[:16])
    if index_len > MAX_INDEX_BYTES:
        raise PackageError(source, None, f"index length {index_len} exceeds the cap of {MAX_INDEX_BYTES}")
    if index_offset < HEADER_BYTES or index_offset + index_len != size - TRAILER_BYTES:
        raise PackageError(source, None, f"trailer places the index at {index_offset}+{index_len}, which does "
                                         f"not end where the trailer begins ({size - TRAILER_BYTES})")
    f.seek(index_offset)
    idx = f.read(index_len)
    if len(idx) != index_len or blake3(idx).digest() != tr[16:48]:
        raise PackageError(source, None, "index checksum mismatch")
    c = _Cursor(idx, source)
    if c.take(8, "magic") != INDEX_MAGIC:
        raise PackageError(source, None, "bad index magic")
    (count,) = struct.unpack("<I", c.take(4, "member count"))
    if count > MAX_MEMBERS:
        raise PackageError(source, None, f"{count} members exceed the cap of {MAX_MEMBERS}")
    members: List[Member] = []
    seen = set()
    expect = HEADER_BYTES
    for i in range(count):
        (nlen,) = struct.unpack("<H", c.take(2, f"member {i}"))
        raw = c.take(nlen, f"member {i}'s name")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PackageError(source, repr(raw), "member name is not UTF-8") from None
        method, offset, stored, original = struct.unpack("<BQQQ", c.take(25, f"member '{name}'"))
        digest = c.take(32, f"member '{name}'s checksum")
        if not _NAME_RE.match(name):
            raise PackageError(source, name, "name is not a file of a numvault store (refused: a member may "
                                             "only be MANIFEST, HISTORY, imports.json, wal-<16 hex>.log or "
                                             "data/<16 hex>.nvd, versions/<16 hex>.nvv)")
        if name in seen:
            raise PackageError(source, name, "appears twice")
        seen.add(name)
        if method not in (METHOD_STORED, METHOD_ZSTD):
            raise PackageError(source, name, f"unknown method {method}")
        if method == METHOD_STORED and stored != original:
            raise PackageError(source, name, f"stored member of {stored} bytes declares {original} bytes")
        if offset != expect:
            raise PackageError(source, name, f"data at offset {offset}, expected {expect} (members must lie "
                                             "back to back from the header on)")
        expect = offset + stored
        if expect > index_offset:
            raise PackageError(source, name, f"data ({offset}+{stored}) runs into the index at {index_offset}")
        members.append(Member(name, method, offset, stored, original, digest))
    if expect != index_offset:
        raise PackageError(source, None, f"{index_offset - expect} bytes between the last member and the index")
    (slen,) = struct.unpack("<I", c.take(4, "summary length"))
    if slen > MAX_SUMMARY_BYTES:
        raise PackageError(source, None, f"summary of {slen} bytes exceeds the cap")
    sb = c.take(slen, "summary")
    if c.pos != len(idx):
        raise PackageError(source, None, f"{len(idx) - c.pos} unexpected bytes after the index summary")
    try:
        summary = json.loads(sb.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise PackageError(source, None, f"summary is not JSON: {e}") from e
    if not isinstance(summary, dict):
        raise PackageError(source, None, "summary is not a JSON object")
    if "MANIFEST" not in seen or not any(n.startswith("wal-") for n in seen):
        raise PackageError(source, None, "holds no MANIFEST and log: not a store")
    return members, summary


# ---------------------------------------------------------------------------
# pack
# ---------------------------------------------------------------------------


def _lock_store(src: Path, timeout: float) -> int:
    """Take the store's writer lock (flock on LOCK), waiting up to
    ``timeout`` seconds; returns the fd holding it."""
    import fcntl

    from numvault import LockedError

    try:
        fd = os.open(str(src / "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:  # a read-only store: flock works on a read-only fd
        fd = os.open(str(src / "LOCK"), os.O_RDONLY)
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockedError(
                    errno.EAGAIN,
                    f"store {src} is locked by a writer; pack copies a store while no writer is open "
                    f"(close it, or pass a longer lock_timeout than {timeout} s)",
                ) from None
            time.sleep(0.01)


def _store_files(src: Path) -> List[str]:
    """Member names of the store's committed state: MANIFEST, the live log
    (named by the MANIFEST's generation), HISTORY, imports.json and the data
    files (staging files and stale logs are left out)."""
    with open(src / "MANIFEST", "rb") as f:
        head = f.read(40)
    if len(head) < 40 or head[:8] != b"NVMANIF\x00":
        raise ValueError(f"{src}/MANIFEST is not a numvault MANIFEST")
    (gen,) = struct.unpack("<Q", head[32:40])
    log = f"wal-{gen:016x}.log"
    if not (src / log).is_file():
        raise ValueError(f"{src}: the live log {log} is missing")
    names = ["MANIFEST", log]
    for extra in ("HISTORY", "imports.json"):
        if (src / extra).is_file():
            names.append(extra)
    for sub in ("data", "versions"):
        d = src / sub
        if d.is_dir():
            names.extend(f"{sub}/{p.name}" for p in sorted(d.iterdir())
                         if p.is_file() and not p.is_symlink() and _NAME_RE.match(f"{sub}/{p.name}"))
    return names


def _summary(src: Path) -> Dict[str, Any]:
    import numvault

    arrays = []
    v = numvault.Vault(str(src), "r")
    try:
        for n in v.names():
            info = v.info(n)
            arrays.append({
                "name": n,
                "shape": list(info["shape"]),
                "dtype": str(info["dtype"]),
                "nbytes": int(info["data_bytes"]),
                "dead_rows": int(info["dead_rows"]),
            })
    finally:
        v.close()
    return {
        "format": "numvault-package",
        "store_format_version": int(numvault.FORMAT_VERSION),
        "numvault_version": str(numvault.__version__),
        "created_ns": time.time_ns(),
        "arrays": arrays,
    }


def _copy_member(out: BinaryIO, path: Path, compress: bool, zstd: Any, level: int, blake3: Any,
                 progress: Progress) -> tuple:
    """Write one member at the current position; returns (method, stored,
    original, digest). Compressed only if that makes it smaller."""
    start = out.tell()
    if compress:
        cobj = zstd.ZstdCompressor(level=level).compressobj()
        original, digest = _pipe(path, blake3(), lambda b: out.write(cobj.compress(b)), progress)
        out.write(cobj.flush())
        stored = out.tell() - start
        if stored < original:
            return METHOD_ZSTD, stored, original, digest
        out.seek(start)
        out.truncate()
        progress = None  # counted once already
    original, digest = _pipe(path, blake3(), out.write, progress)
    return METHOD_STORED, original, original, digest


def _pipe(path: Path, h: Any, write: Any, progress: Optional[Progress]) -> tuple:
    """Feed the file at ``path`` in blocks to the hash ``h`` and to
    ``write``; returns (bytes, digest)."""
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(BLOCK)
            if not b:
                return n, h.digest()
            h.update(b)
            n += len(b)
            write(b)
            if progress is not None:
                progress.update(len(b))


def pack(
    source: Union[str, Path],
    target: Optional[Union[str, Path]] = None,
    compression: bool = True,
    overwrite: bool = False,
    *,
    lock_timeout: float = 30.0,
    level: int = 3,
) -> Path:
    """Write the whole store ``source`` (every array, its checksums, its log
    and history) into one package file ``target`` (default
    ``<source>.npkg`` beside it; ``.npkg`` is added to a target without a
    suffix). Returns the package's path.

    Members are zstd-compressed (``level``) when ``compression`` and when
    that makes them smaller, else stored. The copy is made while holding
    the store's writer lock (waiting up to ``lock_timeout`` seconds for a
    writer to close, then ``numvault.LockedError``), so it is one committed
    state. The package appears only once complete (written beside it and
    renamed). Needs ``blake3`` (and ``zstandard`` to compress):
    ``pip install 'numvault[pack]'``.
    """
    blake3 = _blake3()
    zstd = _zstd() if compression else None
    src = Path(source)
    if not src.exists():
        raise ValueError(f"Source path does not exist: {src}")
    if not src.is_dir():
        raise ValueError(f"Source must be a store directory: {src}")
    if not is_numvault_store(src):
        if (src / "metadata.npkm").exists():
            raise ValueError(f"{src} is a NumPack-format store (metadata.npkm); import it into numvault "
                             "first (numvault.io.from_numpack or `numvault import`), then pack that")
        raise ValueError(f"{src} is not a numvault store (no MANIFEST) nor a NumPack store (no metadata.npkm)")
    if target is None:
        tgt = src.parent / f"{src.name}.npkg"
    else:
        tgt = Path(target)
        if not tgt.suffix:
            tgt = tgt.with_suffix(".npkg")
    if tgt.exists() and not overwrite:
        raise FileExistsError(f"Target file already exists: {tgt}. Use overwrite=True to replace it.")
    if tgt.exists() and tgt.is_dir():
        raise IsADirectoryError(f"Target is a directory: {tgt}")
    fd = _lock_store(src, lock_timeout)
    try:
        names = _store_files(src)
        summary = _summary(src)
        total = sum((src / n).stat().st_size for n in names)
        with Progress(total, f"pack {src.name}") as progress, atomic_output(tgt) as out:
            out.write(MAGIC + struct.pack("<II", VERSION, 0))
            members = []
            for n in names:
                offset = out.tell()
                method, stored, original, digest = _copy_member(out, src / n, compression, zstd, level, blake3,
                                                                progress)
                members.append(Member(n, method, offset, stored, original, digest))
            index = _encode_index(members, summary)
            index_offset = out.tell()
            out.write(index)
            out.write(struct.pack("<QQ", index_offset, len(index)) + blake3(index).digest() + END_MAGIC)
    finally:
        os.close(fd)  # releases the lock
    return tgt


# ---------------------------------------------------------------------------
# unpack
# ---------------------------------------------------------------------------


class _Limited:
    """Reads at most ``left`` bytes of ``f`` from its current position."""

    def __init__(self, f: BinaryIO, left: int) -> None:
        self.f, self.left = f, left

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        if n is None or n < 0 or n > self.left:
            n = self.left
        b = self.f.read(n)
        self.left -= len(b)
        return b


def _extract_member(f: BinaryIO, m: Member, dest: Path, source: Any, blake3: Any, progress: Progress) -> None:
    f.seek(m.offset)
    src = _Limited(f, m.stored_size)
    h = blake3()
    written = 0
    fd = os.open(str(dest), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as out:
        if m.method == METHOD_STORED:
            reader: Any = src
        else:
            zstd = _zstd()
            reader = zstd.ZstdDecompressor().stream_reader(src, read_across_frames=True)
        try:
            while True:
                try:
                    b = reader.read(BLOCK)
                except Exception as e:  # zstd.ZstdError and friends
                    raise PackageError(source, m.name, f"damaged compressed data: {e}") from e
                if not b:
                    break
                written += len(b)
                if written > m.original_size:
                    raise PackageError(source, m.name, f"holds more than the {m.original_size} bytes its index "
                                                       "entry declares (refused)")
                h.update(b)
                out.write(b)
                progress.update(len(b))
        finally:
            if m.method != METHOD_STORED:
                reader.close()
        if src.left:
            raise PackageError(source, m.name, f"file ends {src.left} bytes into the member's data")
        if written != m.original_size:
            raise PackageError(source, m.name, f"holds {written} bytes, its index entry declares {m.original_size}")
        if h.digest() != m.digest:
            raise PackageError(source, m.name, "checksum (BLAKE3) mismatch")
        out.flush()
        os.fsync(out.fileno())


def _default_target(src: Path) -> Path:
    stem = src.stem
    return src.parent / (stem if stem.endswith(".npk") else f"{stem}.npk")


def _check_replaceable(tgt: Path) -> None:
    if tgt.is_symlink() or tgt.is_file():
        raise FileExistsError(f"Target exists and is not a directory: {tgt}")
    if is_numvault_store(tgt) or (tgt / "metadata.npkm").exists() or not any(tgt.iterdir()):
        return
    raise ValueError(f"Target {tgt} exists and is neither a store nor empty; not overwriting it")


def unpack(
    source: Union[str, Path],
    target: Optional[Union[str, Path]] = None,
    overwrite: bool = False,
    verify: bool = True,
    *,
    max_size: Optional[int] = None,
) -> Path:
    """Restore the store packed in ``source`` to directory ``target``
    (default: the package's path without ``.npkg``, ending in ``.npk``).
    Returns the target's path.

    The package is validated whole before anything is written (see the
    module documentation); members larger in total than ``max_size`` bytes
    (default 1 TiB) or than the free space are refused. Every member's size
    and BLAKE3 are checked as it is written into a temporary directory beside
    the target; with ``verify`` the restored store is opened and
    ``Vault.verify()`` must report it clean. Only then is it renamed into
    place (an existing store at ``target`` is replaced only with
    ``overwrite``, and only while no writer holds it). Any problem raises
    :class:`PackageError` naming the member and leaves no target.
    """
    blake3 = _blake3()
    src = Path(source)
    if not src.exists():
        raise ValueError(f"Source file does not exist: {src}")
    if not src.is_file():
        raise ValueError(f"Source must be a file: {src}")
    tgt = Path(target) if target is not None else _default_target(src)
    cap = DEFAULT_MAX_SIZE if max_size is None else int(max_size)
    with open(src, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        members, summary = read_index(f, src, size)
        import numvault

        fmt = summary.get("store_format_version", 1)
        if not isinstance(fmt, int) or fmt > numvault.FORMAT_VERSION:
            raise PackageError(src, None, f"store format version {fmt!r} is newer than this numvault reads "
                                          f"({numvault.FORMAT_VERSION})")
        total = sum(m.original_size for m in members)
        if total > cap:
            raise PackageError(src, None, f"members total {total} bytes, over the cap of {cap} "
                                          "(unpack(..., max_size=...) raises it)")
        if tgt.exists() or tgt.is_symlink():
            if not overwrite:
                raise FileExistsError(f"Target directory already exists: {tgt}. Use overwrite=True to replace it.")
            _check_replaceable(tgt)
        parent = tgt.parent
        probe = parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        st = os.statvfs(probe)
        free = st.f_bavail * st.f_frsize
        if total > free:
            raise PackageTooLargeError(src, f"members total {total} bytes, {free} are free in {probe}")
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{tgt.name}.unpack-{uuid.uuid4().hex[:12]}"
        os.mkdir(tmp, 0o755)
        try:
            os.mkdir(tmp / "data", 0o755)
            if any(m.name.startswith("versions/") for m in members):
                os.mkdir(tmp / "versions", 0o755)
            with Progress(total, f"unpack {src.name}") as progress:
                for m in members:
                    _extract_member(f, m, tmp / m.name, src, blake3, progress)
            _fsync_dir(tmp / "data")
            if (tmp / "versions").is_dir():
                _fsync_dir(tmp / "versions")
            _fsync_dir(tmp)
            _open_and_verify(tmp, src, verify)
            _install(tmp, tgt)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return tgt


def _open_and_verify(tmp: Path, source: Any, verify: bool) -> None:
    import numvault

    try:
        v = numvault.Vault(str(tmp), "r")
    except (OSError, ValueError, RuntimeError) as e:
        raise PackageError(source, None, f"the restored store does not open: {e}") from e
    try:
        if verify:
            rep = v.verify()
            if not rep.get("clean", False):
                raise PackageError(source, None, "the restored store does not verify: "
                                                 + "; ".join(rep.get("problems", [])))
    except (OSError, RuntimeError) as e:
        raise PackageError(source, None, f"the restored store does not verify: {e}") from e
    finally:
        v.close()


def _install(tmp: Path, tgt: Path) -> None:
    """Rename ``tmp`` to ``tgt``; an existing target (checked replaceable)
    is moved aside under its writer lock first, then removed."""
    fd = _lock_store(tgt, 0.0) if tgt.exists() and is_numvault_store(tgt) else None
    try:
        replace_dir(tmp, tgt)
    finally:
        if fd is not None:
            os.close(fd)


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------


def get_package_info(source: Union[str, Path]) -> Dict[str, Any]:
    """What a package holds, read from its index (nothing is extracted):
    NumPack's keys ``version``, ``compression``, ``compression_name``,
    ``file_count``, ``files`` (``name``, ``original_size``,
    ``compressed_size``, ``actual_size``, ``method``, ``blake3``),
    ``total_original_size``, ``total_compressed_size``,
    ``compression_ratio`` (stored / original bytes), plus ``arrays`` (each
    ``name``, ``shape``, ``dtype``, ``nbytes``, ``dead_rows``) and
    ``numvault_version`` / ``store_format_version``."""
    src = Path(source)
    if not src.exists():
        raise ValueError(f"Source file does not exist: {src}")
    if not src.is_file():
        raise ValueError(f"Source must be a file: {src}")
    with open(src, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        members, summary = read_index(f, src, size)
    files = [{
        "name": m.name,
        "original_size": m.original_size,
        "compressed_size": m.stored_size if m.method == METHOD_ZSTD else 0,
        "actual_size": m.stored_size,
        "method": "zstd" if m.method == METHOD_ZSTD else "stored",
        "blake3": m.digest.hex(),
    } for m in members]
    total_original = sum(m.original_size for m in members)
    total_stored = sum(m.stored_size for m in members)
    any_zstd = any(m.method == METHOD_ZSTD for m in members)
    arrays = []
    for a in summary.get("arrays", []) if isinstance(summary.get("arrays"), list) else []:
        if isinstance(a, dict):
            arrays.append({
                "name": a.get("name"),
                "shape": tuple(a.get("shape") or ()),
                "dtype": a.get("dtype"),
                "nbytes": a.get("nbytes"),
                "dead_rows": a.get("dead_rows", 0),
            })
    return {
        "version": VERSION,
        "compression": 1 if any_zstd else 0,
        "compression_name": "zstd" if any_zstd else "none",
        "file_count": len(members),
        "files": files,
        "total_original_size": total_original,
        "total_compressed_size": total_stored,
        "compression_ratio": (total_stored / total_original) if total_original > 0 else 1.0,
        "arrays": arrays,
        "numvault_version": summary.get("numvault_version"),
        "store_format_version": summary.get("store_format_version"),
    }


__all__ = ["pack", "unpack", "get_package_info", "PackageError", "PackageTooLargeError", "DEFAULT_MAX_SIZE"]
_ = DependencyError  # re-exported through numvault.io
