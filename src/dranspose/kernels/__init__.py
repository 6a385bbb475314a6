"""Built-in Numba kernels for worker code: azimuthal integration and spot finding.

Public names (pyFAI-like on purpose): :class:`Geometry` (``Geometry.from_poni(path)``),
:class:`AzimuthalIntegrator` (``integrate1d``, ``integrate2d``), :func:`peakfinder8` /
:class:`PeakFinder8` and :func:`find_spots_dispersion`, both returning structured arrays of
:data:`PEAK_DTYPE`.
"""

from dranspose.kernels.dispersion import DispersionSpotFinder, find_spots_dispersion
from dranspose.kernels.geometry import Geometry
from dranspose.kernels.integrator import AzimuthalIntegrator
from dranspose.kernels.peakfinder import PEAK_DTYPE, PeakFinder8, peakfinder8

__all__ = [
    "PEAK_DTYPE",
    "AzimuthalIntegrator",
    "DispersionSpotFinder",
    "Geometry",
    "PeakFinder8",
    "find_spots_dispersion",
    "peakfinder8",
]
