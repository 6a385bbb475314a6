"""LeCroy MAUI oscilloscope stream (PROTOCOLS §12, typ ``lecroy_9fwdWp6Rq7``).

Wire (PUB): single-part JSON control messages ``{"htype":"msg","what":w,...}`` with w = 0
PREPARE, 1 SEQSTART, 2 SEQEND, 3 STOP, and 3-part ``traces`` messages [JSON, raw little-endian
``(n_seg, n_pts)`` array, pickled list of ``n_seg`` trigger times].

:class:`LecroyCutter` (one event per sequence):
* PREPARE immediately followed by SEQSTART -> START unit [PREPARE];
* each SEQEND closes a DATA unit [SEQSTART, 3 frames per channel, SEQEND]; in continuous mode
  the one SEQSTART is cached and repeated in every unit, in sequential mode each SEQSTART
  replaces it;
* STOP -> END unit [STOP].
Bounded: a sequence holds one trace per channel its SEQSTART announces (at most
:data:`MAX_CHANNELS`); a further trace drops the sequence with a ProtocolError.
Timestamps pickles are read with the restricted §13 unpickler. The models are re-exported by
``dranspose.data.lecroy`` and :func:`parse` by ``dranspose.middlewares.lecroy``.
"""

from __future__ import annotations

import enum
import json
import pickle
from typing import Any, Literal, Sequence, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._pickles import load_wire_pickle
from dranspose.protocols._wire import array_from_frame, loads_json_object
from dranspose.protocols.base import Frame, Kind, Unit, compat_module

LECROY_TYPE = "lecroy_9fwdWp6Rq7"
TYP = LECROY_TYPE
SOCKET = "SUB"


class WhatEnum(enum.IntEnum):
    """The ``what`` of a control message (names as in the old ``dranspose.data.lecroy``)."""

    PREPARE = 0
    START = 1
    SEQEND = 2
    STOP = 3


PREPARE, SEQSTART, SEQEND, STOP = 0, 1, 2, 3


# --- models ------------------------------------------------------------------------------------


class LecroyBase(BaseModel):
    """Fields of every LeCroy message; mutable, extra keys allowed."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    htype: str = "msg"
    frame: int = 0

    def to_stream_data(self) -> StreamData:
        """Control packets: one JSON frame."""
        return StreamData(typ=LECROY_TYPE, frames=[dumps_packet(self)])


class LecroyPrepare(LecroyBase):
    htype: Literal["msg"] = "msg"
    what: Literal[0] = 0


class LecroySeqStart(LecroyBase):
    htype: Literal["msg"] = "msg"
    what: Literal[1] = 1
    ntriggers: int = -1
    seqno: int = 0
    channels: list[int] = Field(default_factory=list)


class LecroySeqEnd(LecroyBase):
    htype: Literal["msg"] = "msg"
    what: Literal[2] = 2


class LecroyEnd(LecroyBase):
    """STOP: the last message of an acquisition; ``frames`` = number of trace messages sent."""

    htype: Literal["msg"] = "msg"
    what: Literal[3] = 3
    frames: int = 0


class LecroyData(LecroyBase):
    """Metadata of one trace message (one channel): shape ``[n_seg, n_pts]`` of ``dtype``."""

    htype: Literal["traces"] = "traces"
    ch: int
    ts: float
    shape: list[int]
    dtype: str = "float64"
    horiz_offset: float = 0.0
    horiz_interval: float = 0.0


class LecroyParsed(LecroySeqStart):
    """One sequence: the SEQSTART fields plus, per channel in arrival order, the trace metadata
    (``meta``), the waveforms (``data``, read-only ``(n_seg, n_pts)`` views) and the per-segment
    trigger times (``timestamps``, epoch seconds)."""

    meta: list[LecroyData] = Field(default_factory=list)
    data: list[Any] = Field(default_factory=list)
    timestamps: list[list[float]] = Field(default_factory=list)

    def to_stream_data(self) -> StreamData:
        """The data unit's frames: SEQSTART, 3 frames per channel, SEQEND."""
        return StreamData(typ=LECROY_TYPE, frames=encode_parsed(self))


LecroyPacketType = Union[LecroyPrepare, LecroySeqStart, LecroySeqEnd, LecroyEnd, LecroyData, LecroyParsed]
LecroyPacket: TypeAdapter[LecroyPacketType] = TypeAdapter(LecroyPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module(
    "dranspose.data.lecroy",
    WhatEnum, LecroyBase, LecroyPrepare, LecroySeqStart, LecroySeqEnd, LecroyEnd, LecroyData, LecroyParsed,
)  # fmt: skip


# --- decoding ----------------------------------------------------------------------------------

_CONTROL: dict[int, Any] = {PREPARE: LecroyPrepare, SEQSTART: LecroySeqStart, SEQEND: LecroySeqEnd, STOP: LecroyEnd}


def _validate(model: Any, obj: dict[str, Any]) -> Any:
    try:
        return model.model_validate(obj)
    except ValueError as exc:
        raise ProtocolError(f"lecroy {model.__name__} invalid: {exc}") from exc


def _control_what(msg: dict[str, Any]) -> int:
    what = msg.get("what")
    if msg.get("htype") != "msg" or type(what) is not int or what not in _CONTROL:
        raise ProtocolError(f"lecroy control message htype={msg.get('htype')!r:.20} what={what!r:.20} unknown")
    return what


MAX_CHANNELS = 16  # channels of one sequence (a MAUI scope has 4 or 8)


def _channel_count(seqstart: dict[str, Any]) -> int:
    """The number of channels a SEQSTART announces (its traces per sequence), validated."""
    channels = seqstart.get("channels")
    if not isinstance(channels, list) or not all(type(c) is int for c in channels):
        raise ProtocolError(f"lecroy SEQSTART channels {channels!r:.40} is not a list of ints")
    if len(channels) > MAX_CHANNELS:
        raise ProtocolError(f"lecroy SEQSTART has {len(channels)} channels, more than {MAX_CHANNELS}")
    return len(channels)


def decode_trace(frames: Sequence[Frame]) -> tuple[LecroyData, np.ndarray, list[float]]:
    """Decode one 3-frame trace message: metadata, waveform view, trigger times."""
    if len(frames) != 3:
        raise ProtocolError(f"lecroy trace has {len(frames)} parts, expected 3")
    meta = _validate(LecroyData, loads_json_object(frames[0], "lecroy trace header"))
    data = array_from_frame(frames[1], meta.dtype, meta.shape, "lecroy waveform")
    times = load_wire_pickle(frames[2], "lecroy timestamps pickle")
    if not isinstance(times, list) or not all(type(t) in (float, int) for t in times):
        raise ProtocolError("lecroy timestamps are not a list of numbers")
    return meta, data, [float(t) for t in times]


def decode(frames: Sequence[Frame]) -> LecroyPacketType:
    """Decode one unit: a control message (1 frame) or a sequence (2 + 3*n_channels frames).

    A sequence gives :class:`LecroyParsed`; the number of traces must equal ``len(channels)``
    of its SEQSTART. Raises ProtocolError.
    """
    if len(frames) == 0:
        raise ProtocolError("lecroy unit has no frames")
    head = loads_json_object(frames[0], "lecroy part 0")
    if head.get("htype") == "traces":
        meta, _data, _times = decode_trace(frames)
        return meta
    what = _control_what(head)
    if len(frames) == 1:
        return _validate(_CONTROL[what], head)  # type: ignore[no-any-return]
    if what != SEQSTART:
        raise ProtocolError(f"lecroy unit of {len(frames)} frames starts with what={what}, expected SEQSTART")
    nch = _channel_count(head)
    parsed: LecroyParsed = _validate(LecroyParsed, head)
    if len(frames) != 2 + 3 * nch:
        raise ProtocolError(f"lecroy sequence has {len(frames)} frames, expected {2 + 3 * nch} for {nch} channels")
    tail = loads_json_object(frames[-1], "lecroy last part")
    if _control_what(tail) != SEQEND:
        raise ProtocolError("lecroy sequence does not end with SEQEND")
    for i in range(nch):
        meta, data, times = decode_trace(frames[1 + 3 * i : 4 + 3 * i])
        parsed.meta.append(meta)
        parsed.data.append(data)
        parsed.timestamps.append(times)
    return parsed


def parse(data: StreamData) -> LecroyPacketType:
    """Decode one LeCroy stream unit: PREPARE/STOP give LecroyPrepare/LecroyEnd, a sequence unit
    (SEQSTART, 3 frames per channel, SEQEND) gives LecroyParsed with ``meta``, ``data`` (views into
    the frames) and ``timestamps`` per channel. Raises ProtocolError (a ValueError)."""
    if data.typ != LECROY_TYPE:
        raise ProtocolError(f"stream typ {data.typ!r} is not {LECROY_TYPE!r}")
    return decode(data.frames)


# --- stream cutting ----------------------------------------------------------------------------



class LecroyCutter:
    """Groups LeCroy messages into one unit per sequence (see module docstring). Not thread-safe.

    Frames are put into units unchanged; the cached SEQSTART frame is shared by every unit of a
    continuous acquisition.
    """

    typ = TYP
    has_start = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prepare: Frame | None = None
        self._seqstart: Frame | None = None
        self._traces: list[Frame] = []
        self._channels = 0  # traces of the current sequence: 1 per channel of its SEQSTART
        self._sequences = 0

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) == 3:
            self._prepare = None
            head = loads_json_object(parts[0], "lecroy trace header")
            if head.get("htype") != "traces":
                raise ProtocolError(f"lecroy 3-part message has htype {head.get('htype')!r:.20}")
            if self._seqstart is None:
                raise ProtocolError("lecroy trace before any SEQSTART; dropped")
            if len(self._traces) >= 3 * self._channels:
                self._traces = []
                raise ProtocolError(
                    f"lecroy sequence has more traces than its {self._channels} channels; sequence dropped"
                )
            self._traces.extend(parts)
            return []
        if len(parts) != 1:
            raise ProtocolError(f"lecroy message has {len(parts)} parts, expected 1 or 3")
        head = loads_json_object(parts[0], "lecroy control message")
        what = _control_what(head)
        prepare, self._prepare = self._prepare, None
        if what == PREPARE:
            self._prepare = parts[0]
            self._seqstart = None
            self._traces = []
            self._sequences = 0
            return []
        if what == SEQSTART:
            self._seqstart = None
            self._traces = []
            self._channels = _channel_count(head)
            self._seqstart = parts[0]
            return [Unit(Kind.START, [prepare])] if prepare is not None else []
        if what == SEQEND:
            if self._seqstart is None:
                self._traces = []
                raise ProtocolError("lecroy SEQEND without SEQSTART; dropped")
            unit = Unit(Kind.DATA, [self._seqstart, *self._traces, parts[0]], frame_number=self._sequences)
            self._sequences += 1
            self._traces = []
            return [unit]
        # STOP
        self._seqstart = None
        self._traces = []
        return [Unit(Kind.END, [parts[0]])]


CUTTER = LecroyCutter


# --- synthetic encoding ------------------------------------------------------------------------


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()  # the server's style: spaces after separators


def dumps_packet(packet: LecroyBase) -> bytes:
    return _dumps(packet.model_dump(exclude={"meta", "data", "timestamps"}))


def encode_prepare(frame: int = 0) -> list[bytes]:
    return [_dumps({"htype": "msg", "what": PREPARE, "frame": frame})]


def encode_seqstart(frame: int, ntriggers: int, seqno: int, channels: Sequence[int]) -> list[bytes]:
    msg = {"htype": "msg", "what": SEQSTART, "frame": frame, "ntriggers": ntriggers, "seqno": seqno}
    return [_dumps({**msg, "channels": list(channels)})]


def encode_seqend(frame: int) -> list[bytes]:
    return [_dumps({"htype": "msg", "what": SEQEND, "frame": frame})]


def encode_stop(frame: int, frames: int) -> list[bytes]:
    return [_dumps({"htype": "msg", "what": STOP, "frame": frame, "frames": frames})]


def encode_traces(
    ch: int,
    frame: int,
    data: np.ndarray,
    timestamps: Sequence[float],
    ts: float = 0.0,
    horiz_offset: float = 0.0,
    horiz_interval: float = 1e-9,
) -> list[bytes]:
    """A 3-part trace message for a ``(n_seg, n_pts)`` waveform array."""
    arr = np.ascontiguousarray(data, dtype=np.dtype(data.dtype.name).newbyteorder("<"))
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    header = {
        "htype": "traces",
        "ch": ch,
        "ts": ts,
        "frame": frame,
        "shape": list(arr.shape),
        "horiz_offset": horiz_offset,
        "horiz_interval": horiz_interval,
        "dtype": arr.dtype.name,
    }
    return [_dumps(header), arr.tobytes(), pickle.dumps([float(t) for t in timestamps], protocol=4)]


def encode_parsed(parsed: LecroyParsed) -> list[bytes]:
    """The frames of a data unit for ``parsed``: SEQSTART, traces, SEQEND."""
    frames = encode_seqstart(parsed.frame, parsed.ntriggers, parsed.seqno, parsed.channels)
    for i, meta in enumerate(parsed.meta):
        data = np.asarray(parsed.data[i]) if i < len(parsed.data) else np.zeros((0, 0))
        times = parsed.timestamps[i] if i < len(parsed.timestamps) else []
        frames += encode_traces(
            meta.ch, meta.frame, data, times, meta.ts, meta.horiz_offset, meta.horiz_interval
        )
    end_frame = parsed.meta[-1].frame + 1 if parsed.meta else parsed.frame
    return frames + encode_seqend(end_frame)
