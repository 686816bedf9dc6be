"""``HttpPriceSource``: USD prices from an HTTP API, one GET per token.

- ``GET url_template.format(token_id=...)`` answers ``{"token_id", "usd", "at"}``;
  the token id is percent-encoded whole (``::`` and ``/`` included).
- ``GET history_url_template...?from=<unix>&to=<unix>`` answers
  ``{"token_id", "prices": [{"at", "usd"}, ...]}``.
- 404: the source has no price (or no history) for the token: it is left out, not
  zero. 429, 5xx, timeouts and connection failures are retried a bounded number
  of times with jittered backoff (``retry-after`` is a floor), then raise
  :class:`PriceSourceError`; so do other 4xx answers and malformed bodies, at once.

The retry loop is small and local on purpose: the import layering (DESIGN.md 3)
keeps ``prices`` and ``chain`` apart, so :mod:`balances.chain.transport` is not
available here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from balances.errors import ConfigError, PriceSourceError
from balances.prices.source import PricePoint, check_window
from balances.prices.wire import malformed, parse_history, parse_price

log = logging.getLogger("balances.prices")

Sleep = Callable[[float], Awaitable[None]]
_MESSAGE_LIMIT = 200


class HttpPriceSource:
    """A :class:`~balances.prices.PriceSource` over HTTP (see the module docstring)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url_template: str,
        *,
        history_url_template: str | None = None,
        timeout: float | None = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        max_retry_after: float = 30.0,
        concurrency: int = 8,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        for name, template in (
            ("url_template", url_template),
            ("history_url_template", history_url_template),
        ):
            if template is not None and "{token_id}" not in template:
                raise ConfigError(f"{name} must contain '{{token_id}}', got {template!r}")
        if retries < 0 or concurrency < 1:
            raise ConfigError(
                f"need retries >= 0 and concurrency >= 1, got {retries}, {concurrency}"
            )
        if backoff < 0 or max_backoff < 0 or max_retry_after < 0:
            raise ConfigError("backoff delays must be >= 0")
        self._http = http
        self._url_template = url_template
        self._history_template = history_url_template
        self._timeout: Any = httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout)
        self._attempts = retries + 1
        self._backoff = (backoff, max_backoff, max_retry_after)
        self._concurrency = concurrency
        self._sleep = sleep
        self._rng = rng

    async def get_prices(self, token_ids: Sequence[str]) -> dict[str, PricePoint]:
        """Current prices, at most ``concurrency`` requests at a time.

        Every token is tried; if any read failed, the first failure is raised (with
        how many failed) rather than passing off a partial answer as complete.
        """
        unique = list(dict.fromkeys(token_ids))
        gate = asyncio.Semaphore(self._concurrency)

        async def one(token_id: str) -> PricePoint | None:
            async with gate:
                return await self.get_price(token_id)

        outcomes = await asyncio.gather(*(one(t) for t in unique), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            first = failures[0]
            if not isinstance(first, PriceSourceError):
                raise first
            raise PriceSourceError(f"{len(failures)} of {len(unique)} price reads failed: {first}")
        return {
            token_id: point
            for token_id, point in zip(unique, outcomes, strict=True)
            if isinstance(point, PricePoint)
        }

    async def get_price(self, token_id: str) -> PricePoint | None:
        """One token's current price; None when the source has none (404)."""
        url = self._url(self._url_template, token_id)
        body = await self._get_json(url, None, f"price of {token_id!r} (GET {url})")
        if body is None:
            return None
        return parse_price(body, token_id, f"price of {token_id!r}")

    async def get_price_history(
        self, token_id: str, start: datetime, end: datetime
    ) -> list[PricePoint]:
        """Points within ``[start, end]``; [] without a history URL or on 404."""
        start, end = check_window(start, end)
        if self._history_template is None:
            return []
        url = self._url(self._history_template, token_id)
        query = {"from": math.floor(start.timestamp()), "to": math.ceil(end.timestamp())}
        where = f"price history of {token_id!r}"
        body = await self._get_json(url, query, f"{where} (GET {url})")
        if body is None:
            return []
        points = parse_history(body, token_id, where)
        return [point for point in points if start <= point.at <= end]

    @staticmethod
    def _url(template: str, token_id: str) -> str:
        return template.format(token_id=quote(token_id.strip(), safe=""))

    async def _get_json(self, url: str, query: Mapping[str, int] | None, where: str) -> Any:
        """The decoded JSON of a 2xx answer; None for 404."""
        response = await self._exchange(url, query, where)
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise PriceSourceError(
                f"{where} was refused ({response.status_code}): {_error_message(response)}"
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise malformed(where, f"not JSON: {response.content[:60]!r}") from error

    async def _exchange(
        self, url: str, query: Mapping[str, int] | None, where: str
    ) -> httpx.Response:
        """Send with bounded retries; return the first answer that is not retryable."""
        for attempt in range(self._attempts):
            outcome = await self._attempt(url, query, where)
            if isinstance(outcome, httpx.Response):
                return outcome
            message, retry_after = outcome
            too_long = retry_after is not None and retry_after > self._backoff[2]
            if attempt + 1 >= self._attempts or too_long:
                raise PriceSourceError(f"{message} (after {attempt + 1} attempt(s))")
            delay = self._delay(attempt, retry_after)
            log.debug("retrying %s in %.2fs after: %s", where, delay, message)
            await self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _attempt(
        self, url: str, query: Mapping[str, int] | None, where: str
    ) -> httpx.Response | tuple[str, float | None]:
        """An answer, or (why to retry, the server's retry-after)."""
        headers = {"accept": "application/json"}
        try:
            response = await self._http.get(
                url, params=query, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException:
            return f"{where} timed out", None
        except httpx.TransportError as error:
            return f"{where} could not be reached: {error or type(error).__name__}", None
        except httpx.HTTPError as error:
            raise PriceSourceError(f"{where} failed: {error}") from error
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = _retry_after(response.headers.get("retry-after"))
            return f"{where} answered {status}: {_error_message(response)}", retry_after
        return response

    def _delay(self, retry: int, retry_after: float | None) -> float:
        """Full-jitter exponential backoff, never sooner than ``retry-after``."""
        base, cap, _ = self._backoff
        jittered = min(cap, base * 2.0 ** min(retry, 32)) * self._rng()
        return jittered if retry_after is None else max(retry_after, jittered)


def _retry_after(value: str | None) -> float | None:
    """Delta-seconds from ``retry-after``; anything else falls back to backoff."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _error_message(response: httpx.Response) -> str:
    """The server's ``{"error", "message"}``, or the start of its body."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        extra = data.get("message")
        text = str(data["error"]) + (f": {extra}" if isinstance(extra, str) else "")
    else:
        text = response.text.strip() or response.reason_phrase or "no message"
    return text[:_MESSAGE_LIMIT]
