"""Built-in Numba kernels for worker code: azimuthal integration and spot finding.

Public names (pyFAI-like on purpose): :class:`Geometry` (``Geometry.from_poni(path)``),
:class:`AzimuthalIntegrator` (``integrate1d``, ``integrate2d``), :func:`peakfinder8` /
:class:`PeakFinder8` and :func:`find_spots_dispersion`, both returning structured arrays of
:data:`PEAK_DTYPE`.
"""

from dranspose.kernels.geometry import Geometry
from dranspose.kernels.integrator import AzimuthalIntegrator

__all__ = ["Geometry", "AzimuthalIntegrator"]
