"""Compat parser for PandA position capture over TCP (``dranspose.middlewares.positioncap``)."""

from __future__ import annotations

from datetime import datetime

from dranspose.data.positioncap import PositionCapField, PositionCapPacketType
from dranspose.errors import ProtocolError
from dranspose.event import StreamData
from dranspose.protocols import positioncap


class PositioncapParser:
    """Stateful parser of one ``PCAP_RAW`` stream (one instance per worker, not thread-safe).

    ``arm_time`` and ``fields`` (names ``<BLOCK.FIELD>.<CAPTURE>``, values None) come from the
    latest header; a new header (re-arm) replaces them. ``parse`` returns PositionCapStart for a
    header, PositionCapValues for a sample line and PositionCapEnd for the ``END`` line.
    Sample time = ``arm_time + timedelta(seconds=values.fields["PCAP.TS_TRIG.Value"].value)``.
    """

    def __init__(self) -> None:
        self._state = positioncap.HeaderState()

    @property
    def arm_time(self) -> datetime | None:
        return self._state.arm_time

    @property
    def fields(self) -> list[PositionCapField]:
        return self._state.fields

    def parse(self, data: StreamData) -> PositionCapPacketType:
        if data.typ != positioncap.TYP:
            raise ProtocolError(f"stream typ {data.typ!r} is not {positioncap.TYP!r}")
        return positioncap.decode(data.frames, self._state)
