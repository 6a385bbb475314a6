"""HDF REST server over the reducer's ``publish`` dict (h5pyd 0.18-1.0, silx, H5Web), plus
HDF5 file output and the feedback channel.

Public API: :func:`create_app`, :func:`mount` (server); :func:`write_h5` (file output);
:class:`FeedbackHub`, :func:`mount_feedback` (feedback). See shared/HDFREST.md.
"""

from dranspose.hdfrest.app import create_app, mount
from dranspose.hdfrest.feedback import FeedbackHub, mount_feedback
from dranspose.hdfrest.h5file import write_h5

__all__ = ["create_app", "mount", "FeedbackHub", "mount_feedback", "write_h5"]
