"""What is known of the public Stacks networks: their API hosts, their map-based
tokens and the rate limits Hiro publishes for its hosts. Facts of the chain, not
settings: :mod:`balances.config` builds its defaults from them."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from balances.chain.routes import MAINNET_API_URL

KNOWN_NETWORK_URLS = {
    "mainnet": MAINNET_API_URL,
    "testnet": "https://api.testnet.hiro.so",
}
#: Map-based ("subnet") credit tokens read for every address, per network, unless
#: configured otherwise: no balance endpoint lists them (DESIGN.md section 2).
KNOWN_MAP_TOKENS: dict[str, tuple[str, ...]] = {
    "mainnet": ("SP2ZNGJ85ENDY6QRHQ5P2D4FXKGZWCKTB2T0Z55KS.charisma-token-subnet-v1",),
}
#: Hiro's published limits: 25 requests a minute without a key, 900 with a free key.
ANONYMOUS_RATE_LIMIT = 25
KEYED_RATE_LIMIT = 900
#: The hosts those limits apply to; any other API (a user's own node) is not paced
#: unless a limit is configured.
HIRO_DOMAIN = "hiro.so"


def default_rate_limit(api_url: str, keyed: bool) -> float:
    """Requests a minute to pace at when none is configured: Hiro's limits on Hiro's
    hosts, unlimited (``inf``) elsewhere. 429s are honoured either way."""
    host = (urlsplit(api_url).hostname or "").lower().rstrip(".")
    if host == HIRO_DOMAIN or host.endswith("." + HIRO_DOMAIN):
        return KEYED_RATE_LIMIT if keyed else ANONYMOUS_RATE_LIMIT
    return math.inf
