"""Composition root: settings -> the concrete parts of a running service.

Blob stores are opened by URL (:func:`balances.blobs.open_blob_store`) and chain
clients by network name (:func:`balances.chain.networks.create_client`); this
module wires them for the API and the CLI.
"""

from __future__ import annotations

from balances.blobs.factory import DEFAULT_BLOB_URL, open_blob_store

__all__ = ["DEFAULT_BLOB_URL", "open_blob_store"]
