"""Example payload: crystallography hit finding on EIGER frames with dranspose.kernels.

Worker ``examples.hitfinding.worker:Worker`` finds peaks (peakfinder8 or the dispersion
method) and returns the peak list; reducer ``examples.hitfinding.reducer:Reducer`` publishes
the peak count per event, the hit flags and the hit rate.
"""
