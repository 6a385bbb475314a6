# cython: language_level=3, boundscheck=False, wraparound=False
"""The worker's per-event Python objects, built in C: a model instance without its
constructor, and the events of a received batch.

Contract (shared with ``dranspose._reference.eventframes``):

* ``build(cls, values)``: a new ``cls`` instance whose ``__dict__`` is ``values`` (owned by the
  instance from then on), ``__pydantic_fields_set__`` the set of its keys and
  ``__pydantic_extra__`` / ``__pydantic_private__`` None, set the way ``object.__setattr__``
  sets them (the class's own ``__setattr__`` is not called). Only for classes the caller found
  to come out identical to ``cls.model_construct(**values)`` (``dranspose.event.construct``).
* ``split_events(headers, frames, stream_cls, frame_cls)``: the events of a batch whose
  parsed JSON headers are ``headers`` (a list) and whose frames after the header frame are
  ``frames`` (a list, in order): a list of ``(event_number, mapping, streams, created_at,
  whole)`` (``whole``: the header's boolean ``"whole"``, False when absent) with ``streams``
  a dict ``{name: build(stream_cls, {"typ": typ, "frames": [...]})}`` in header order. A
  frame that is a ``memoryview`` (a view into a packed frame) becomes ``frame_cls(view)``;
  other frames are passed on as they are (not copied). Every header is
  checked as a single message's header; the first bad one, or a frame count that does not match
  ``frames`` exactly, raises ValueError with the message ``dranspose.transport.framing``
  gives. Inputs are only read; RuntimeError when ``frames`` changed under the call (through
  ``frame_cls``): it is read in place.
"""

from cpython.object cimport PyObject_GenericSetAttr, PyTypeObject
from cpython.type cimport PyType_Check
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.long cimport PyLong_CheckExact
from cpython.memoryview cimport PyMemoryView_Check
from cpython.ref cimport PyObject

cdef str DICT = "__dict__"
cdef str FIELDS_SET = "__pydantic_fields_set__"
cdef str EXTRA = "__pydantic_extra__"
cdef str PRIVATE = "__pydantic_private__"


cdef tuple NO_ARGS = ()


cdef inline object _build(object cls, dict values):
    # the class's own tp_new slot, as cls.__new__(cls) reaches it (pydantic models inherit
    # object's), without looking the attribute up and parsing arguments
    if not PyType_Check(cls):
        raise TypeError(f"expected a class, got {type(cls).__name__}")
    cdef object m = (<PyTypeObject*>cls).tp_new(<type>cls, <PyObject*>NO_ARGS, NULL)
    PyObject_GenericSetAttr(m, DICT, values)
    PyObject_GenericSetAttr(m, FIELDS_SET, set(values))
    PyObject_GenericSetAttr(m, EXTRA, None)
    PyObject_GenericSetAttr(m, PRIVATE, None)
    return m


def build(object cls, dict values not None):
    """A ``cls`` instance with ``values`` as its ``__dict__`` (see the module's contract)."""
    return _build(cls, values)


cdef tuple _checked_header(object header):
    """(event_number, mapping, declared streams, created_at, whole) of one batch header."""
    cdef object event_number, declared, mapping, created, whole
    try:
        if not isinstance(header, dict):
            raise TypeError("not an object")
        event_number = header["event_number"]
        if not PyLong_CheckExact(event_number) or event_number < 0:
            raise TypeError(f"event_number is {event_number!r}")
        declared = header["streams"]
        if not isinstance(declared, dict):
            raise TypeError("streams is not an object")
        mapping = header.get("mapping")
        created = header.get("created_at")
        if mapping is not None and not isinstance(mapping, str):
            raise TypeError(f"mapping is {mapping!r}")
        if created is not None and not isinstance(created, str):
            raise TypeError(f"created_at is {created!r}")
        whole = header.get("whole", False)
        if whole is not True and whole is not False:
            raise TypeError(f"whole is {whole!r}")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ValueError(f"bad ingester header {repr(header)[:80]!r}: {exc}") from None
    return event_number, mapping, declared, created, whole


def split_events(list headers not None, list frames not None, object stream_cls, object frame_cls):
    """Every event of a batch (see the module's contract)."""
    cdef list out = []
    cdef Py_ssize_t pos = 0, n = PyList_GET_SIZE(frames), length_c, i
    cdef object header, event_number, mapping, declared, created, whole, name, info, length, typ, frame
    cdef dict streams
    cdef list mine
    for header in headers:
        event_number, mapping, declared, created, whole = _checked_header(header)
        streams = {}
        for name, info in (<dict>declared).items():
            try:
                length, typ = info["length"], info["typ"]
                if not PyLong_CheckExact(length) or not isinstance(typ, str):
                    raise TypeError(f"length {length!r}, typ {typ!r}")
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"event {event_number}: bad stream entry {name!r}: {exc}") from None
            if length < 0 or length > n - pos:
                raise ValueError(
                    f"event {event_number}: stream {name!r} declares {length} frames, message has {n - pos} left"
                )
            length_c = length
            mine = []
            for i in range(pos, pos + length_c):
                if PyList_GET_SIZE(frames) != n:  # frame_cls could have run code
                    raise RuntimeError("frames changed while the batch was split")
                frame = <object>PyList_GET_ITEM(frames, i)
                mine.append(frame_cls(frame) if PyMemoryView_Check(frame) else frame)
            streams[name] = _build(stream_cls, {"typ": typ, "frames": mine})
            pos += length_c
        out.append((event_number, mapping, streams, created, whole))
    if pos != n:
        raise ValueError(f"batch declares {pos} frames, message has {n}")
    return out
