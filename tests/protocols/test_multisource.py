"""The multi-source payload checked directly: synthetic aligned streams sent over real sockets,
cut into events with the protocol cutters, processed by two workers and the reducer; the
published map is compared with values computed directly from the generated arrays."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from dranspose.event import EventData, ResultData, StreamData
from dranspose.protocol import WorkParameter
from dranspose.protocols import contrast, pcap, stins
from tests.protocols.multisource_payload import CAM, CONTRAST, PANDA, MapReducer, NormalizeWorker, make_scan, parse_roi
from tests.protocols.proto_helpers import cut, stream_over_zmq


CUTTERS = {CAM: stins.CUTTER, PANDA: pcap.CUTTER, CONTRAST: contrast.CUTTER}


def _events(scan: Any) -> list[EventData]:
    units = {name: cut(CUTTERS[name](), stream_over_zmq(msgs, scan.sockets[name])) for name, msgs in scan.messages.items()}
    lengths = {name: len(u) for name, u in units.items()}
    assert set(lengths.values()) == {scan.n_points + 2}, lengths
    return [
        EventData(event_number=k, streams={name: StreamData(typ=scan.typs[name], frames=units[name][k].frames) for name in units})
        for k in range(scan.n_points + 2)
    ]


def _run(events: list[EventData], parameters: dict[str, Any] | None, seed: int = 1) -> MapReducer:
    workers = [NormalizeWorker(parameters=parameters, context={}) for _ in range(2)]
    results: list[ResultData] = []
    last = len(events) - 1
    for ev in events:
        targets = range(2) if ev.event_number in (0, last) else [ev.event_number % 2]  # start/end broadcast
        for w in targets:
            payload = workers[w].process_event(ev, parameters, False)
            if payload is not None:
                results.append(ResultData(event_number=ev.event_number, worker=f"w{w}", payload=payload))
    start = [r for r in results if r.payload["kind"] == "start"]
    rest = [r for r in results if r.payload["kind"] != "start"]
    random.Random(seed).shuffle(rest)  # the reducer gets results in any order after the start
    reducer = MapReducer(parameters=parameters, context={})
    for r in start + rest:
        reducer.process_result(r, parameters)
    reducer.finish(parameters)
    return reducer


def test_multisource_map_matches_direct_computation() -> None:
    scan = make_scan(n_slow=4, n_fast=5, seed=3)
    events = _events(scan)
    reducer = _run(events, None)
    pub = reducer.publish
    assert pub["points"] == 20 and reducer.ended
    assert pub["map"].shape == (4, 5)
    np.testing.assert_allclose(pub["map"], scan.expected_map, rtol=1e-12)
    np.testing.assert_allclose(pub["sx"], scan.positions["sx"])
    np.testing.assert_allclose(pub["sy"], scan.positions["sy"])
    assert pub["map_attrs"]["motors"] == ["sx", "sy"]
    # the map is not trivially uniform: I0 normalization matters
    raw = np.array([img[scan.roi].sum() for img in scan.images], float).reshape(4, 5)
    assert not np.allclose(pub["map"], raw)


def test_multisource_roi_parameter() -> None:
    scan = make_scan(n_slow=2, n_fast=3, seed=5, batch=4)
    roi_text = "0:3,1:2"
    params = {"roi": WorkParameter(name="roi", data=roi_text.encode(), value=roi_text)}
    reducer = _run(_events(scan), params)
    roi = parse_roi(roi_text)
    want = np.array([img[roi].astype(float).sum() / v for img, v in zip(scan.images, scan.i0)]).reshape(2, 3)
    np.testing.assert_allclose(reducer.publish["map"], want, rtol=1e-12)


def test_trigger_map_shape() -> None:
    scan = make_scan(n_slow=2, n_fast=2)
    tmap = scan.trigger_map()
    assert set(tmap) == {CAM, PANDA, CONTRAST}
    assert all(len(v) == 4 for v in tmap.values())
    assert tmap[CAM][3] == [{"tags": ["generic"], "constraint": 3}]
