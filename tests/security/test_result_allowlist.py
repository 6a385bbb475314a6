"""Results without code execution: exact module:Name pairs, checked dtypes, one decoder for
the live reducer and replay."""

from __future__ import annotations

import collections
import datetime
import pickle
import pickletools

import numpy as np
import pytest

from dranspose.errors import ProtocolError, UnpicklingRefused
from dranspose.event import ResultData
from dranspose.safe_pickle import PLAIN_DATA, AllowList, restricted_loads
from dranspose.transport import results

HEADER = b'{"event_number":1,"worker":"w","parameters_hash":null,"mapping":null,"buffers":0}'


def _global_pickle(module: str, name: str, arg: str) -> bytes:
    """A protocol-4 pickle calling ``module.name(arg)`` (STACK_GLOBAL takes dotted names)."""
    def s(x: str) -> bytes:
        b = x.encode()
        return b"\x8c" + bytes([len(b)]) + b

    return b"\x80\x04" + s(module) + s(name) + b"\x93" + s(arg) + b"\x85R."


def test_the_datetime_builtins_eval_gadget_does_not_run(tmp_path) -> None:
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w')"
    body = _global_pickle("datetime", "__builtins__.get", "eval")  # the reported chain
    allow = results.result_allow_list(["dranspose.demo.payload:DemoReducer"])
    with pytest.raises(UnpicklingRefused, match=r"datetime\.__builtins__\.get"):
        results.decode([HEADER, body], allow)
    for module, name in [("builtins", "eval"), ("builtins", "exec"), ("os", "system"), ("numpy", "load"),
                         ("dranspose.cli", "main"), ("numpy.f2py", "compile"), ("datetime", "sys")]:
        with pytest.raises(UnpicklingRefused, match=f"{module}.{name}"):
            results.decode([HEADER, _global_pickle(module, name, code)], allow)
    assert not marker.exists()


def test_allow_list_has_no_packages_chains_or_private_names() -> None:
    with pytest.raises(UnpicklingRefused, match="whole module"):
        AllowList(["datetime"])
    for bad in ["datetime:__builtins__", "datetime:a.b", "mod:_private"]:
        with pytest.raises(UnpicklingRefused):
            AllowList([bad])
    allow = results.result_allow_list(["dranspose.demo.payload:DemoWorker"], advertised=["dranspose.cli:main", "subprocess:Popen"])
    assert "dranspose.demo.payload:DemoReducer" in allow
    assert not any(e.startswith(("subprocess:", "dranspose.cli:", "dranspose.local")) for e in allow)
    assert all(":" in e and "." not in e.split(":")[1] for e in allow)


def test_worker_advertised_classes_only_within_the_payload_package() -> None:
    allow = results.result_allow_list(["tests.payloads.variants:KwargsOnlyWorker"], advertised=["tests.payloads.recording:X"])
    assert any(e.startswith("tests.payloads.recording:") for e in allow)
    assert "tests.payloads.variants:KwargsOnlyWorker" in allow


def test_plain_data_round_trips() -> None:
    payload = {
        "a": np.arange(10.0), "big": np.ones((100, 100), np.float32), "s": np.float32(2), "t": datetime.datetime.now(datetime.UTC),
        "od": collections.OrderedDict(x=1), "dq": collections.deque([1, 2]), "set": {1, 2}, "fs": frozenset({3}),
        "m": np.ma.masked_array([1, 2], [0, 1]), "rec": np.zeros(3, dtype=[("a", "f8"), ("b", "i4", (2,))]),
        "obj": np.array(["x", None], dtype=object), "ba": bytearray(b"ab"), "c": 1 + 2j,
    }
    got, _ = results.decode(results.encode(ResultData(event_number=3, worker="w", payload=payload), "m"), results.result_allow_list([]))
    assert got.payload["t"] == payload["t"] and got.payload["set"] == {1, 2} and list(got.payload["obj"]) == ["x", None]
    np.testing.assert_array_equal(got.payload["big"], payload["big"])
    assert got.payload["rec"].dtype == payload["rec"].dtype


def _forged_dtype_pickle() -> bytes:
    """A structured array whose dtype state claims an object field but clears the flags that
    make numpy treat it as references: its 8 raw bytes would be read as a PyObject pointer."""
    arr = np.zeros(1, dtype=[("a", "O")])
    body = pickle.dumps(arr, protocol=4)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(body)]
    assert ("BININT1", 27) in ops or ("BININT1", 63) in ops  # the flags in the dtype state
    forged = body.replace(b"K\x1bt", b"K\x00t").replace(b"K?t", b"K\x00t")  # flags -> 0
    assert forged != body
    return forged


def test_forged_dtype_is_refused() -> None:
    with pytest.raises(UnpicklingRefused, match="forged|inconsistent"):
        restricted_loads(_forged_dtype_pickle(), PLAIN_DATA)
    with pytest.raises(UnpicklingRefused):
        results.decode([HEADER, _forged_dtype_pickle()], results.result_allow_list([]))


@pytest.mark.parametrize(
    "body",
    [
        pickle.dumps(datetime.date(2020, 1, 1)).replace(b"\x07\xe4\x01\x01", b"\x00\x00\x00\x00"),  # date(0, 0, 0)
        b"\x80\x04]" + b"(" * 100_000,
        pickle.dumps([1, 2, 3])[:-3],
        _global_pickle("builtins", "complex", "x"),
    ],
)
def test_hostile_pickles_are_protocol_errors(body: bytes) -> None:
    with pytest.raises((ProtocolError, UnpicklingRefused)):
        results.decode([HEADER, body], results.result_allow_list([]))


@pytest.mark.parametrize(
    "header",
    [b'{"worker":"w","buffers":0}', b'{"event_number":"1","worker":"w","buffers":0}', b'{"event_number":1,"worker":5,"buffers":0}',
     b'{"event_number":true,"worker":"w","buffers":0}', b'{"event_number":1,"worker":"w","buffers":0,"mapping":[1]}',
     b'{"event_number":-1,"worker":"w","buffers":0}', b"[" * 50_000 + b"]" * 50_000, b"[1]"],
)
def test_result_headers_validated_by_type(header: bytes) -> None:
    with pytest.raises(ProtocolError):
        results.decode([header, pickle.dumps(1)], results.result_allow_list([]))
