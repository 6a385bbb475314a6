"""Ingester classes by their old names (COMPAT §5): socket pattern + protocol typ, whose
cutter comes from the protocol registry (:mod:`dranspose.protocols`).

``dranspose ingester -c CLASS`` accepts these names, ``module:Class`` of a cutter class, or
``module:Class`` of a custom :class:`dranspose.ingester.Ingester` subclass (``run_source``).
"""

from __future__ import annotations

from typing import Callable

from dranspose.errors import ConfigError
from dranspose.protocols import cutter_factory
from dranspose.protocols.base import PassThroughCutter, StreamCutter

# old class name -> (socket pattern, protocol typ; None: pass-through)
INGESTER_CLASSES: dict[str, tuple[str, str | None]] = {
    "ZmqPullSingleIngester": ("PULL", "STINS"),
    "ZmqPullStinsIngester": ("PULL", "STINS"),
    "ZmqPullEigerLegacyIngester": ("PULL", "EIGER_LEGACY"),
    "ZmqPullStream2Ingester": ("PULL", "STREAM2"),
    "ZmqSubXspressIngester": ("SUB", "xspress"),
    "ZmqSubPCAPIngester": ("SUB", "PCAP"),
    "ZmqSubContrastIngester": ("SUB", "contrast"),
    "ZmqSubAlbaemIngester": ("SUB", "albaem"),
    "ZmqPullAlbaemIngester": ("PULL", "albaem"),
    "ZmqSubLecroyIngester": ("SUB", "lecroy_9fwdWp6Rq7"),
    "TcpPcapIngester": ("TCP", "PCAP_RAW"),
    "HttpSardanaIngester": ("HTTP", "sardana"),
    "http_ingester": ("HTTP", "sardana"),
    "ZmqPullIngester": ("PULL", None),
    "ZmqSubIngester": ("SUB", None),
}


def resolve(class_name: str) -> tuple[str, Callable[[], StreamCutter]]:
    """(socket pattern, cutter factory) for an ingester class name or ``module:CutterClass``."""
    if class_name in INGESTER_CLASSES:
        pattern, typ = INGESTER_CLASSES[class_name]
        if typ is None:
            return pattern, lambda: PassThroughCutter("raw")
        try:
            return pattern, cutter_factory(typ)
        except ImportError as exc:
            raise ConfigError(f"ingester {class_name}: protocol {typ} not available: {exc}") from exc
    if ":" in class_name:
        from dranspose.hooks import load_class

        cls = load_class(class_name)
        from dranspose.services.custom_ingester import SourceFactory, is_custom_ingester

        if is_custom_ingester(cls):  # a dranspose.ingester.Ingester subclass with run_source()
            return "SOURCE", SourceFactory(cls)
        return getattr(cls, "SOCKET", "PULL"), cls
    known = ", ".join(sorted(INGESTER_CLASSES))
    raise ConfigError(f"unknown ingester class {class_name!r}; known: {known}, or module:CutterClass")
