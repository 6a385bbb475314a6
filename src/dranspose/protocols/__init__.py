"""One module per wire protocol: decode, synthetic encode, and a stream cutter for ingesters."""
