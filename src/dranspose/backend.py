"""The one switch between the compiled hot path (``_fastpath``) and the NumPy reference.

Every compiled function has a reference twin with the same signature, the same contract and
the same errors (:mod:`dranspose._reference`). ``DRANSPOSE_BACKEND=python`` forces the
reference; ``DRANSPOSE_BACKEND=compiled`` forces the extension (and fails loudly if it is not
built); unset, the compiled backend is used when importable, else the reference with a warning.

The exported functions (see ``Backend``):

* ``bslz4_decompress_into(src, dst, elem_size, block_bytes, start, nthreads)``
* ``bitshuffle_into(src, dst, elem_size, block_elems)`` / ``bitunshuffle_into(...)``
* ``lz4_block_decompress_into(src, dst)``
* ``hdf5lz4_decompress_into(src, dst, start, nthreads)``
* ``pickle_memo_end(buf, kinds, stores)``: the memo-index check of a binary pickle (-1: not
  proven here, :mod:`dranspose.pickle_ops` walks it in full).
* ``cbor_decode(buf)``: a CBOR item tree with byte strings as read-only zero-copy memoryviews,
  RFC 8746 typed arrays as zero-copy numpy views and tag 56500 payloads as
  :class:`~dranspose._reference.cbor_types.CompressedArray`.
* ``first_bad_count(values)``: the check of a control message's list of event numbers (index
  of the first entry that is not an int in ``0 .. 2**63-1``, else -1).
* ``build_model(cls, values)``: a pydantic model instance with ``values`` as its ``__dict__``,
  built without the model's constructor (:func:`dranspose.event.construct`).
* ``split_events(headers, frames, stream_cls, frame_cls)``: the events of a received batch from
  an ingester, checked, with their ``StreamData`` (:func:`dranspose.transport.framing.decode_all`).
* ``join_messages(messages, pack_max)``: several messages as one batch message, small frames
  packed into one (:func:`dranspose.transport.batching.join`).
* ``stins_image_frame(meta, known_types)``: the frame of a STINS image header that passes every
  check of the cutter, else None (:class:`dranspose.protocols.stins.StinsCutter`).

The codecs and checks release no ownership: outputs are caller-supplied, inputs are only
read; the compiled ones release the GIL while decoding and are thread-safe on distinct outputs.
The data loops' functions (``build_model``, ``split_events``, ``join_messages``,
``stins_image_frame``) hold the GIL: they make or read Python objects. ``build_model`` hands
``values`` to the instance it builds; the others only read their inputs, and a list changed
under them by code they call (a frame's ``len()``, ``frame_cls``) is a RuntimeError.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Union

from typing_extensions import Buffer, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import zmq

logger = logging.getLogger(__name__)

#: What the functions read and write: anything exporting the buffer protocol. numpy arrays and
#: ZeroMQ frames are named because their stubs declare ``__buffer__`` only from Python 3.12.
BufferLike: TypeAlias = Union[Buffer, "np.ndarray[Any, Any]", "zmq.Frame"]


class BsLz4DecompressInto(Protocol):
    """``(src, dst, elem_size, block_bytes, start=12, nthreads=1)``: the bslz4 stream at
    ``src[start:]`` decoded into all of ``dst``; raises ``CorruptFrameError`` on bad input."""

    def __call__(
        self, src: BufferLike, dst: BufferLike, elem_size: int, block_bytes: int, start: int = 12, nthreads: int = 1
    ) -> None: ...


class ShuffleInto(Protocol):
    """``(src, dst, elem_size, block_elems)``: (un)bitshuffle all of ``src`` into ``dst``."""

    def __call__(self, src: BufferLike, dst: BufferLike, elem_size: int, block_elems: int) -> None: ...


class Lz4BlockDecompressInto(Protocol):
    """``(src, dst)``: one raw LZ4 block that fills ``dst`` exactly."""

    def __call__(self, src: BufferLike, dst: BufferLike) -> None: ...


class Hdf5Lz4DecompressInto(Protocol):
    """``(src, dst, start=12, nthreads=1)``: the HDF5 LZ4 filter stream at ``src[start:]``."""

    def __call__(self, src: BufferLike, dst: BufferLike, start: int = 12, nthreads: int = 1) -> None: ...


class PickleMemoEnd(Protocol):
    """``(buf, kinds, stores)``: offset after the ``STOP`` of a pickle whose memo indices are
    sound, else -1 (then the full walk of :mod:`dranspose.pickle_ops` decides)."""

    def __call__(self, buf: BufferLike, kinds: Any, stores: Any) -> int: ...


class FirstBadCount(Protocol):
    """``(values)``: index of the first entry of a list that is not an int in ``0 .. 2**63-1``
    (``bool`` refused), else -1; the list is only read."""

    def __call__(self, values: list[Any]) -> int: ...


class BuildModel(Protocol):
    """``(cls, values)``: a ``cls`` instance whose ``__dict__`` is ``values`` (now owned by it),
    fields set = its keys, no extra or private values; the class's ``__setattr__`` is not called."""

    def __call__(self, cls: type[Any], values: dict[str, Any]) -> Any: ...


class SplitEvents(Protocol):
    """``(headers, frames, stream_cls, frame_cls)``: ``[(event_number, mapping, {stream:
    stream_cls instance}, created_at, whole), ...]`` of a batch's parsed headers and its frames in
    order (memoryviews become ``frame_cls`` copies, other frames are passed on); raises
    ValueError with the message of the first bad header or a frame count that does not match."""

    def __call__(
        self, headers: list[Any], frames: list[Any], stream_cls: type[Any], frame_cls: type[Any]
    ) -> list[tuple[int, str | None, dict[str, Any], str | None, bool]]: ...


class JoinMessages(Protocol):
    """``(messages, pack_max)``: ``[batch_header, packed, *large]`` of two or more messages
    ``[header, *frames]``: frames of at most ``pack_max`` bytes concatenated, the others passed on."""

    def __call__(self, messages: list[list[Any]], pack_max: int) -> list[Any]: ...


class StinsImageFrame(Protocol):
    """``(meta, known_types)``: the ``frame`` of a parsed STINS image header that passes every
    check of the cutter (its ``type`` among ``known_types``), else None (the cutter decides)."""

    def __call__(self, meta: Any, known_types: dict[str, Any]) -> int | None: ...


class CborDecode(Protocol):
    """``(buf)``: one CBOR item tree (byte strings as zero-copy read-only memoryviews)."""

    def __call__(self, buf: BufferLike) -> Any: ...


@dataclass(frozen=True)
class Backend:
    """The functions of one implementation."""

    name: str
    bslz4_decompress_into: BsLz4DecompressInto
    bitshuffle_into: ShuffleInto
    bitunshuffle_into: ShuffleInto
    lz4_block_decompress_into: Lz4BlockDecompressInto
    hdf5lz4_decompress_into: Hdf5Lz4DecompressInto
    cbor_decode: CborDecode
    pickle_memo_end: PickleMemoEnd
    first_bad_count: FirstBadCount
    build_model: BuildModel
    split_events: SplitEvents
    join_messages: JoinMessages
    stins_image_frame: StinsImageFrame


def _python() -> Backend:
    from dranspose._reference import batchpack, bslz4, cbor, eventframes, intlist, lz4, picklewalk, stinsmeta

    return Backend(
        name="python",
        bslz4_decompress_into=bslz4.bslz4_decompress_into,
        bitshuffle_into=bslz4.bitshuffle_into,
        bitunshuffle_into=bslz4.bitunshuffle_into,
        lz4_block_decompress_into=lz4.lz4_block_decompress_into,
        hdf5lz4_decompress_into=lz4.hdf5lz4_decompress_into,
        cbor_decode=cbor.cbor_decode,
        pickle_memo_end=picklewalk.pickle_memo_end,
        first_bad_count=intlist.first_bad_count,
        build_model=eventframes.build,
        split_events=eventframes.split_events,
        join_messages=batchpack.join_messages,
        stins_image_frame=stinsmeta.image_frame,
    )


def _compiled() -> Backend:
    from _fastpath import batchpack, bslz4, cborwalk, eventframes, intlist, lz4block, picklewalk, stinsmeta

    return Backend(
        name="compiled",
        bslz4_decompress_into=bslz4.bslz4_decompress_into,
        bitshuffle_into=bslz4.bitshuffle_into,
        bitunshuffle_into=bslz4.bitunshuffle_into,
        lz4_block_decompress_into=lz4block.lz4_block_decompress_into,
        hdf5lz4_decompress_into=lz4block.hdf5lz4_decompress_into,
        cbor_decode=cborwalk.cbor_decode,
        pickle_memo_end=picklewalk.pickle_memo_end,
        first_bad_count=intlist.first_bad_count,
        build_model=eventframes.build,
        split_events=eventframes.split_events,
        join_messages=batchpack.join_messages,
        stins_image_frame=stinsmeta.image_frame,
    )


def available() -> dict[str, Backend]:
    """Every importable backend by name (tests run the conformance kit over all of them)."""
    found = {"python": _python()}
    try:
        found["compiled"] = _compiled()
    except ImportError as exc:
        logger.warning("compiled backend unavailable: %s", exc)
    return found


def _select() -> Backend:
    wanted = os.environ.get("DRANSPOSE_BACKEND", "").strip().lower()
    if wanted == "python":
        return _python()
    if wanted == "compiled":
        return _compiled()
    if wanted:
        raise ValueError(f"DRANSPOSE_BACKEND must be 'python' or 'compiled', not {wanted!r}")
    try:
        return _compiled()
    except ImportError as exc:
        logger.warning("compiled backend unavailable (%s); using the NumPy reference", exc)
        return _python()


active: Backend = _select()
NAME = active.name
bslz4_decompress_into = active.bslz4_decompress_into
bitshuffle_into = active.bitshuffle_into
bitunshuffle_into = active.bitunshuffle_into
lz4_block_decompress_into = active.lz4_block_decompress_into
hdf5lz4_decompress_into = active.hdf5lz4_decompress_into
cbor_decode = active.cbor_decode
pickle_memo_end = active.pickle_memo_end
first_bad_count = active.first_bad_count
build_model = active.build_model
split_events = active.split_events
join_messages = active.join_messages
stins_image_frame = active.stins_image_frame
