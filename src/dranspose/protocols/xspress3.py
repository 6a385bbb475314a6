"""Xspress3 fluorescence detector stream (PROTOCOLS §6, typ ``xspress``).

Wire: a PUB socket sends a JSON header, per frame an image (either one 3-part message
[JSON, raw uint32 histogram, pickled meta list] or, in the legacy form, the same three parts as
three separate single-part messages), and ``{"htype":"series_end"}``.

* :func:`decode` turns the frames of one unit into :mod:`dranspose.data.xspress3` objects.
  The histogram is a zero-copy read-only view of frame 1; the meta pickle is read with the
  restricted §13 unpickler. Meta entries are named with the compat names (``ocr``, ``AllEvents``,
  ...); a 9th entry is kept as ``window_counts`` (gap §15.5), and when the header's
  ``extra_tags`` are known every entry is also reachable under its header name.
* :class:`XspressCutter` joins the legacy 3-message form into one 3-frame unit.
* ``encode_*`` build synthetic messages (multipart form); send each part as its own message for
  the legacy form.

The models are re-exported by ``dranspose.data.xspress3``, :func:`parse` and
:class:`XspressParser` by ``dranspose.middlewares.xspress``.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any, Literal, Sequence, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._pickles import load_wire_pickle
from dranspose.protocols._wire import (
    array_from_frame,
    check_shape,
    dumps_json,
    frame_view,
    loads_json_object,
    wire_dtype,
)
from dranspose.protocols.base import Frame, Kind, Unit, compat_module

log = logging.getLogger(__name__)

TYP = "xspress"
SOCKET = "SUB"


# --- models ------------------------------------------------------------------------------------


class XspressBase(BaseModel):
    """An Xspress3 packet: mutable, extra keys allowed."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)


class XspressStart(XspressBase):
    """Series header. The multipart form adds ``limits`` and ``extra_tags`` (meta entry names)."""

    htype: Literal["header"] = "header"
    filename: str = ""

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=encode_header_dict(self.model_dump()))


class XspressImage(XspressBase):
    """One spectrum frame. ``data`` is a read-only ``(n_channels, n_bins)`` view of the histogram
    frame (absent/None for compressed frames); ``meta`` maps names to the per-channel arrays."""

    htype: Literal["image"] = "image"
    frame: int
    shape: list[int]
    exptime: float | None = 1.0
    type: str = "uint32"
    compression: str | None = "none"
    data: Any = None
    meta: dict[str, Any] = Field(default_factory=dict)

    def to_stream_data(self) -> StreamData:
        """The 3-frame (multipart form) stream data: JSON, raw histogram, pickled meta."""
        header = self.model_dump(exclude={"data", "meta"})
        return StreamData(typ=TYP, frames=encode_image_parts(header, self.data, self.meta))


class XspressEnd(XspressBase):
    htype: Literal["series_end"] = "series_end"

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=encode_end())


XspressPacketType = Union[XspressStart, XspressImage, XspressEnd]
XspressPacket: TypeAdapter[XspressPacketType] = TypeAdapter(XspressPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module("dranspose.data.xspress3", XspressBase, XspressStart, XspressImage, XspressEnd)


# --- decoding ----------------------------------------------------------------------------------

# Compat names of the 8 classic meta entries, in wire order, then the multipart form's extras.
META_NAMES: tuple[str, ...] = (
    "ocr",
    "AllEvents",
    "AllGood",
    "ClockTicks",
    "TotalTicks",
    "ResetTicks",
    "event_widths",
    "dtc",
)
EXTRA_META_NAMES: tuple[str, ...] = ("window_counts",)


def meta_names(count: int, extra_tags: Sequence[str] | None = None) -> list[list[str]]:
    """For each of ``count`` meta entries, the keys it is stored under (first = primary)."""
    defaults = META_NAMES + EXTRA_META_NAMES
    names: list[list[str]] = []
    for i in range(count):
        keys: list[str] = []
        if i < len(defaults):
            keys.append(defaults[i])
        if extra_tags is not None and i < len(extra_tags) and isinstance(extra_tags[i], str):
            if extra_tags[i] not in keys:
                keys.append(extra_tags[i])
        if not keys:
            keys.append(f"meta{i}")
        names.append(keys)
    return names


def _meta_dict(meta: Any, extra_tags: Sequence[str] | None) -> dict[str, Any]:
    if isinstance(meta, dict):
        if not all(isinstance(k, str) for k in meta):
            raise ProtocolError("xspress3 meta dict has non-string keys")
        return dict(meta)
    if not isinstance(meta, (list, tuple)):
        raise ProtocolError(f"xspress3 meta is a {type(meta).__name__}, expected a list")
    out: dict[str, Any] = {}
    for keys, value in zip(meta_names(len(meta), extra_tags), meta):
        for key in keys:
            out.setdefault(key, value)
    return out


def decode(frames: Sequence[Frame], extra_tags: Sequence[str] | None = None) -> XspressPacketType:
    """Decode one unit (1 frame for header/end, 3 for an image). Raises ProtocolError."""
    if len(frames) == 0:
        raise ProtocolError("xspress3 unit has no frames")
    header = loads_json_object(frames[0], "xspress3 part 0")
    htype = header.get("htype")
    try:
        if htype == "header":
            _expect_parts(frames, 1, "header")
            return XspressStart.model_validate(header)
        if htype == "series_end":
            _expect_parts(frames, 1, "series_end")
            return XspressEnd.model_validate(header)
        if htype == "image":
            _expect_parts(frames, 3, "image")
            return _decode_image(header, frames, extra_tags)
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError(f"xspress3 {htype} invalid: {exc}") from exc
    raise ProtocolError(f"xspress3 htype {htype!r:.40} unknown")


def _expect_parts(frames: Sequence[Frame], n: int, what: str) -> None:
    if len(frames) != n:
        raise ProtocolError(f"xspress3 {what} has {len(frames)} parts, expected {n}")


def _decode_image(header: dict[str, Any], frames: Sequence[Frame], extra_tags: Sequence[str] | None) -> XspressImage:
    image = XspressImage.model_validate(header)
    if image.compression in ("none", None):
        image.data = array_from_frame(frames[1], image.type, header.get("shape"), "xspress3 histogram")
    meta = load_wire_pickle(frames[2], "xspress3 meta pickle")
    image.meta = _meta_dict(meta, extra_tags)
    return image


def parse(data: StreamData, extra_tags: Sequence[str] | None = None) -> XspressPacketType:
    """Decode one ``xspress`` stream unit into XspressStart | XspressImage | XspressEnd.

    ``XspressImage.data`` is a read-only view into the histogram frame; ``meta`` holds the
    per-channel arrays under the compat names (``ocr``, ``AllEvents``, ``AllGood``,
    ``ClockTicks``, ``TotalTicks``, ``ResetTicks``, ``event_widths``, ``dtc``, ``window_counts``)
    and, when ``extra_tags`` (from the header) is given, under those names too.
    Raises ProtocolError (a ValueError) for malformed input.
    """
    if data.typ != TYP:
        raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
    return decode(data.frames, extra_tags)


class XspressParser:
    """Stateful parser: remembers the header's ``extra_tags`` to name the meta entries."""

    def __init__(self) -> None:
        self.extra_tags: list[str] | None = None

    def parse(self, data: StreamData) -> XspressPacketType:
        packet = parse(data, self.extra_tags)
        if isinstance(packet, XspressStart):
            tags = getattr(packet, "extra_tags", None)
            self.extra_tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else None
        return packet


# --- stream cutting ----------------------------------------------------------------------------


class XspressCutter:
    """Cuts an Xspress3 stream into units: header -> START, image -> DATA (3 frames), end -> END.

    Legacy form: an image JSON arriving as a single-part message makes the cutter take the next
    two messages as histogram and meta. The histogram length is checked against the JSON and the
    meta must be a pickle; otherwise the partial image is dropped: if the offending message is
    JSON it is processed as a new message (``dropped`` counts these), else ProtocolError.
    Frames are put into units unchanged.
    Not thread-safe: one instance per stream.
    """

    typ = TYP
    has_start = True

    def __init__(self) -> None:
        self.extra_tags: list[str] | None = None
        self.dropped = 0  # legacy images dropped because a part was missing
        self._pending: list[Frame] = []
        self._pending_header: dict[str, Any] = {}

    def reset(self) -> None:
        self._pending = []
        self._pending_header = {}

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if self._pending:
            return self._continue_legacy(parts)
        if len(parts) == 0:
            raise ProtocolError("xspress3 message has no parts")
        header = loads_json_object(parts[0], "xspress3 part 0")
        htype = header.get("htype")
        if htype == "image":
            if len(parts) == 3:
                self._check_histogram(header, parts[1])
                return [self._image_unit(list(parts), header)]
            if len(parts) == 1:
                self._pending = [parts[0]]
                self._pending_header = header
                return []
            raise ProtocolError(f"xspress3 image message has {len(parts)} parts, expected 1 or 3")
        if len(parts) != 1:
            raise ProtocolError(f"xspress3 {htype!r:.40} message has {len(parts)} parts, expected 1")
        if htype == "header":
            tags = header.get("extra_tags")
            self.extra_tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else None
            return [Unit(Kind.START, [parts[0]], meta={"extra_tags": self.extra_tags})]
        if htype == "series_end":
            return [Unit(Kind.END, [parts[0]])]
        raise ProtocolError(f"xspress3 htype {htype!r:.40} unknown")

    def _continue_legacy(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) != 1:
            self.reset()
            raise ProtocolError(f"xspress3 legacy image continued by a {len(parts)}-part message")
        if len(self._pending) == 1:
            try:
                self._check_histogram(self._pending_header, parts[0])
            except ProtocolError as exc:
                return self._resync(parts, exc)
            self._pending.append(parts[0])
            return []
        view = frame_view(parts[0])
        if view.nbytes == 0 or view[0] != 0x80:  # a pickle of protocol >= 2 starts with PROTO
            return self._resync(parts, ProtocolError("xspress3 meta part is not a pickle"))
        frames = self._pending + [parts[0]]
        header = self._pending_header
        self.reset()
        return [self._image_unit(frames, header)]

    def _resync(self, parts: Sequence[Frame], exc: ProtocolError) -> list[Unit]:
        """A legacy image was cut short. Drop it; a JSON message in its place is processed
        normally (so a lost part does not also cost the next image or the end message)."""
        frame_no = self._pending_header.get("frame")
        self.reset()
        view = frame_view(parts[0])
        if view.nbytes and view[0] == ord("{"):
            self.dropped += 1
            log.warning("xspress3 legacy image %r dropped (%s); resynchronised", frame_no, exc)
            return self.feed(parts)
        raise exc

    @staticmethod
    def _check_histogram(header: dict[str, Any], frame: Frame) -> None:
        if header.get("compression", "none") not in ("none", None):
            return
        dims = check_shape(header.get("shape"), "xspress3 image shape")
        size = wire_dtype(header.get("type", "uint32"), "xspress3 image type").itemsize
        for n in dims:
            size *= n
        if frame_view(frame).nbytes != size:
            raise ProtocolError(f"xspress3 histogram has {frame_view(frame).nbytes} bytes, expected {size}")

    @staticmethod
    def _image_unit(frames: list[Frame], header: dict[str, Any]) -> Unit:
        frame_no = header.get("frame")
        return Unit(Kind.DATA, frames, frame_number=frame_no if type(frame_no) is int else None)


CUTTER = XspressCutter


# --- synthetic encoding ------------------------------------------------------------------------


def encode_header(
    filename: str = "",
    overwritable: bool = False,
    limits: list[Any] | None = None,
    extra_tags: list[str] | None = None,
) -> list[bytes]:
    """A header message (1 part). ``limits``/``extra_tags`` make it the multipart-form header."""
    header: dict[str, Any] = {"htype": "header", "filename": filename, "overwritable": overwritable}
    if limits is not None:
        header["limits"] = limits
    if extra_tags is not None:
        header["extra_tags"] = extra_tags
    return [dumps_json(header)]


def encode_header_dict(header: dict[str, Any]) -> list[bytes]:
    return [dumps_json(header)]


def encode_image(
    frame: int,
    data: np.ndarray,
    meta: list[np.ndarray] | dict[str, Any],
    exptime: float = 0.1,
    **extra: Any,
) -> list[bytes]:
    """An image message in multipart form: [JSON, histogram bytes, meta pickle (protocol 4)]."""
    arr = np.asarray(data)
    header: dict[str, Any] = {
        "htype": "image",
        "exptime": exptime,
        "frame": frame,
        "shape": list(arr.shape),
        "type": arr.dtype.name,
        "compression": "none",
    }
    header.update(extra)
    return encode_image_parts(header, arr, meta)


def encode_image_parts(header: dict[str, Any], data: Any, meta: Any) -> list[bytes]:
    """Build [JSON, raw little-endian data in ``header['type']``, pickled meta] for a header dict."""
    header = dict(header)
    if data is None:
        blob = b""
    else:
        arr = np.asarray(data)
        header["shape"] = [int(n) for n in arr.shape]
        dt = wire_dtype(header.get("type") or str(arr.dtype))
        blob = np.ascontiguousarray(arr, dtype=dt).tobytes()
    return [dumps_json(header), blob, pickle.dumps(_meta_for_wire(meta), protocol=4)]


def _meta_for_wire(meta: Any) -> Any:
    """A meta dict whose keys are a prefix of the standard names goes out as the wire's list."""
    if isinstance(meta, dict):
        keys = list(meta)
        standard = list(META_NAMES + EXTRA_META_NAMES)
        if keys == standard[: len(keys)]:
            return [meta[k] for k in keys]
        return dict(meta)
    return list(meta) if meta is not None else []


def encode_end() -> list[bytes]:
    return [b'{"htype":"series_end"}']


def encode_legacy(message: list[bytes]) -> list[list[bytes]]:
    """Split a multipart message into the legacy form's separate single-part messages."""
    return [[part] for part in message]
