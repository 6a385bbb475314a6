"""``stins_image_frame`` on both backends: the same verdict for any parsed header, and never a
frame for a header the STINS cutter's own checks refuse (the fast path only skips checks that
would pass)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose import backend
from dranspose.errors import ProtocolError
from dranspose.protocols import stins

KNOWN = {"uint16": object(), "<u4": object()}
SHAPE = st.one_of(
    st.lists(st.integers(0, 4096), max_size=3),
    st.lists(st.one_of(st.integers(-3, 3), st.booleans(), st.floats(), st.text(max_size=2)), max_size=3),
    st.none(),
    st.just("256x256"),
)
VALUES = {
    "htype": st.sampled_from(["image", "header", "series_end", "imagex", 5]),
    "frame": st.one_of(st.integers(-5, 1 << 70), st.booleans(), st.floats(), st.text(max_size=2), st.none()),
    "compression": st.sampled_from(["none", "bslz4", "lz4", "zstd", 1, None, ["none"]]),
    "msg_number": st.one_of(st.none(), st.integers(), st.booleans(), st.floats()),
    "shape": SHAPE,
    "chunks": SHAPE,
    "type": st.sampled_from(["uint16", "<u4", "float32", "(2,3)f4", 7, None]),
}
GOOD = {"htype": "image", "frame": 5, "compression": "none", "msg_number": 6, "shape": [2, 2], "type": "uint16"}
# a well-formed header with one or two fields changed or left out: every check gets its turn
META = st.builds(
    lambda changes, dropped: {k: v for k, v in {**GOOD, **changes}.items() if k not in dropped},
    st.dictionaries(st.sampled_from(sorted(VALUES)), st.none(), max_size=2).flatmap(
        lambda keys: st.fixed_dictionaries({k: VALUES[k] for k in keys})
    ),
    st.sets(st.sampled_from(sorted(VALUES)), max_size=1),
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=META)
def test_fast_verdict_matches_the_reference_and_the_cutter(meta: dict[str, Any]) -> None:
    found = backend.available()
    fast = found["compiled"].stins_image_frame(meta, KNOWN)
    assert fast == found["python"].stins_image_frame(meta, KNOWN)
    if fast is not None:  # proven here: the cutter's checks must pass and give the same frame
        assert stins.classify(meta) is stins.Kind.DATA
        assert stins._image_fields(meta)[0] == fast
        assert meta["type"] in KNOWN


def test_well_formed_image_gives_its_frame(be: backend.Backend) -> None:
    meta = {"htype": "image", "frame": 41, "shape": [2, 3], "type": "uint16", "compression": "bslz4", "msg_number": 42}
    assert be.stins_image_frame(meta, KNOWN) == 41
    assert be.stins_image_frame({**meta, "chunks": [1, 3]}, KNOWN) == 41
    for bad in ({"type": "float32"}, {"frame": True}, {"shape": [2, -1]}, {"htype": "header"}, {"chunks": [1.0]}):
        assert be.stins_image_frame({**meta, **bad}, KNOWN) is None  # left to the cutter
    assert be.stins_image_frame([("htype", "image")], KNOWN) is None


def test_cutter_still_names_what_the_fast_path_leaves() -> None:
    cutter = stins.StinsCutter()
    for frame in (3, 4):  # the second with its dtype known: the fast path
        assert cutter.feed(stins.encode_image(frame + 1, frame, np.zeros((2, 2), np.uint16)))[0].frame_number == frame
    with pytest.raises(ProtocolError, match="not a list of non-negative integers"):
        cutter.feed([b'{"htype":"image","frame":1,"shape":[2,-2],"type":"uint16"}', b"x"])
    with pytest.raises(ProtocolError, match="not a plain numeric type"):
        cutter.feed([b'{"htype":"image","frame":1,"shape":[2,2],"type":"(2,3)f4"}', b"x"])
    units = cutter.feed([b'{"htype":"image","frame":7,"shape":[2,2],"type":"uint16"}', b"\0" * 8])
    assert units[0].kind is stins.Kind.DATA and units[0].frame_number == 7
