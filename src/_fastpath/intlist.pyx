# cython: language_level=3, boundscheck=False, wraparound=False
"""The check of a list of event numbers in one C loop.

Contract (shared with ``dranspose._reference.intlist.first_bad_count``):
``first_bad_count(values)`` returns the index of the first entry of the list ``values`` that is
not an ``int`` (exactly: ``bool`` is refused) in ``0 .. 2**63 - 1``, or -1 when every entry is
one. ``values`` must be a ``list`` exactly (else TypeError); it is only read. Callers (the
control-message decoders) raise the precise error.
"""

from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.ref cimport PyObject

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(PyObject* obj, int* overflow) except? -1
    int PyLong_CheckExact_ptr "PyLong_CheckExact"(PyObject* obj)


def first_bad_count(list values not None) -> int:
    """Index of the first entry that is not an int in ``0 .. 2**63 - 1``, else -1."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(values)
    cdef PyObject* item
    cdef int overflow = 0
    cdef long long v
    for i in range(n):
        item = PyList_GET_ITEM(values, i)
        if not PyLong_CheckExact_ptr(item):
            return i
        v = PyLong_AsLongLongAndOverflow(item, &overflow)
        if overflow != 0 or v < 0:
            return i
    return -1
