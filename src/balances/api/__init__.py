"""The REST API (FastAPI). Build it with :func:`create_app`."""

from balances.api.app import create_app

__all__ = ["create_app"]
