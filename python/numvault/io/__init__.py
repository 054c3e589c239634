"""numvault.io: conversions between numvault stores and common formats,
and one-file packages of a store. The functions of ``numpack.io`` 0.7, under
the same names and signatures (see ``docs/IO.md``).

* File converters (``.npy``/``.npz``, CSV/TXT, HDF5, Zarr, Parquet, Feather,
  safetensors) stream in bounded memory (about ``chunk_size`` plus the
  engine's 64 MiB transaction budget, whatever the file's size).
* In-memory converters (pandas DataFrames, Arrow tables, tensors, tensor
  dicts, ``.pt`` files) hold the object and its array, as their docstrings
  say.
* Every import into numvault is one atomic commit: a failed conversion (a
  bad row, a truncated file) leaves the target store as it was and raises
  :class:`ConversionError` naming the source and the place in it. Every
  export writes a temporary file beside the output and renames it when
  complete.
* Optional libraries are imported when a converter needs them; a missing
  one raises :class:`DependencyError` naming the package to install
  (``pip install 'numvault[io]'`` installs them all but torch).
* :func:`pack` / :func:`unpack` / :func:`get_package_info`: a whole store in
  one verified file (format: ``docs/PACKAGE.md``).
"""

from __future__ import annotations

from .utils import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_CHUNK_SIZE,
    LARGE_FILE_THRESHOLD,
    ConversionError,
    DependencyError,
    estimate_chunk_rows,
    get_file_size,
    is_large_file,
)
from .numpy_io import from_npy, to_npy
from .csv_io import from_csv, from_txt, to_csv, to_txt
from .hdf5_io import from_hdf5, to_hdf5
from .zarr_io import from_zarr, to_zarr
from .parquet_io import (
    from_parquet,
    from_parquet_file,
    from_parquet_table,
    to_parquet,
    to_parquet_file,
    to_parquet_table,
)
from .feather_io import from_feather, from_feather_file, from_table, to_feather, to_feather_file, to_table
from .pandas_io import from_dataframe, to_dataframe
from .pytorch_io import from_pt, from_tensor, to_pt, to_tensor
from .safetensors_io import (
    from_safetensors_file,
    from_tensor_dict,
    get_safetensors_metadata,
    iter_safetensors,
    to_safetensors_file,
    to_tensor_dict,
)
from .package_io import PackageError, get_package_info, pack, unpack
from .zero_copy import (
    DLPackBuffer,
    ZeroCopyArray,
    arrow_to_numpy_zero_copy,
    from_dlpack,
    numpy_to_arrow_zero_copy,
    numpy_to_torch_zero_copy,
    table_to_numpy_zero_copy,
    to_dlpack,
    torch_to_numpy_zero_copy,
    wrap_for_zero_copy,
)
from .s3_io import from_s3, to_s3

__all__ = [
    "DependencyError",
    "ConversionError",
    "PackageError",
    "get_file_size",
    "is_large_file",
    "estimate_chunk_rows",
    "from_npy",
    "to_npy",
    "from_csv",
    "to_csv",
    "from_txt",
    "to_txt",
    "from_hdf5",
    "to_hdf5",
    "from_zarr",
    "to_zarr",
    "from_parquet",
    "to_parquet",
    "from_parquet_file",
    "to_parquet_file",
    "from_parquet_table",
    "to_parquet_table",
    "from_feather",
    "to_feather",
    "from_feather_file",
    "to_feather_file",
    "from_table",
    "to_table",
    "from_dataframe",
    "to_dataframe",
    "from_pt",
    "to_pt",
    "from_tensor",
    "to_tensor",
    "from_safetensors_file",
    "to_safetensors_file",
    "from_tensor_dict",
    "to_tensor_dict",
    "get_safetensors_metadata",
    "iter_safetensors",
    "from_s3",
    "to_s3",
    "pack",
    "unpack",
    "get_package_info",
    "LARGE_FILE_THRESHOLD",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_BATCH_ROWS",
    "DLPackBuffer",
    "to_dlpack",
    "from_dlpack",
    "numpy_to_arrow_zero_copy",
    "arrow_to_numpy_zero_copy",
    "table_to_numpy_zero_copy",
    "numpy_to_torch_zero_copy",
    "torch_to_numpy_zero_copy",
    "ZeroCopyArray",
    "wrap_for_zero_copy",
]

# NumPack-format stores (written by NumPack itself), read by numpack_store.py.
try:
    from .numpack_store import from_numpack  # noqa: F401

    __all__.append("from_numpack")
except ImportError:
    pass
