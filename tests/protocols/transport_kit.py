"""Fuzz targets for dranspose's own wire formats between components: what a worker decodes
from an ingester (single and batched events, ``transport.framing``), what the reducer decodes
from workers (results, batches, the restricted unpickler) and the control messages read from
Redis (completion reports, assignment batches, updates).

Same input format as :mod:`tests.protocols.kit` (messages joined by ``MSG_SEP``, frames by
``FRAME_SEP``). A finding is any exception other than the documented ones:
``ProtocolError``/``UnpicklingRefused`` (data path) and ``ControlMessageError`` (control).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from dranspose.errors import ControlMessageError, ProtocolError, UnpicklingRefused
from dranspose.event import ResultData
from dranspose.transport import batching, control, framing, results
from tests.protocols.kit import encode_input, split_input

TARGETS = ("transport:framing", "transport:results", "transport:control")
_ALLOW = results.result_allow_list([])


def _events() -> list[list[bytes]]:
    msgs = [[framing.encode_header(i, [("det", "STINS", 2)], "m"), b'{"htype":"image"}', bytes(range(i, i + 40))]
            for i in range(4)]
    return [msgs[0], batching.join(msgs[1:])]


def _results() -> list[list[Any]]:
    msgs = [results.encode(ResultData.model_construct(event_number=i, worker="w", parameters_hash=None,
                                                      payload={"i": i, "a": np.arange(8), "big": np.zeros(600)}), "m")
            for i in range(3)]
    return [[bytes(p) for p in m] for m in [msgs[0], batching.join(msgs[1:])]]


def _control() -> list[list[bytes]]:
    reports = [
        control.encode_report(control.WorkerReport("w0", [1, 2, 3], 3, False, results=[1, 2], n=3, busy=0.01, nbytes=300)),
        control.encode_report(control.ReducerReport("r", {"w0": 2}, False, "id", [("w0", 1), ("w0", 2)])),
        control.encode_report(control.IngesterReport("i", [("w1", 4)])),
    ]
    return [[r] for r in reports]


def seeds(target: str) -> list[bytes]:
    series = {"transport:framing": _events, "transport:results": _results, "transport:control": _control}[target]()
    return [encode_input(series), encode_input(series[:1]), encode_input(series[1:])]


def _expect(fn: Callable[[], Any], *errors: type[BaseException]) -> Any:
    try:
        return fn()
    except errors:
        return None


def run_target(target: str, data: bytes) -> int:
    """Feed one fuzz input through ``target``'s decoders; returns how many messages decoded."""
    decoded = 0
    for msg in split_input(data):
        if target == "transport:framing":
            if _expect(lambda: framing.decode_all(msg), ProtocolError) is not None:
                decoded += 1
        elif target == "transport:results":
            singles = _expect(lambda: list(batching.split_parsed(msg, results.frames_declared)), ProtocolError) or []
            for parsed, single in singles:
                header = _expect(lambda: results.decode_header(single, parsed), ProtocolError)
                if header is not None and _expect(lambda: results.decode(single, _ALLOW, header), ProtocolError,
                                                  UnpicklingRefused) is not None:
                    decoded += 1
        else:
            raw = msg[0]
            for decode in (control.decode_report, control.decode_assignment, control.decode_update):
                if _expect(lambda: decode(raw), ControlMessageError) is not None:
                    decoded += 1
    return decoded
