"""``dump(data, filename, lock=None)``: write a ``publish``-style dict to an HDF5 file.

The old helper's contract: a dict is a group, ``"<key>_attrs"`` holds the attributes of
``<key>``, ``"_attrs"`` those of the file; values h5py cannot store are left out with a warning;
no compression unless asked. The tree is copied under ``lock`` (any context manager, e.g. the
reducer's ``publish_rlock``) and written without holding it. Built on
:func:`dranspose.hdfrest.write_h5`, so files match what the HDF REST server shows.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, ContextManager

from dranspose.hdfrest.h5file import write_h5


def dump(
    data: Any,
    filename: str | os.PathLike[str],
    lock: ContextManager[Any] | None = None,
    *,
    compression: str | None = None,
    min_compress_bytes: int = 4096,
) -> None:
    """Write ``data`` to ``filename`` (replaced if it exists).

    ``compression``: None (default, as before), ``"gzip"`` or ``"bitshuffle"`` (needs
    hdf5plugin to read back); only numeric arrays of at least ``min_compress_bytes`` are
    compressed.
    """
    source = SimpleNamespace(publish=data, publish_rlock=lock)
    write_h5(source, filename, compression=compression, min_compress_bytes=min_compress_bytes)
