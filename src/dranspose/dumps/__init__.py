"""Dump files: the ingester dump / raw capture formats (:mod:`.dumpfile`) and the recorder
that writes them off the hot path (:mod:`.record`)."""
