"""``from_s3`` / ``to_s3`` of ``numpack.io``: object storage is not supported
by numvault yet; both raise :class:`NotImplementedError` saying so (and
what to do instead)."""

from __future__ import annotations

from typing import Any, Optional

from .utils import DEFAULT_CHUNK_SIZE

_MSG = (
    "numvault.io.{name}: object storage (S3) is not supported yet. Copy the object to a local "
    "file first (e.g. with the AWS CLI or s3fs) and use the converter for its format "
    "(from_npy, from_parquet, ...), or export locally and upload the file."
)


class ObjectStorageNotSupported(NotImplementedError):
    """Raised by :func:`from_s3` and :func:`to_s3`."""


def from_s3(s3_path: str, output_path: Any, format: str = "auto", drop_if_exists: bool = False,
            chunk_size: int = DEFAULT_CHUNK_SIZE, return_npk_obj: bool = False, **s3_kwargs: Any) -> Any:
    """Not supported yet: raises :class:`ObjectStorageNotSupported`
    (a ``NotImplementedError``)."""
    raise ObjectStorageNotSupported(_MSG.format(name="from_s3"))


def to_s3(input_path: Any, s3_path: str, format: str = "auto", array_name: Optional[str] = None,
          chunk_size: int = DEFAULT_CHUNK_SIZE, **s3_kwargs: Any) -> None:
    """Not supported yet: raises :class:`ObjectStorageNotSupported`
    (a ``NotImplementedError``)."""
    raise ObjectStorageNotSupported(_MSG.format(name="to_s3"))


__all__ = ["from_s3", "to_s3", "ObjectStorageNotSupported"]
