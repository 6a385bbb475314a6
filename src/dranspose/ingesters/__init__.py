"""Ingesters served as ASGI apps (``dranspose http_ingester -c dranspose.ingesters.http_sardana:app``)."""
