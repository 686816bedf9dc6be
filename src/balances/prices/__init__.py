"""USD prices for tokens: where they come from (DESIGN.md 5, portfolio USD value).

A :class:`PriceSource` answers current prices and price history as
:class:`PricePoint` values (Decimal USD, never floats). :class:`HttpPriceSource`
reads them from an HTTP API with bounded retries; :class:`StaticPriceSource`
serves a fixed table for tests and offline use. Tokens without a price are left
out of answers, never priced at 0.
"""

from balances.errors import PriceSourceError
from balances.prices.http import HttpPriceSource
from balances.prices.source import PricePoint, PriceSource, StaticPriceSource

__all__ = [
    "HttpPriceSource",
    "PricePoint",
    "PriceSource",
    "PriceSourceError",
    "StaticPriceSource",
]
