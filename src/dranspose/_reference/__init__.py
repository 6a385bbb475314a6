"""NumPy / pure-Python reference implementations of every ``_fastpath`` function.

Same signatures, contracts and errors as the compiled functions; :mod:`dranspose.backend`
selects one of the two, and the conformance tests run both. Written for clarity, not speed
(the LZ4 decoder is pure Python): use them to check the compiled code, or where the
extension is not built.
"""
