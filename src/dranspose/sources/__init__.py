"""Synthetic detector streams for the capture streamer, benchmarks and demos."""

from dranspose.sources.synth import synth_eiger_legacy, synth_stins, synth_stream2

__all__ = ["synth_stins", "synth_eiger_legacy", "synth_stream2"]
