"""The clinic's REST API (FastAPI): routes over the registry's use cases."""
