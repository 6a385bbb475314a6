"""Helpers analyses import from the old ``dranspose.helpers`` package (COMPAT §1):
:mod:`.h5dump` (``publish`` to an HDF5 file), :mod:`.incremental` (growing arrays for
reducers) and :mod:`.utils` (``import_class``, ``parameters_hash``)."""
