"""Ingester classes by their old names (COMPAT §5): socket pattern + protocol cutter.

``dranspose ingester -c CLASS`` accepts these names, ``module:Class`` of a cutter class, or
``module:Class`` of a custom :class:`dranspose.ingester.Ingester` subclass (``run_source``).
Protocol modules expose their cutter as ``CUTTER`` (or a single ``*Cutter`` class).
"""

from __future__ import annotations

import importlib
from typing import Callable

from dranspose.errors import ConfigError
from dranspose.protocols.base import PassThroughCutter, StreamCutter

# old class name -> (socket pattern, protocol module or None for pass-through, typ)
INGESTER_CLASSES: dict[str, tuple[str, str | None, str]] = {
    "ZmqPullSingleIngester": ("PULL", "dranspose.protocols.stins", "STINS"),
    "ZmqPullStinsIngester": ("PULL", "dranspose.protocols.stins", "STINS"),
    "ZmqPullEigerLegacyIngester": ("PULL", "dranspose.protocols.eiger_legacy", "EIGER_LEGACY"),
    "ZmqPullStream2Ingester": ("PULL", "dranspose.protocols.stream2", "STREAM2"),
    "ZmqSubXspressIngester": ("SUB", "dranspose.protocols.xspress3", "xspress"),
    "ZmqSubPCAPIngester": ("SUB", "dranspose.protocols.pcap", "PCAP"),
    "ZmqSubContrastIngester": ("SUB", "dranspose.protocols.contrast", "contrast"),
    "ZmqSubAlbaemIngester": ("SUB", "dranspose.protocols.albaem", "albaem"),
    "ZmqPullAlbaemIngester": ("PULL", "dranspose.protocols.albaem", "albaem"),
    "ZmqSubLecroyIngester": ("SUB", "dranspose.protocols.lecroy", "lecroy_9fwdWp6Rq7"),
    "TcpPcapIngester": ("TCP", "dranspose.protocols.positioncap", "PCAP_RAW"),
    "HttpSardanaIngester": ("HTTP", "dranspose.protocols.sardana", "sardana"),
    "http_ingester": ("HTTP", "dranspose.protocols.sardana", "sardana"),
    "ZmqPullIngester": ("PULL", None, "raw"),
    "ZmqSubIngester": ("SUB", None, "raw"),
}


def _cutter_class(module_name: str) -> type:
    module = importlib.import_module(module_name)
    cls = getattr(module, "CUTTER", None)
    if cls is None:
        found = [v for k, v in vars(module).items() if k.endswith("Cutter") and isinstance(v, type) and v.__module__ == module_name]
        if len(found) != 1:
            raise ConfigError(f"protocol module {module_name} exposes no single cutter class")
        cls = found[0]
    return cls  # type: ignore[no-any-return]


def resolve(class_name: str) -> tuple[str, Callable[[], StreamCutter]]:
    """(socket pattern, cutter factory) for an ingester class name or ``module:CutterClass``."""
    if class_name in INGESTER_CLASSES:
        pattern, module_name, typ = INGESTER_CLASSES[class_name]
        if module_name is None:
            return pattern, lambda: PassThroughCutter(typ)
        try:
            cls = _cutter_class(module_name)
        except ImportError as exc:
            raise ConfigError(f"ingester {class_name}: protocol module {module_name} not available: {exc}") from exc
        return pattern, cls
    if ":" in class_name:
        from dranspose.hooks import load_class

        cls = load_class(class_name)
        from dranspose.services.custom_ingester import SourceFactory, is_custom_ingester

        if is_custom_ingester(cls):  # a dranspose.ingester.Ingester subclass with run_source()
            return "SOURCE", SourceFactory(cls)
        return getattr(cls, "SOCKET", "PULL"), cls
    known = ", ".join(sorted(INGESTER_CLASSES))
    raise ConfigError(f"unknown ingester class {class_name!r}; known: {known}, or module:CutterClass")
