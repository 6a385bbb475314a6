"""dranspose: live analysis of detector streams as a constrained map-reduce."""

__version__ = "0.3.0"
