"""HDF REST server over the reducer's ``publish`` dict (h5pyd 0.18-1.0, silx, H5Web).

Public API: :func:`create_app`, :func:`mount`. See shared/HDFREST.md for the client facts.
"""

from dranspose.hdfrest.app import create_app, mount

__all__ = ["create_app", "mount"]
