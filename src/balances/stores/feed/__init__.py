"""The change feed: every applied balance change, numbered, kept for a while.

:class:`ChangeFeed` numbers and writes entries (one writer at a time);
:class:`FeedReader` answers "what came after sequence N" from the blobs, or says
the position is gone; :class:`LiveHub` hands new entries to subscribers in this
process. The layout and its guarantees: docs/change-feed.md.
"""

from balances.stores.feed.live import LiveHub, Subscription
from balances.stores.feed.reader import FeedPage, FeedReader
from balances.stores.feed.writer import ChangeFeed, FeedSettings

__all__ = ["ChangeFeed", "FeedPage", "FeedReader", "FeedSettings", "LiveHub", "Subscription"]
