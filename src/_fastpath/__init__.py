"""Compiled hot path of dranspose (Cython): codecs and checks over buffers, and the per-event
objects of the data loops (event batches split, models built, batches joined, STINS headers
checked).

Use it through :mod:`dranspose.backend`, which also offers the Python/NumPy reference twins.
"""
