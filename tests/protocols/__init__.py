"""Tests of the non-detector source protocols (Xspress3, PandA, contrast, Sardana, AlbaEM, LeCroy)."""
