"""Compiled (and reference) block decoders never allocate by a header's claims (issue 11):
block sizes are capped by the output size, block tables by the input size, and stream v2
checks the compression ratio before it allocates a channel's buffer.

Each case runs in a subprocess whose address space is capped a little above what it uses at
start, so an allocation the input does not pay for fails there (MemoryError) instead of
passing unnoticed under overcommit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import cbor2
    from dranspose import backend
    from dranspose.codecs import bslz4 as cb, lz4 as cl, bslz4_compress, lz4_compress
    from dranspose.errors import CorruptFrameError
    from dranspose.protocols import stream2

    def vm_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    case, be_name = sys.argv[1], sys.argv[2]
    be = backend.available()[be_name]
    x = (np.arange(1000, dtype=np.uint32) * 7) % 251
    if case == "bslz4-huge-block":
        blob = bytearray(bslz4_compress(x))
        blob[8:12] = (0x7FFFFFE0).to_bytes(4, "big")  # one block of 2 GiB for 4000 bytes of output
        blob = bytes(blob)
    elif case == "hdf5lz4-tiny-blocks":
        total = 200 * 65536  # within the ratio cap for 64 kB of input; block size 1 byte
        blob = total.to_bytes(8, "big") + (1).to_bytes(4, "big") + bytes(65536)
    elif case == "stream2-claim":
        payload = cbor2.CBORTag(56500, ["bslz4", 4, bslz4_compress(x)])
        image = {"type": "image", "series_id": 1, "image_id": 0,
                 "data": {"threshold_1": cbor2.CBORTag(40, [[1 << 15, 1 << 15], cbor2.CBORTag(70, payload)])}}
        blob = cbor2.dumps(cbor2.CBORTag(55799, image))
    limit = vm_bytes() + 256 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        if case == "bslz4-huge-block":
            out = cb.decompress(be, blob, np.uint32, (1000,), nthreads=2)
            assert (out == x).all()
            print("decoded")
        elif case == "hdf5lz4-tiny-blocks":
            cl.decompress(be, blob, np.uint8, nthreads=2)
            print("decoded")
        else:
            backend.active = be
            stream2.Stream2Decoder().decode(blob)
            print("decoded")
    except CorruptFrameError as exc:
        print("refused:", exc)
    """
)


@pytest.mark.e2e  # each case runs in a subprocess
@pytest.mark.parametrize("be_name", ["compiled", "python"])
@pytest.mark.parametrize(
    "case, expected",
    [("bslz4-huge-block", "decoded"), ("hdf5lz4-tiny-blocks", "refused"), ("stream2-claim", "refused: stream v2 channel")],
)
def test_no_allocation_by_claims(case: str, expected: str, be_name: str) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, case, be_name], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(expected), proc.stdout + proc.stderr[-1000:]
