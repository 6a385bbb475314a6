"""Example payload: azimuthal integration of EIGER frames with a PONI file parameter.

Worker class path ``examples.integration.worker:Worker``, reducer
``examples.integration.reducer:Reducer``. The worker publishes nothing itself; the reducer
publishes the radial axis and the stack of 1D patterns in event order.
"""
