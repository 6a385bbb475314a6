"""replay(): the old signature and lifecycle over real dumps, source classes, user errors,
corrupt files, the timer, and the HTTP side (HDF REST + parameter API on a real port)."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

import replay_payloads
from dranspose.dumps.dumpfile import read_dump, write_dump
from dranspose.errors import ConfigError
from dranspose.dumps.record import Recorder
from dranspose.replay import configure_parser, replay, run
from tests.cluster import ServeReplay

pytestmark = pytest.mark.e2e  # whole replays, some serving HTTP

W = "replay_payloads:SumWorker"
R = "replay_payloads:CollectReducer"


def _params(tmp_path: Path, label: str, **extra: str) -> Path:
    p = tmp_path / f"{label}.json"
    p.write_text(json.dumps([{"name": "label", "data": label}] + [{"name": k, "data": v} for k, v in extra.items()]))
    return p


def _xrd_sums(path: Path) -> dict[int, int]:
    sums = {}
    for m in read_dump(path):
        frames = m.streams["xrd"].frames
        meta = json.loads(frames[0])
        if meta["htype"] == "image":
            sums[m.event_number] = int(np.frombuffer(frames[1], dtype=np.uint16).sum())
    return sums


def test_dump_xrd_sums_and_broadcast_first(tmp_path: Path, captures: Path) -> None:
    done = threading.Event()
    summary = replay(W, R, [captures / "dump_xrd.cbors"], parameter_file=_params(tmp_path, "xrd", offset="5"), done_event=done)
    assert done.is_set()
    red = replay_payloads.SEEN["xrd"]
    expected = {f"xrd_{e}": s + 5 for e, s in _xrd_sums(captures / "dump_xrd.cbors").items()}
    assert red.publish["sums"] == expected and len(expected) == 9
    # event 0 goes to both workers, the 10 others to one each
    assert red.publish["count"] == 12 and summary.results == 12 and summary.events == 11
    assert sorted(r.worker for r in red.results if r.event_number == 0) == ["replay-worker-0", "replay-worker-1"]
    assert red.finished and summary.errors == 0


def test_tutorial_over_dump_xrd(captures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.tutorial import reducer as tutorial_reducer

    seen: list[object] = []
    original = tutorial_reducer.TutorialReducer.finish

    def spy(self, parameters=None):  # type: ignore[no-untyped-def]
        seen.append(self)
        original(self, parameters)

    monkeypatch.setattr(tutorial_reducer.TutorialReducer, "finish", spy)
    summary = replay(
        "examples.tutorial.worker:TutorialWorker",
        "examples.tutorial.reducer:TutorialReducer",
        [captures / "dump_xrd.cbors"],
    )
    assert summary.errors == 0
    pub = seen[0].publish  # type: ignore[attr-defined]
    sums = list(_xrd_sums(captures / "dump_xrd.cbors").values())
    assert pub["filename"] == "output/xrd.h5"
    np.testing.assert_array_equal(pub["sum"], sums)
    np.testing.assert_array_equal(pub["map"], np.array(sums).reshape(3, 3))
    assert pub["profile"].shape == (10,)


class EigerCheckWorker:
    def __init__(self, **kwargs: object) -> None:
        pass

    def process_event(self, event, parameters, tick=False):  # type: ignore[no-untyped-def]
        from dranspose.codecs import bslz4_decompress

        frames = event.streams["eigerxes"].frames
        meta = json.loads(frames[0])
        if meta["htype"] != "dimage-1.0":
            return None
        d = json.loads(frames[1])
        img = bslz4_decompress(frames[2], np.uint32, tuple(reversed(d["shape"])))
        return {"sums": {"eiger": int(img.sum(dtype=np.uint64))}, "worker": "", "frame": meta["frame"]}


def test_eiger_legacy_gz(tmp_path: Path, captures: Path) -> None:
    summary = replay(
        f"{__name__}:EigerCheckWorker", R, [captures / "eiger-legacy-1m-bslz4.dump.cbors.gz"],
        parameter_file=_params(tmp_path, "eiger"),
    )
    red = replay_payloads.SEEN["eiger"]
    assert summary.events == 10 and summary.results == 9 and summary.errors == 0
    assert sorted(red.publish["sums"]) == sorted(f"eiger_{e}" for e in range(1, 10))
    assert all(v > 0 for v in red.publish["sums"].values())
    assert summary.payload_bytes > 9_000_000


def test_source_class_streams_of_different_lengths(tmp_path: Path) -> None:
    summary = replay(W, R, source="replay_payloads:TwoStreamSource", parameter_file=_params(tmp_path, "two"))
    red = replay_payloads.SEEN["two"]
    assert summary.events == 10  # events 0..9: the short stream drops out, the long goes on
    assert {k for k in red.publish["sums"] if k.startswith("a_")} == {f"a_{i}" for i in range(1, 5)}
    assert red.publish["sums"]["b_9"] == 9 * 10 * 16
    assert red.publish["sums"]["a_4"] == 4 * 16


@pytest.mark.allow_error_log  # the payload raises on purpose
def test_user_exception_is_reported_and_replay_finishes(tmp_path: Path, captures: Path) -> None:
    done = threading.Event()
    summary = replay(
        "replay_payloads:FailingWorker", R, [captures / "dump_xrd.cbors"],
        parameter_file=_params(tmp_path, "fail"), done_event=done,
    )
    assert done.is_set() and summary.errors == 1
    failure = summary.failures[0]
    assert failure.event_number == 3 and "ZeroDivisionError" in failure.message
    assert "event three is cursed" in failure.traceback and "process_event" in failure.traceback
    red = replay_payloads.SEEN["fail"]
    assert "xrd_3" not in red.publish["sums"] and "xrd_9" in red.publish["sums"] and red.finished


@pytest.mark.allow_error_log  # the truncated item is logged
def test_truncated_dump_processes_events_before(tmp_path: Path, captures: Path) -> None:
    data = (captures / "dump_xrd.cbors").read_bytes()
    cut = tmp_path / "cut.cbors"
    cut.write_bytes(data[:-60])  # the end message is cut
    summary = replay(W, R, [cut], parameter_file=_params(tmp_path, "cut"))
    assert summary.events == 10 and summary.errors == 1
    assert "byte offset" in summary.failures[0].message and str(cut) in summary.failures[0].where
    assert "xrd_9" in replay_payloads.SEEN["cut"].publish["sums"]


@pytest.mark.allow_error_log  # the source raises on purpose
def test_failing_source_generator(tmp_path: Path) -> None:
    summary = replay(W, R, source="replay_payloads:ExplodingSource", parameter_file=_params(tmp_path, "boom"))
    assert summary.events == 2 and summary.errors == 1 and "network share vanished" in summary.failures[0].message


@pytest.mark.allow_error_log  # the junk timer value is logged
def test_timer_survives_a_bad_value(tmp_path: Path, captures: Path) -> None:
    replay(W, R, [captures / "dump_xrd.cbors"], parameter_file=_params(tmp_path, "timer"), latency=0.02)
    red = replay_payloads.SEEN["timer"]
    assert red.timer_calls >= 1  # the first call returned junk, the thread retried after 1 s at most
    summary = replay(W, R, [captures / "dump_xrd.cbors"], parameter_file=_params(tmp_path, "timer2"), latency=0.15)
    assert replay_payloads.SEEN["timer2"].timer_calls >= 2 and summary.errors == 0


def test_bad_class_path_sets_done_event(tmp_path: Path, captures: Path) -> None:
    done = threading.Event()
    with pytest.raises(ConfigError, match="no_such_module"):
        replay("no_such_module:W", R, [captures / "dump_xrd.cbors"], done_event=done)
    assert done.is_set()


def test_serves_hdfrest_and_parameters(tmp_path: Path, captures: Path, serve_replay: ServeReplay) -> None:
    served = serve_replay(W, "replay_payloads:BlockingReducer", [captures / "dump_xrd.cbors"],
                          parameter_file=_params(tmp_path, "http"))
    with httpx.Client(base_url=served.url, timeout=10) as c:
        assert c.get("/api/v1/parameter/label").content == b"http"
        assert c.post("/api/v1/parameter/offset", content=b"42").status_code == 200
        assert c.get("/api/v1/parameter/offset").content == b"42"
        assert c.get("/api/v1/parameter/nope").status_code == 404
        assert {d["name"] for d in c.get("/api/v1/parameters").json()} == {"offset", "label"}
        root = c.get("/").json()["root"]
        links = c.get(f"/groups/{root}/links").json()["links"]
        assert {"count", "image", "sums"} <= {link["title"] for link in links}
    live = replay_payloads.SEEN["http"]
    assert live.publish["count"] == 12
    served.stop()
    assert not served.thread.is_alive() and served.summary


def test_record_then_replay_gives_identical_results(tmp_path: Path, captures: Path) -> None:
    import zmq

    rec = Recorder(tmp_path / "rec.cbors")
    for m in read_dump(captures / "dump_xrd.cbors"):  # as an ingester would hand live frames over
        rec.record(m.event_number, {k: (s.typ, [zmq.Frame(f) for f in s.frames]) for k, s in m.streams.items()})
    rec.close()
    replay(W, R, [captures / "dump_xrd.cbors"], parameter_file=_params(tmp_path, "orig"))
    replay(W, R, [tmp_path / "rec.cbors"], parameter_file=_params(tmp_path, "again"))
    assert replay_payloads.SEEN["orig"].publish == replay_payloads.SEEN["again"].publish


@pytest.mark.allow_error_log  # the failing worker is reported
def test_cli_exit_status_and_summary(tmp_path: Path, captures: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    ok = parser.parse_args(["-w", W, "-r", R, "-f", str(captures / "dump_xrd.cbors"), "-p", str(_params(tmp_path, "cli"))])
    assert run(ok) == 0
    err = capsys.readouterr().err
    assert "11 events, 12 results, 0 errors" in err and "events/s" in err
    bad = parser.parse_args(
        ["-w", "replay_payloads:FailingWorker", "-r", R, "-f", str(captures / "dump_xrd.cbors"), "--nworkers", "3"]
    )
    assert run(bad) == 1
    err = capsys.readouterr().err
    assert "1 errors" in err and "event 3" in err
    missing = parser.parse_args(["-w", W, "-r", R, "-f", str(tmp_path / "nope.cbors")])
    assert run(missing) == 2 and "does not exist" in capsys.readouterr().err


def test_pkls_dump_replays_like_cbors(tmp_path: Path, captures: Path) -> None:
    import pickle

    pk = tmp_path / "old.pkls"
    with open(pk, "wb") as f:
        for m in read_dump(captures / "dump_xrd.cbors"):
            pickle.dump(m, f)
    gz = tmp_path / "x.cbors.gz"
    write_dump(gz, read_dump(captures / "dump_xrd.cbors"))
    replay(W, R, [pk], parameter_file=_params(tmp_path, "pkls"))
    replay(W, R, [gz], parameter_file=_params(tmp_path, "gz"))
    assert replay_payloads.SEEN["pkls"].publish == replay_payloads.SEEN["gz"].publish
    assert len(replay_payloads.SEEN["gz"].publish["sums"]) == 9
