"""Reference twin of ``_fastpath.stinsmeta.image_frame`` (same contract, see there): the frame
of a STINS image header that passes every check of the cutter, else None."""

from __future__ import annotations

from typing import Any

COMPRESSIONS = ("none", "bslz4", "lz4")


def _shape_ok(value: Any) -> bool:
    return type(value) is list and all(type(v) is int and v >= 0 for v in value)


def image_frame(meta: Any, known_types: dict[str, Any]) -> int | None:
    if type(known_types) is not dict:
        raise TypeError(f"expected dict, got {type(known_types).__name__}")
    if type(meta) is not dict or meta.get("htype") != "image":
        return None
    frame = meta.get("frame")
    compression = meta.get("compression", "none")
    msg_number = meta.get("msg_number")
    typ = meta.get("type")
    chunks = meta.get("chunks")
    if (
        type(frame) is int
        and type(compression) is str
        and compression in COMPRESSIONS
        and (msg_number is None or type(msg_number) is int)
        and _shape_ok(meta.get("shape"))
        and type(typ) is str
        and typ in known_types
        and (chunks is None or _shape_ok(chunks))
    ):
        return frame
    return None
