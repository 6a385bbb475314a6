"""NumPy / pure-Python reference implementations of every ``_fastpath`` function.

Same signatures and the same errors as the compiled functions; :mod:`dranspose.backend`
selects one of the two. These are slow on purpose-free grounds (clarity first): use them to
check the compiled code and where the compiled extension is unavailable.
"""
