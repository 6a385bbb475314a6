"""PandA position capture over TCP, ASCII format (PROTOCOLS §8, typ ``PCAP_RAW``).

Wire: the client connects to the PandA data port (8889), sends :data:`OPTIONS_LINE` (``"\\n"``:
ASCII + SCALED) and gets ``OK\\n``. Per arm: a text header ending in an empty line, one text line
per sample, then ``END <n> <status>\\n``.

* :class:`PositionCapSplitter` turns received byte chunks into messages: the whole header block
  (``arm_time: ...`` up to and including the empty line) as one frame, each data line as one
  frame, the ``END`` line as one frame. Lines before the first ``arm_time:`` are discarded.
* :class:`PositionCapCutter` maps those messages to START / DATA / END units.
* :class:`HeaderState` + :func:`decode` parse messages; :class:`PositioncapParser` (re-exported
  by ``dranspose.middlewares.positioncap``) wraps them. Each header resets the field list
  (re-arm, gap §15). The models are re-exported by ``dranspose.data.positioncap``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Sequence, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter

from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols._wire import frame_bytes
from dranspose.protocols.base import Frame, Kind, Unit, compat_module

log = logging.getLogger(__name__)

TYP = "PCAP_RAW"
SOCKET = "TCP"
DEFAULT_PORT = 8889
OPTIONS_LINE = b"\n"  # default options: ASCII format, SCALED processing
OK_REPLY = b"OK\n"
MAX_LINE = 64 * 1024  # bytes in one line (a header or sample line); longer lines are dropped
MAX_HEADER_LINES = 1024  # lines in one header block (PandA captures at most a few hundred fields)
INT_TYPES = frozenset({"uint32", "int32", "int64", "uint64"})
FLOAT_TYPES = frozenset({"double"})


# --- models ------------------------------------------------------------------------------------


class PositionCapField(BaseModel):
    """One captured field: ``name`` is ``<BLOCK.FIELD>.<CAPTURE>`` (e.g. ``INENC1.VAL.Mean``)."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: str
    value: int | float | None = None

    def parse(self, text: str) -> "PositionCapField":
        """A copy of this field holding ``text`` parsed by type (int for uint32, float for double)."""
        return PositionCapField(name=self.name, type=self.type, value=parse_value(self.type, text, self.name))


class PositionCapStart(BaseModel):
    model_config = ConfigDict(extra="allow")

    arm_time: datetime

    def to_stream_data(self, fields: Sequence[PositionCapField] = ()) -> StreamData:
        """The header block frame announcing ``fields``."""
        return StreamData(typ=TYP, frames=[encode_header(self.arm_time, fields)])


class PositionCapValues(BaseModel):
    """One sample: field name -> field with its value, in capture order."""

    model_config = ConfigDict(extra="allow")

    fields: dict[str, PositionCapField] = {}

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=[encode_values([f.value for f in self.fields.values()])])


class PositionCapEnd(BaseModel):
    """End of the experiment: ``samples`` and ``status`` from the ``END <n> <status>`` line."""

    model_config = ConfigDict(extra="allow")

    samples: int | None = None
    status: str | None = None

    def to_stream_data(self) -> StreamData:
        return StreamData(typ=TYP, frames=[encode_end(self.samples or 0, self.status or "Ok")])


PositionCapPacketType = Union[PositionCapStart, PositionCapValues, PositionCapEnd]
PositionCapPacket: TypeAdapter[PositionCapPacketType] = TypeAdapter(PositionCapPacketType)
"""Validates any packet of this protocol (compat with the old ``TypeAdapter``)."""

compat_module("dranspose.data.positioncap", PositionCapField, PositionCapStart, PositionCapValues, PositionCapEnd)


# --- the byte stream ---------------------------------------------------------------------------


class PositionCapSplitter:
    """Turns the TCP byte stream into messages (one ``bytes`` frame each). Not thread-safe.

    ``expect_ok``: the first line must be ``OK`` (the reply to the options line).
    :meth:`feed` never raises: what the device sends is bounded and problems are recorded in
    :attr:`errors` (ProtocolErrors, oldest first; the caller drains and logs them) while the
    splitter resynchronises:

    * an ``ERR ...`` reply: recorded, then the stream is read as usual;
    * a line longer than :data:`MAX_LINE` bytes: dropped up to its newline (a header it was part
      of is dropped too);
    * a header of more than :data:`MAX_HEADER_LINES` lines: dropped; data lines are ignored
      until the next ``arm_time:``.

    Memory is bounded by ``MAX_LINE`` (the partial line) plus ``MAX_HEADER_LINES * MAX_LINE``.
    """

    def __init__(self, expect_ok: bool = True) -> None:
        self._buf = bytearray()
        self._state = "reply" if expect_ok else "idle"
        self._header: list[bytes] = []
        self._skipping = False  # inside an over-long line: drop bytes up to the next newline
        self.errors: list[ProtocolError] = []

    def take_errors(self) -> list[ProtocolError]:
        """The problems recorded since the last call (and forget them)."""
        errors, self.errors = self.errors, []
        return errors

    def _error(self, message: str) -> None:
        if len(self.errors) < 100:  # bounded even if nobody drains them
            self.errors.append(ProtocolError(message))

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        data = bytes(chunk)
        out: list[bytes] = []
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            stop = len(data) if nl < 0 else nl + 1
            if self._skipping:
                self._skipping = nl < 0
            elif not self._buf and nl >= 0 and stop - pos <= MAX_LINE:
                self._line(data[pos:stop], out)  # the common case: a whole line in this chunk
            else:
                self._buf += data[pos:stop]
                if len(self._buf) > MAX_LINE:
                    self._too_long(skip=nl < 0)
                elif nl >= 0:
                    line = bytes(self._buf)
                    self._buf.clear()
                    self._line(line, out)
            pos = stop
        return out

    def _too_long(self, skip: bool = True) -> None:
        self._buf.clear()
        self._skipping = skip
        self._error(f"position capture line longer than {MAX_LINE} bytes dropped")
        if self._state == "header":
            self._header = []
            self._state = "idle"
            self._error("position capture header dropped (over-long line); waiting for the next arm_time")

    def _line(self, line: bytes, out: list[bytes]) -> None:
        state = self._state
        if state == "reply":
            self._state = "idle"
            if line.rstrip(b"\r\n") != b"OK":
                self._error(f"PandA refused the capture options: {line[:200]!r}")
            return
        if line.startswith(b"arm_time:"):
            if state in ("header", "data"):
                log.warning("position capture: new header without END; previous experiment cut short")
            self._header = [line]
            self._state = "header"
            return
        if state == "idle":
            return
        if state == "header":
            if line.strip() == b"":
                out.append(b"".join(self._header) + line)
                self._header = []
                self._state = "data"
            elif len(self._header) >= MAX_HEADER_LINES:
                self._header = []
                self._state = "idle"
                self._error(f"position capture header longer than {MAX_HEADER_LINES} lines dropped")
            else:
                self._header.append(line)
            return
        # data
        if not line.strip():
            return
        out.append(line)
        if line.startswith(b"END"):
            self._state = "idle"


class PositionCapCutter:
    """Header block -> START, sample line -> DATA, ``END`` line -> END (one frame each)."""

    typ = TYP
    has_start = True

    def __init__(self) -> None:
        self._samples = 0

    def reset(self) -> None:
        self._samples = 0

    def feed(self, parts: Sequence[Frame]) -> list[Unit]:
        if len(parts) != 1:
            raise ProtocolError(f"position capture message has {len(parts)} parts, expected 1")
        head = frame_bytes(parts[0])[:16]
        if head.startswith(b"arm_time:"):
            self._samples = 0
            return [Unit(Kind.START, [parts[0]])]
        if head.startswith(b"END"):
            return [Unit(Kind.END, [parts[0]])]
        unit = Unit(Kind.DATA, [parts[0]], frame_number=self._samples)
        self._samples += 1
        return [unit]


CUTTER = PositionCapCutter


# --- decoding ----------------------------------------------------------------------------------


def parse_value(typ: str, text: str, name: str = "?") -> int | float:
    """Parse one value by field type: int for ``uint32``/``int32``/``int64``, float for ``double``."""
    try:
        if typ in INT_TYPES:
            return int(text)
        if typ in FLOAT_TYPES:
            return float(text)
    except ValueError as exc:
        raise ProtocolError(f"position capture field {name}: {text[:40]!r} is not a {typ}") from exc
    raise ProtocolError(f"position capture field {name} has unsupported type {typ!r:.40}")


def parse_arm_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ProtocolError(f"position capture arm_time {text[:40]!r} is not ISO 8601") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def decode_header(text: str) -> tuple[datetime, list[PositionCapField], dict[str, str]]:
    """Parse a header block: (arm_time, fields with value None, the other ``key: value`` lines)."""
    arm_time: datetime | None = None
    fields: list[PositionCapField] = []
    info: dict[str, str] = {}
    in_fields = False
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if in_fields and line.startswith(" "):
            words = line.split()
            if len(words) < 3:
                raise ProtocolError(f"position capture field line {line[:80]!r} has fewer than 3 words")
            name, typ, capture = words[0], words[1], words[2]
            if typ not in INT_TYPES and typ not in FLOAT_TYPES:
                raise ProtocolError(f"position capture field {name} has unsupported type {typ!r:.40}")
            fields.append(PositionCapField(name=f"{name}.{capture}", type=typ))
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"position capture header line {line[:80]!r} is not 'key: value'")
        key = key.strip()
        in_fields = key == "fields"
        if key == "arm_time":
            arm_time = parse_arm_time(value)
        elif not in_fields:
            info[key] = value.strip()
    if arm_time is None:
        raise ProtocolError("position capture header has no arm_time")
    fmt = info.get("format")
    if fmt is not None and fmt != "ASCII":
        raise ProtocolError(f"position capture format {fmt!r:.40} is not ASCII")
    return arm_time, fields, info


def decode_values(text: str, fields: Sequence[PositionCapField]) -> PositionCapValues:
    words = text.split()
    if len(words) != len(fields):
        raise ProtocolError(f"position capture line has {len(words)} values for {len(fields)} fields")
    return PositionCapValues(
        fields={
            f.name: PositionCapField(name=f.name, type=f.type, value=parse_value(f.type, w, f.name))
            for f, w in zip(fields, words)
        }
    )


def decode_end(text: str) -> PositionCapEnd:
    words = text.split(None, 2)
    if len(words) < 2 or words[0] != "END":
        raise ProtocolError(f"position capture end line {text[:80]!r} is not 'END <n> <status>'")
    try:
        samples = int(words[1])
    except ValueError as exc:
        raise ProtocolError(f"position capture END count {words[1][:20]!r} is not an int") from exc
    return PositionCapEnd(samples=samples, status=words[2].strip() if len(words) > 2 else None)


def _text(frames: Sequence[Frame]) -> str:
    if len(frames) != 1:
        raise ProtocolError(f"PCAP_RAW unit has {len(frames)} frames, expected 1")
    try:
        return frame_bytes(frames[0]).decode("ascii")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"position capture message is not ASCII at byte {exc.start}") from exc


class HeaderState:
    """What a decoder must remember across messages: the current ``arm_time`` and field list."""

    def __init__(self) -> None:
        self.arm_time: datetime | None = None
        self.fields: list[PositionCapField] = []
        self.info: dict[str, str] = {}


def decode(frames: Sequence[Frame], state: HeaderState) -> PositionCapStart | PositionCapValues | PositionCapEnd:
    """Decode one unit; a header replaces ``state``'s arm_time and fields (never appends)."""
    text = _text(frames)
    if text.startswith("arm_time:"):
        state.arm_time, state.fields, state.info = None, [], {}
        arm_time, fields, info = decode_header(text)
        state.arm_time, state.fields, state.info = arm_time, fields, info
        return PositionCapStart(arm_time=arm_time)
    if text.startswith("END"):
        return decode_end(text)
    if state.arm_time is None:
        raise ProtocolError("position capture values before any header")
    return decode_values(text, state.fields)


class PositioncapParser:
    """Stateful parser of one ``PCAP_RAW`` stream (one instance per worker, not thread-safe).

    ``arm_time`` and ``fields`` (names ``<BLOCK.FIELD>.<CAPTURE>``, values None) come from the
    latest header; a new header (re-arm) replaces them. ``parse`` returns PositionCapStart for a
    header, PositionCapValues for a sample line and PositionCapEnd for the ``END`` line.
    Sample time = ``arm_time + timedelta(seconds=values.fields["PCAP.TS_TRIG.Value"].value)``.
    """

    def __init__(self) -> None:
        self._state = HeaderState()

    @property
    def arm_time(self) -> datetime | None:
        return self._state.arm_time

    @property
    def fields(self) -> list[PositionCapField]:
        return self._state.fields

    def parse(self, data: StreamData) -> PositionCapPacketType:
        if data.typ != TYP:
            raise ProtocolError(f"stream typ {data.typ!r} is not {TYP!r}")
        return decode(data.frames, self._state)


# --- synthetic encoding ------------------------------------------------------------------------


def _split_name(name: str) -> tuple[str, str]:
    block, dot, capture = name.rpartition(".")
    if not dot:
        return name, "Value"
    return block, capture


def _format_value(value: Any) -> str:
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f"):
        return repr(float(value))
    return str(int(value))


def encode_header(arm_time: datetime, fields: Sequence[PositionCapField], missed: int = 0) -> bytes:
    """A header block (ASCII, Scaled) announcing ``fields``, ending in the empty line."""
    if arm_time.tzinfo is not None:
        arm_time = arm_time.astimezone(timezone.utc).replace(tzinfo=None)
    lines = [
        f"arm_time: {arm_time.isoformat(timespec='microseconds')}Z",
        f"missed: {missed}",
        "process: Scaled",
        "format: ASCII",
        "fields:",
    ]
    for f in fields:
        block, capture = _split_name(f.name)
        extra = " scale: 1 offset: 0 units: " if f.type in FLOAT_TYPES else ""
        lines.append(f" {block} {f.type} {capture}{extra}")
    return ("\n".join(lines) + "\n\n").encode()


def encode_values(values: Sequence[Any]) -> bytes:
    """A sample line: leading space, space-separated values, newline."""
    return (" " + " ".join(_format_value(v) for v in values) + "\n").encode()


def encode_end(samples: int, status: str = "Ok") -> bytes:
    return f"END {samples} {status}\n".encode()


def encode_stream(
    arm_time: datetime, fields: Sequence[PositionCapField], rows: Sequence[Sequence[Any]], status: str = "Ok"
) -> bytes:
    """One experiment's bytes as the server sends them after ``OK``: header, lines, END."""
    body = b"".join(encode_values(r) for r in rows)
    return encode_header(arm_time, fields) + body + encode_end(len(rows), status)
