# cython: language_level=3, boundscheck=False, wraparound=False
"""Several small messages joined into one batch message, the JSON around them written in C.

Contract (shared with ``dranspose._reference.batchpack.join_messages``):
``join_messages(messages, pack_max)`` takes a list of at least two messages, each a list
``[header, *frames]`` (``header`` bytes-like, the JSON of that message), and returns
``[batch_header, packed, *large]``: ``batch_header`` is
``{"batch":[header,...],"packed":[size,...]}`` (the headers as they are, comma-separated; one
size per frame of every message in order: its length in bytes when it is packed, -1 when not),
``packed`` the concatenation (bytes) of every frame of at most ``pack_max`` bytes in order,
and ``large`` the other frames in order, passed on as they are (not copied). A frame's size is
``nbytes`` for a memoryview and ``len()`` otherwise. Inputs are only read; the two bytes
objects returned are new. Errors as ``bytes.join`` raises them (TypeError for a frame or header
that is not bytes-like); RuntimeError when a list changed under the call (a frame's ``len()``
running code): the lists are read in place.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.memoryview cimport PyMemoryView_Check
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef bytes OPEN = b'{"batch":['
cdef bytes MIDDLE = b'],"packed":['
cdef bytes CLOSE = b']}'


def join_messages(list messages not None, Py_ssize_t pack_max):
    """``[batch_header, packed, *large]`` of ``messages`` (see the module's contract)."""
    cdef Py_ssize_t nmsg = PyList_GET_SIZE(messages), i, j, nparts, nframes = 0, n, pos, total
    cdef list small = [], large = [], headers = []
    cdef list message
    cdef object frame, header, item
    cdef char* digits
    cdef char* out
    cdef Py_ssize_t ndigits = 0
    cdef bytes result
    if nmsg < 2:
        raise ValueError("join_messages needs at least two messages")
    for i in range(nmsg):
        item = <object>PyList_GET_ITEM(messages, i)
        if type(item) is not list:
            raise TypeError(f"a message must be a list, not {type(item).__name__}")
        message = <list>item
        if PyList_GET_SIZE(message) < 1:
            raise ValueError("a message without its header")
        nframes += PyList_GET_SIZE(message) - 1
    digits = <char*>malloc(21 * nframes + 1)  # "-1" or up to 19 digits, and a comma, per frame
    if digits == NULL:
        raise MemoryError()
    try:
        for i in range(nmsg):
            if i >= PyList_GET_SIZE(messages):
                raise RuntimeError("messages changed while they were joined")
            message = <list?><object>PyList_GET_ITEM(messages, i)  # checked again: a frame's len() could have run code
            nparts = PyList_GET_SIZE(message)
            if nparts < 1 or nparts - 1 > nframes:  # more frames than the digits were sized for
                raise RuntimeError("messages changed while they were joined")
            nframes -= nparts - 1
            header = <object>PyList_GET_ITEM(message, 0)
            headers.append(header if PyBytes_CheckExact(header) else bytes(header))
            for j in range(1, nparts):
                if j >= PyList_GET_SIZE(message):
                    raise RuntimeError("messages changed while they were joined")
                frame = <object>PyList_GET_ITEM(message, j)
                n = frame.nbytes if PyMemoryView_Check(frame) else len(frame)
                if ndigits:
                    digits[ndigits] = b","
                    ndigits += 1
                if n <= pack_max:
                    small.append(frame)
                    ndigits += snprintf(digits + ndigits, 21, "%zd", n)
                else:
                    large.append(frame)
                    digits[ndigits] = b"-"
                    digits[ndigits + 1] = b"1"
                    ndigits += 2
        joined = b",".join(headers)
        total = PyBytes_GET_SIZE(OPEN) + PyBytes_GET_SIZE(joined) + PyBytes_GET_SIZE(MIDDLE) + ndigits + PyBytes_GET_SIZE(CLOSE)
        result = PyBytes_FromStringAndSize(NULL, total)
        out = PyBytes_AS_STRING(result)
        pos = 0
        memcpy(out, PyBytes_AS_STRING(OPEN), PyBytes_GET_SIZE(OPEN))
        pos += PyBytes_GET_SIZE(OPEN)
        memcpy(out + pos, PyBytes_AS_STRING(joined), PyBytes_GET_SIZE(joined))
        pos += PyBytes_GET_SIZE(joined)
        memcpy(out + pos, PyBytes_AS_STRING(MIDDLE), PyBytes_GET_SIZE(MIDDLE))
        pos += PyBytes_GET_SIZE(MIDDLE)
        memcpy(out + pos, digits, ndigits)
        pos += ndigits
        memcpy(out + pos, PyBytes_AS_STRING(CLOSE), PyBytes_GET_SIZE(CLOSE))
    finally:
        free(digits)
    return [result, b"".join(small), *large]
