"""Parameter files detected by content (JSON, CBOR named .pkl, pickle) and the live set."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import cbor2
import pytest

from dranspose.errors import ConfigError
from dranspose.parameters import BoolParameter, IntParameter, StrParameter
from dranspose.protocol import WorkParameter
from dranspose.replay.params import ParameterSet, parse_parameter_bytes, read_parameter_file


def test_json_file(tmp_path: Path) -> None:
    p = tmp_path / "params.pkl"  # the extension does not matter
    p.write_text(json.dumps([{"name": "roi", "data": "[1, 2]"}, {"name": "n", "data": "5"}]))
    assert read_parameter_file(p) == {"roi": b"[1, 2]", "n": b"5"}


def test_cbor_file_named_pkl(tmp_path: Path) -> None:
    p = tmp_path / "params.pkl"
    p.write_bytes(cbor2.dumps([{"name": "mask", "data": b"\x00\x01\xff"}, {"name": "s", "data": b"x"}]))
    assert read_parameter_file(p) == {"mask": b"\x00\x01\xff", "s": b"x"}


def test_pickled_work_parameters(tmp_path: Path) -> None:
    p = tmp_path / "params.json"
    p.write_bytes(pickle.dumps([WorkParameter(name="a", data=b"1"), WorkParameter(name="b", data=b"True")]))
    assert read_parameter_file(p) == {"a": b"1", "b": b"True"}
    p.write_bytes(pickle.dumps([{"name": "c", "data": b"zz"}], protocol=2))
    assert read_parameter_file(p) == {"c": b"zz"}


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch PWNED",))


def test_crafted_pickle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="posix.system|os.system|system"):
        parse_parameter_bytes(pickle.dumps([_Evil()]))
    assert not (tmp_path / "PWNED").exists()


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(ConfigError):
        parse_parameter_bytes(b"\xff\xfe not anything")
    with pytest.raises(ConfigError, match="list"):
        parse_parameter_bytes(b'{"name": "x", "data": "y"}')


def test_parameter_set_defaults_types_and_updates() -> None:
    ps = ParameterSet(
        [[IntParameter(name="n", default=3)], [StrParameter(name="s", default="x"), BoolParameter(name="b")]],
        {"n": b"7", "extra": b"\x00raw"},
    )
    live = ps.parameters
    assert live["n"].value == 7 and live["s"].value == "x" and live["b"].value is False
    assert live["extra"].value is None and live["extra"].data == b"\x00raw"
    h0 = ps.hash
    h1 = ps.set("b", b"True")
    assert live["b"].value is True and h1 != h0 and ps.parameters is live  # updated in place
    ps.set("new", b"abc")
    assert ps.get("new") == b"abc" and live["new"].value is None
    assert {d["name"] for d in ps.describe()} == {"n", "s", "b"}
