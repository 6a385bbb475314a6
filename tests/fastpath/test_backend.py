"""Backend selection: DRANSPOSE_BACKEND forces the reference or the compiled extension."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dranspose import backend

FUNCS = ["bslz4_decompress_into", "bitshuffle_into", "bitunshuffle_into", "lz4_block_decompress_into",
         "hdf5lz4_decompress_into", "cbor_decode"]


@pytest.mark.e2e  # a fresh interpreter per backend
@pytest.mark.parametrize("wanted", ["python", "compiled"])
def test_env_var_selects_backend(wanted):
    code = "from dranspose import backend, codecs; import numpy as np; " \
           "x = np.arange(50, dtype=np.uint16); " \
           "assert (codecs.bslz4_decompress(codecs.bslz4_compress(x), np.uint16) == x).all(); " \
           "print(backend.NAME)"
    env = dict(os.environ, DRANSPOSE_BACKEND=wanted)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == wanted


@pytest.mark.e2e  # a fresh interpreter
def test_bad_env_value_fails_loudly():
    env = dict(os.environ, DRANSPOSE_BACKEND="fortran")
    out = subprocess.run([sys.executable, "-c", "import dranspose.backend"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "DRANSPOSE_BACKEND" in out.stderr


def test_both_backends_export_the_same_functions():
    found = backend.available()
    assert set(found) == {"python", "compiled"}
    for be in found.values():
        for name in FUNCS:
            assert callable(getattr(be, name))
    assert backend.NAME in found
