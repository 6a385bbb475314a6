"""Fixtures for the fast-path tests: both backends, and the real captures."""

from __future__ import annotations

import gzip
from typing import Any

import cbor2
import pytest

from dranspose import backend
from tests.paths import DATA

CAPTURES = DATA


def _backends() -> dict[str, backend.Backend]:
    found = backend.available()
    assert "compiled" in found, "the _fastpath extension is not built (pip install -e . / build_ext)"
    return found


BACKENDS = _backends()


@pytest.fixture(params=sorted(BACKENDS))
def be(request: pytest.FixtureRequest) -> backend.Backend:
    """Each backend in turn: the conformance kit runs every test on both."""
    return BACKENDS[request.param]


def _untag(obj: Any, tag: int) -> Any:
    # cbor2 5.x keeps tag 55799 as a CBORTag, 6.x strips it
    while isinstance(obj, cbor2.CBORTag) and obj.tag == tag:
        obj = obj.value
    return obj


def read_cbor_items(name: str) -> list[Any]:
    """Every CBOR item of a capture file (``.gz`` transparently)."""
    path = CAPTURES / name
    assert path.exists(), f"capture {path} missing from tests/data"
    opener = gzip.open if name.endswith(".gz") else open
    items = []
    with opener(path, "rb") as fh:
        dec = cbor2.CBORDecoder(fh)
        while True:
            try:
                items.append(dec.decode())
            except (EOFError, cbor2.CBORDecodeEOF):
                break
    return items


def raw_capture(name: str) -> list[list[bytes]]:
    """A raw upstream capture: one list of parts per ZeroMQ message."""
    return [[bytes(p) for p in msg] for msg in read_cbor_items(name)]


def dump_frames(name: str, stream: str) -> list[tuple[str, list[bytes]]]:
    """An ingester dump: (typ, frames) of ``stream`` for each event in order."""
    out = []
    for item in read_cbor_items(name):
        item = _untag(_untag(item, 55799), 42877)
        sd = _untag(item[1][stream], 42878)
        out.append((sd[0], [bytes(f) for f in sd[1]]))
    return out


@pytest.fixture(scope="session")
def eiger1m() -> list[tuple[str, list[bytes]]]:
    return dump_frames("eiger-legacy-1m-bslz4.dump.cbors.gz", "eigerxes")


@pytest.fixture(scope="session")
def stream2_capture() -> list[list[bytes]]:
    return raw_capture("stream2-eiger1m-bslz4.cbors.gz")


@pytest.fixture(scope="session")
def eiger_small() -> list[list[bytes]]:
    return raw_capture("eiger-small.cbors")


@pytest.fixture(scope="session")
def xrd_dump() -> list[tuple[str, list[bytes]]]:
    return dump_frames("dump_xrd.cbors", "xrd")
