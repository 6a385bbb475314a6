"""Object ids of the HDF REST API served over a ``publish`` dict.

An id is ``g-``/``d-``/``t-`` followed by exactly 36 characters (a UUID in its canonical
form), as h5pyd and H5Web require. It is derived from the object's *path* (the tuple of
keys from the root) with ``uuid5``, so it is stable across restarts of the server and when
the reducer replaces ``publish`` wholesale: a client holding an id finds the object that
now lives at the same path.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Literal, Sequence

Kind = Literal["g", "d", "t"]

#: fixed namespace: ids must not change between versions of this server
NAMESPACE = uuid.UUID("5b0f9c56-8c7e-4a53-9a43-6e3f1d0a2c71")

_ID_RE = re.compile(r"^[gdt]-[A-Za-z0-9-]{36}$")

COLLECTIONS: dict[str, Kind] = {"groups": "g", "datasets": "d", "datatypes": "t"}


def object_id(kind: Kind, path: Sequence[str]) -> str:
    """Return the id of the object of ``kind`` at ``path`` (tuple of keys from the root)."""
    name = json.dumps([kind, *path], ensure_ascii=True)
    return f"{kind}-{uuid.uuid5(NAMESPACE, name)}"


ROOT_ID = object_id("g", ())


def is_valid_id(text: str) -> bool:
    """True if ``text`` has the shape of an object id (prefix + 36 characters)."""
    return bool(_ID_RE.match(text))


def kind_of(text: str) -> Kind | None:
    """The kind letter of a valid id, else None."""
    if not is_valid_id(text):
        return None
    return text[0]  # type: ignore[return-value]
