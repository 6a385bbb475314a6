"""A multi-source scan payload and synthetic, aligned input streams for it.

Streams (one trigger map, every data event holds one unit of each):
* ``cam``: STINS images (uint16, ``compression: none``), PUSH -> PULL;
* ``panda``: PandA PCAP over ZeroMQ (XPUB/PUB -> SUB); column :data:`I0_COLUMN` is the incident flux;
* ``contrast``: contrast scan points (PUB -> SUB) of a ``mesh`` over two motors.

:class:`NormalizeWorker` computes ``sum(image[roi]) / I0`` per point; :class:`MapReducer`
publishes the map (``publish["map"]``, shape (n_slow, n_fast), NaN where no point arrived yet),
the motor positions and the number of points. :func:`make_scan` builds the upstream messages,
the expected map computed directly from the generated arrays, and the events an ingester would
form (cut with this project's cutters), so the classes can be checked without the pipeline.

Class paths for the services: ``tests.protocols.multisource_payload:NormalizeWorker`` and
``tests.protocols.multisource_payload:MapReducer`` (the project root on ``sys.path``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from dranspose.data.contrast import ContrastFinished, ContrastRunning, ContrastStarted
from dranspose.data.pcap import PCAPData
from dranspose.event import EventData, ResultData, StreamData
from dranspose.middlewares.contrast import parse as contrast_parse
from dranspose.middlewares.pcap import parse as pcap_parse
from dranspose.parameters import StrParameter
from dranspose.protocol import ParameterName
from dranspose.protocols import contrast, pcap

CAM, PANDA, CONTRAST = "cam", "panda", "contrast"
I0_COLUMN = "FMC_IN.VAL1.Mean"
DEFAULT_ROI = "2:6,3:9"
_MESH = re.compile(r"^mesh\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)")


def parse_roi(text: str) -> tuple[slice, slice]:
    """``"r0:r1,c0:c1"`` -> two slices."""
    rows, cols = (tuple(int(v) for v in part.split(":")) for part in text.split(","))
    return slice(*rows), slice(*cols)


def mesh_shape(description: str) -> tuple[tuple[str, str], tuple[int, int]]:
    """Motors and map shape of a contrast ``mesh m1 a b n1 m2 c d n2 t`` scan (m1 is the slow axis)."""
    m = _MESH.match(description)
    if m is None:
        raise ValueError(f"not a mesh scan: {description!r}")
    return (m.group(1), m.group(5)), (int(m.group(4)) + 1, int(m.group(8)) + 1)


def _stins_image(stream: StreamData) -> np.ndarray | None:
    """The image of a STINS unit, None for header/end (uses the compat parser when available)."""
    try:
        from dranspose.middlewares.stream1 import parse as stream1_parse
    except ImportError:  # the compat STINS parser is another module's; decode the simple case here
        header = json.loads(bytes(stream.frames[0]))
        if header.get("htype") != "image":
            return None
        return np.frombuffer(memoryview(stream.frames[1]), dtype=header["type"]).reshape(header["shape"])
    packet = stream1_parse(stream)
    return getattr(packet, "data", None) if getattr(packet, "htype", None) == "image" else None


class NormalizeWorker:
    """Per point: ROI sum of the camera image divided by I0 from the PandA sample."""

    def __init__(self, parameters: dict[str, Any] | None = None, context: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.roi = parse_roi(DEFAULT_ROI)

    @staticmethod
    def describe_parameters() -> list[StrParameter]:
        return [
            StrParameter(name=ParameterName("roi"), default=DEFAULT_ROI, description="rows r0:r1,cols c0:c1"),
            StrParameter(name=ParameterName("i0_column"), default=I0_COLUMN),
        ]

    def _param(self, parameters: dict[str, Any] | None, name: str, default: str) -> str:
        if parameters and name in parameters and parameters[name].value is not None:
            return str(parameters[name].value)
        return default

    def process_event(self, event: EventData, parameters: dict[str, Any] | None = None, tick: bool = False) -> Any:
        if CONTRAST not in event.streams:
            return None
        scan = contrast_parse(event.streams[CONTRAST])
        if isinstance(scan, ContrastStarted):
            motors, shape = mesh_shape(scan.description)
            return {"kind": "start", "scannr": scan.scannr, "motors": motors, "shape": shape}
        if isinstance(scan, ContrastFinished):
            return {"kind": "end", "status": scan.status}
        if not isinstance(scan, ContrastRunning) or CAM not in event.streams or PANDA not in event.streams:
            return None
        image = _stins_image(event.streams[CAM])
        sample = pcap_parse(event.streams[PANDA])
        if image is None or not isinstance(sample, PCAPData):
            return None
        roi = parse_roi(self._param(parameters, "roi", DEFAULT_ROI))
        i0 = float(getattr(sample, self._param(parameters, "i0_column", I0_COLUMN)))
        roi_sum = float(image[roi].sum(dtype=np.float64))
        return {
            "kind": "point",
            "index": event.event_number - 1,
            "positions": {k: float(v) for k, v in (scan.model_extra or {}).items() if isinstance(v, float)},
            "roi_sum": roi_sum,
            "i0": i0,
            "value": roi_sum / i0,
        }

    def finish(self, parameters: dict[str, Any] | None = None) -> None:
        pass


class MapReducer:
    """Publishes ``map`` (ROI sum / I0 on the mesh), ``map_attrs``, the two motors' positions and
    ``points`` (how many points arrived). Results of any order; the start may arrive several
    times (event 0 is broadcast to every worker)."""

    def __init__(self, parameters: dict[str, Any] | None = None, context: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {"map": np.zeros((0, 0)), "points": 0}
        self.motors: tuple[str, str] = ("", "")
        self.ended = False

    def _ensure(self, shape: tuple[int, int]) -> None:
        if self.publish["map"].shape != tuple(shape):
            self.publish["map"] = np.full(shape, np.nan)
            self.publish["map_attrs"] = {"long_name": "ROI sum / I0", "motors": list(self.motors)}
            self.publish[self.motors[0]] = np.full(shape, np.nan)
            self.publish[self.motors[1]] = np.full(shape, np.nan)

    def process_result(self, result: ResultData, parameters: dict[str, Any] | None = None) -> None:
        payload = result.payload
        if not isinstance(payload, dict):
            return
        if payload["kind"] == "start":
            self.motors = tuple(payload["motors"])  # type: ignore[assignment]
            self._ensure(tuple(payload["shape"]))
        elif payload["kind"] == "point":
            grid = self.publish["map"]
            row, col = divmod(payload["index"], grid.shape[1])
            grid[row, col] = payload["value"]
            for motor in self.motors:
                if motor in payload["positions"]:
                    self.publish[motor][row, col] = payload["positions"][motor]
            self.publish["points"] += 1
        elif payload["kind"] == "end":
            self.ended = True

    def finish(self, parameters: dict[str, Any] | None = None) -> None:
        pass


# --- synthetic aligned streams ---------------------------------------------------------------


def stins_messages(images: list[np.ndarray], filename: str = "") -> list[list[bytes]]:
    """STINS upstream messages (PROTOCOLS §3): header, one 2-part image per array, series_end."""
    msgs = [[json.dumps({"htype": "header", "msg_number": 0, "filename": filename}).encode()]]
    for i, img in enumerate(images):
        meta = {"htype": "image", "msg_number": i + 1, "frame": i, "shape": list(img.shape),
                "type": img.dtype.name, "compression": "none"}  # fmt: skip
        msgs.append([json.dumps(meta).encode(), np.ascontiguousarray(img).tobytes()])
    msgs.append([json.dumps({"htype": "series_end", "msg_number": len(images) + 1}).encode()])
    return msgs


@dataclass
class SyntheticScan:
    messages: dict[str, list[list[bytes]]]  # upstream messages per stream, in sending order
    typs: dict[str, str]
    sockets: dict[str, str]  # receiving socket type per stream
    images: list[np.ndarray]
    i0: np.ndarray
    positions: dict[str, np.ndarray]
    expected_map: np.ndarray
    roi: tuple[slice, slice]
    description: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        return len(self.images)

    def trigger_map(self) -> dict[str, list[list[dict[str, Any]]]]:
        """One entry per data point; all three streams go to the same worker (same constraint)."""
        return {name: [[{"tags": ["generic"], "constraint": i}] for i in range(self.n_points)] for name in self.messages}


def make_scan(n_slow: int = 4, n_fast: int = 5, shape: tuple[int, int] = (12, 16), seed: int = 0, batch: int = 3) -> SyntheticScan:
    """A mesh scan of ``n_slow x n_fast`` points with aligned camera, PandA and contrast streams."""
    rng = np.random.default_rng(seed)
    n = n_slow * n_fast
    roi = parse_roi(DEFAULT_ROI)
    images = [rng.integers(0, 1000, size=shape, dtype=np.uint16) for _ in range(n)]
    i0 = rng.uniform(0.5, 1.5, size=n)
    slow = np.repeat(np.linspace(-2, 2, n_slow), n_fast)
    fast = np.tile(np.linspace(-1, 1, n_fast), n_slow)
    description = f"mesh sx -2 2 {n_slow - 1} sy -1 1 {n_fast - 1} 0.1"
    expected = np.array([img[roi].astype(np.float64).sum() / v for img, v in zip(images, i0)]).reshape(n_slow, n_fast)

    arm = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    panda = pcap.encode_series(arm, {"PCAP.TS_TRIG.Value": list(0.1 * np.arange(n)), I0_COLUMN: list(i0)}, batch=batch)
    scan_msgs = [contrast.encode_heartbeat(), contrast.encode_started(7, "/data/test", description, {"sx": -2.0, "sy": -1.0})]
    for k in range(n):
        scan_msgs.append(contrast.encode_running({"sx": float(slow[k]), "sy": float(fast[k]),
                                                  "panda0": {I0_COLUMN: np.array([i0[k]])}}, dt=0.1 * k))  # fmt: skip
        if k == n // 2:
            scan_msgs.append(contrast.encode_heartbeat())
    scan_msgs.append(contrast.encode_finished(7, "/data/test", description))
    return SyntheticScan(
        messages={CAM: stins_messages(images), PANDA: panda, CONTRAST: scan_msgs},
        typs={CAM: "STINS", PANDA: pcap.TYP, CONTRAST: contrast.TYP},
        sockets={CAM: "PULL", PANDA: pcap.SOCKET, CONTRAST: contrast.SOCKET},
        images=images,
        i0=i0,
        positions={"sx": slow.reshape(n_slow, n_fast), "sy": fast.reshape(n_slow, n_fast)},
        expected_map=expected,
        roi=roi,
        description=description,
    )
