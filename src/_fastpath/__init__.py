"""Compiled hot path of dranspose (Cython): plain functions over buffers.

Use it through :mod:`dranspose.backend`, which also offers the NumPy reference implementation.
"""
