"""HDF5 file output: the served tree written with bitshuffle/LZ4, read back with h5py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
from tests.hdfrest.matrix import CASES, expected_value, make_publish, norm_strings

from tests.hdfrest.server_util import Source
from dranspose.hdfrest.errors import NotFound
from dranspose.hdfrest.h5file import write_h5


def test_write_whole_tree(tmp_path: Path) -> None:
    out = tmp_path / "res.h5"
    source = Source(make_publish())
    source.publish["data"]["big"] = np.arange(100_000, dtype="<u4").reshape(100, 1000)
    write_h5(source, out)
    with h5py.File(out, "r") as f:
        assert list(f.keys()) == ["entry", "data", "f32_attrs_holder", "zzz_last"]
        assert list(f["data"].keys()) == [*CASES, "big"]
        for name, (_, exp_dtype, _) in CASES.items():
            got = f["data"][name][()]
            exp = expected_value(name)
            if exp_dtype == "vlen":
                assert norm_strings(got) == exp, name
            else:
                assert f["data"][name].dtype == exp_dtype, name
                np.testing.assert_array_equal(got, np.asarray(exp, dtype=exp_dtype))
        big = f["data/big"]
        assert big.chunks is not None
        assert str(hdf5plugin.BSHUF_ID) in big._filters
        np.testing.assert_array_equal(big[()], source.publish["data"]["big"])
        assert norm_strings(f["entry/plot"].attrs["signal"]) == "y"
        assert norm_strings(f["entry/plot/y"].attrs["long_name"]) == "counts"
        assert f["data"].attrs["n"] == 3
        assert "skip" not in f["data"].attrs


@pytest.mark.e2e  # plain h5py in another process
def test_plain_h5py_reads_with_plugin_path(tmp_path: Path) -> None:
    out = tmp_path / "sub.h5"
    source = Source({"scan": {"img": np.arange(64 * 64, dtype="<f4").reshape(64, 64)}})
    write_h5(source, out, subtree=["scan"])
    code = ("import h5py, sys; f = h5py.File(sys.argv[1], 'r'); "
            "print(float(f['img'][()].sum()))")
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == float(np.arange(64 * 64, dtype="<f4").sum())
    assert not (tmp_path / "sub.h5.tmp").exists()


def test_subtree_must_be_a_group(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        write_h5({"a": 1}, tmp_path / "x.h5", subtree=["a"])
    with pytest.raises(NotFound):
        write_h5({"a": 1}, tmp_path / "x.h5", subtree=["missing"])
