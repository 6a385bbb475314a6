"""Everything on one machine: a private ``redis-server`` (:mod:`.redis_server`), a process
supervisor (:mod:`.supervisor`) and ``dranspose combined`` (:mod:`.combined`)."""
