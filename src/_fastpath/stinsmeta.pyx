# cython: language_level=3, boundscheck=False, wraparound=False
"""The ingester's check of a STINS image header in one C pass.

Contract (shared with ``dranspose._reference.stinsmeta.image_frame``):
``image_frame(meta, known_types)`` returns the ``frame`` of ``meta`` (a dict: a STINS part-0
header) when it is an image header that passes every check the cutter makes: ``htype`` is
``"image"``, ``frame`` an int (not bool), ``compression`` absent or ``"none"`` / ``"bslz4"`` /
``"lz4"``, ``msg_number`` absent, None or an int, ``shape`` (and ``chunks`` unless absent or
None) a list of non-negative ints, and ``type`` a str that is a key of ``known_types`` (the
dtype names the cutter has already accepted). Otherwise it returns None: not proven here, the
cutter's own checks decide (and name the fault). ``meta`` is only read.
"""

from cpython.dict cimport PyDict_CheckExact
from cpython.list cimport PyList_CheckExact
from cpython.long cimport PyLong_CheckExact
from cpython.unicode cimport PyUnicode_CheckExact

cdef str IMAGE = "image"
cdef tuple COMPRESSIONS = ("none", "bslz4", "lz4")


cdef inline bint _shape_ok(object value):
    cdef object v
    if not PyList_CheckExact(value):
        return False
    for v in <list>value:
        if not PyLong_CheckExact(v) or v < 0:
            return False
    return True


def image_frame(object meta, dict known_types not None):
    """The frame number of a well-formed image header, else None (see the module's contract)."""
    cdef object frame, compression, msg_number, chunks, typ
    cdef dict d
    if not PyDict_CheckExact(meta):
        return None
    d = <dict>meta
    if d.get("htype") != IMAGE:
        return None
    frame = d.get("frame")
    if not PyLong_CheckExact(frame):
        return None
    compression = d.get("compression", "none")
    if not PyUnicode_CheckExact(compression) or compression not in COMPRESSIONS:
        return None
    msg_number = d.get("msg_number")
    if msg_number is not None and not PyLong_CheckExact(msg_number):
        return None
    if not _shape_ok(d.get("shape")):
        return None
    typ = d.get("type")
    if not PyUnicode_CheckExact(typ) or typ not in known_types:
        return None
    chunks = d.get("chunks")
    if chunks is not None and not _shape_ok(chunks):
        return None
    return frame
