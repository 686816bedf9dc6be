"""The service layer: the Python API the REST API, the CLI and the scheduler call.

- :mod:`.balances`: :class:`BalanceService`, current balances (cache -> store -> chain);
- :mod:`.views`: turning stored balances into answers, with freshness;
- :mod:`.bulk`: many addresses and tokens in one call;
- :mod:`.history`: balance and portfolio history readers;
- :mod:`.series`: :class:`BalanceSeriesAPI`, the time-series API;
- :mod:`.aggregates`: portfolio analytics over series;
- :mod:`.ingest`: block ingestion wired to the service.
"""

from balances.service.balances import BalanceService
from balances.service.series import BalanceSeriesAPI

__all__ = ["BalanceSeriesAPI", "BalanceService"]
