"""The integration and hit-finding example payloads, fed events built from the EIGER capture."""

from __future__ import annotations

import gzip
import json
import pickle
import sys
from pathlib import Path

import cbor2
import numpy as np
import pytest

from dranspose.event import EventData, ResultData, StreamData
from dranspose.kernels.synthetic import match, spot_frame
from dranspose.protocol import WorkParameter
from dranspose.protocols import eiger_legacy
from dranspose.protocols.base import Kind
from tests.paths import DATA

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = DATA / "eiger-legacy-1m-bslz4.dump.cbors.gz"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.hitfinding.reducer import Reducer as HitReducer  # noqa: E402
from examples.hitfinding.worker import Worker as HitWorker  # noqa: E402
from examples.integration.reducer import Reducer as IntReducer  # noqa: E402
from examples.integration.worker import Worker as IntWorker  # noqa: E402


def load_dump(path: Path) -> list[EventData]:
    """Read an ingester dump (CBOR items tag 55799 / 42877 / 42878) into EventData objects."""
    events = []
    with gzip.open(path, "rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                item = decoder.decode()
            except (cbor2.CBORDecodeEOF, EOFError):
                break
            while isinstance(item, cbor2.CBORTag) and item.tag == 55799:
                item = item.value
            assert isinstance(item, cbor2.CBORTag) and item.tag == 42877
            number, streams = item.value[0], item.value[1]
            built = {}
            for name, tagged in streams.items():
                assert tagged.tag == 42878
                typ, frames = tagged.value
                built[name] = StreamData(typ=typ, frames=list(frames))
            events.append(EventData(event_number=number, streams=built))
    return events


@pytest.fixture(scope="module")
def events() -> list[EventData]:
    return load_dump(CAPTURE)


def params(worker_cls, reducer_cls, **values) -> dict[str, WorkParameter]:
    out = {}
    for desc in worker_cls.describe_parameters() + getattr(reducer_cls, "describe_parameters", lambda: [])():
        value = values.get(desc.name, desc.default)
        out[desc.name] = WorkParameter(name=desc.name, data=desc.to_bytes(value), value=value)
    return out


def run(worker, reducer, events, parameters) -> None:
    for ev in events:
        payload = worker.process_event(ev, parameters, False)
        if payload is not None:
            payload = pickle.loads(pickle.dumps(payload, protocol=5))  # as shipped to the reducer
            reducer.process_result(ResultData(event_number=ev.event_number, worker="w0", payload=payload), parameters)
    reducer.finish(parameters)


def test_integration_example_replays_capture(events) -> None:
    context: dict = {}
    parameters = params(IntWorker, IntReducer, npt=500)
    worker = IntWorker(parameters=parameters, context=context, state=None)
    reducer = IntReducer(parameters=parameters, context={}, state=None)
    run(worker, reducer, events, parameters)
    pub = reducer.publish
    assert pub["patterns"].shape == (9, 500) and pub["sigma"].shape == (9, 500)
    np.testing.assert_array_equal(pub["frames"], np.arange(9))
    np.testing.assert_array_equal(pub["events"], np.arange(1, 10))
    assert pub["patterns_attrs"] == {"unit": "q_nm^-1"} and pub["radial"].shape == (500,)
    assert np.all(np.isfinite(pub["patterns"])) and pub["patterns"].max() < 1e3  # gap pixels rejected
    # the pattern equals a direct integration of the decoded frame with the header mask
    from dranspose.kernels import AzimuthalIntegrator, Geometry

    mask = eiger_legacy.decode_header(events[0].streams["eigerxes"].frames).arrays["pixelmask"]
    image = eiger_legacy.decode_image(events[5].streams["eigerxes"].frames)
    direct = AzimuthalIntegrator(Geometry.from_poni(ROOT / "examples/integration/eiger1m.poni"), image.shape, 500,
                                 mask=mask != 0, dummy=float(2**32 - 1), error_model="poisson", warmup=())
    np.testing.assert_allclose(pub["patterns"][4], direct.integrate1d(image)[1], rtol=1e-12)
    # a second scan with the same context reuses the integrator (no rebuild)
    cached = list(context["kernels"].values())[0]
    again = IntWorker(parameters=parameters, context=context, state=None)
    again.process_event(events[0], parameters, False)
    assert again.integrator is cached


def synthetic_image_event(number: int, image: np.ndarray) -> EventData:
    """An uncompressed (encoding "<") EIGER_LEGACY image message."""
    info = {"encoding": "<", "htype": "dimage_d-1.0", "shape": [image.shape[1], image.shape[0]],
            "size": image.nbytes, "type": "uint32"}
    parts = [json.dumps({"frame": number - 1, "hash": "", "htype": "dimage-1.0", "series": 1}).encode(),
             json.dumps(info).encode(), image.astype("<u4").tobytes(), b'{"htype":"dconfig-1.0"}']
    return EventData(event_number=number, streams={"eigerxes": StreamData(typ="EIGER_LEGACY", frames=parts)})


@pytest.mark.parametrize("method", ["peakfinder8", "dispersion"])
def test_hitfinding_example(events, method: str) -> None:
    parameters = params(HitWorker, HitReducer, method=method, min_peaks=20)
    worker = HitWorker(parameters=parameters, context={}, state=None)
    reducer = HitReducer(parameters=parameters, context={}, state=None)
    geometry_center = (0.0401 / 75e-6 - 0.5, 0.0383 / 75e-6 - 0.5)
    image, truth, _ = spot_frame((1065, 1030), 60, seed=21, center=geometry_center)
    stream = [events[0], events[1], synthetic_image_event(2, image), events[3]]
    results = [worker.process_event(ev, parameters, False) for ev in stream]
    assert results[0] is None  # header: finder built, nothing sent
    found = results[2]["peaks"]
    found_ss_fs = np.stack([found["ss"], found["fs"]], axis=1).astype(np.float64)
    assert match(found_ss_fs, truth, 1.5).mean() >= 0.9
    assert results[1]["npeaks"] < 20  # the dark capture frame is no hit
    for ev, payload in zip(stream, results):
        if payload is not None:
            reducer.process_result(ResultData(event_number=ev.event_number, worker="w0", payload=payload), parameters)
    reducer.finish(parameters)
    np.testing.assert_array_equal(reducer.publish["events"], [1, 2, 3])
    np.testing.assert_array_equal(reducer.publish["hits"], [False, True, False])
    assert reducer.publish["hit_rate"] == pytest.approx(1 / 3)
    assert eiger_legacy.decode(events[0].streams["eigerxes"].frames).kind is Kind.START


@pytest.mark.e2e  # whole replays
@pytest.mark.parametrize("example", ["integration", "hitfinding"])
def test_examples_run_under_replay(example: str) -> None:
    """Both examples replay the real EIGER capture with ``dranspose replay`` (as users run them)."""
    from dranspose.replay import replay

    summary = replay(f"examples.{example}.worker:Worker", f"examples.{example}.reducer:Reducer",
                     zmq_files=[str(CAPTURE)], nworkers=1)
    assert summary.events == 10 and summary.results == 9 and summary.errors == 0
