"""One module per wire protocol: models, ``TYP``, decode, synthetic encode and the stream cutter.

:data:`REGISTRY` maps each protocol's ``typ`` (the ``StreamData.typ`` its units carry) to the
module that owns it. Every registered module exposes:

* ``TYP`` (its key here) and ``SOCKET``, the upstream pattern it is usually received with
  (``PULL``, ``SUB``, ``TCP`` or ``HTTP``);
* ``CUTTER``, the :class:`~dranspose.protocols.base.StreamCutter` class ingesters use;
* ``decode(frames)``, which decodes the frames of one unit and raises only
  :class:`~dranspose.errors.ProtocolError` for bad input.

Modules are imported on first use (:func:`protocol_module`), so importing this package stays
cheap. The ingester classes (:mod:`dranspose.services.ingesters`) and the protocol conformance
and fuzz kit (``tests/protocols``) are both fed from this table.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable

from dranspose.errors import ConfigError
from dranspose.protocols.base import StreamCutter

REGISTRY: dict[str, str] = {
    "STINS": "dranspose.protocols.stins",
    "EIGER_LEGACY": "dranspose.protocols.eiger_legacy",
    "STREAM2": "dranspose.protocols.stream2",
    "xspress": "dranspose.protocols.xspress3",
    "PCAP": "dranspose.protocols.pcap",
    "PCAP_RAW": "dranspose.protocols.positioncap",
    "contrast": "dranspose.protocols.contrast",
    "albaem": "dranspose.protocols.albaem",
    "lecroy_9fwdWp6Rq7": "dranspose.protocols.lecroy",
    "sardana": "dranspose.protocols.sardana",
}
"""typ -> owning module, for every wire protocol dranspose speaks."""


def protocol_module(typ: str) -> ModuleType:
    """The module owning protocol ``typ``; ConfigError for an unknown typ."""
    name = REGISTRY.get(typ)
    if name is None:
        raise ConfigError(f"unknown protocol typ {typ!r}; known: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(name)


def cutter_factory(typ: str) -> Callable[[], StreamCutter]:
    """The cutter class of protocol ``typ`` (called with no arguments, one per stream)."""
    factory: Callable[[], StreamCutter] = protocol_module(typ).CUTTER
    return factory


__all__ = ["REGISTRY", "cutter_factory", "protocol_module"]
