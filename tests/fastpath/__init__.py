"""Tests of the compiled fast path, the codecs and the STINS / Eiger v1 / stream v2 protocols."""
