"""The ``balances`` command line (Typer). Commands call the async API with ``asyncio.run``."""

from balances.cli.app import app, main

__all__ = ["app", "main"]
