"""The example analysis ``dranspose combined --demo`` runs: per-frame statistics of a STINS
detector stream, published live (sums, peak positions, a preview image)."""

from dranspose.demo.payload import DemoReducer, DemoWorker

__all__ = ["DemoReducer", "DemoWorker"]
