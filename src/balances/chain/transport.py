"""HTTP to the Stacks API: rate limit, retries, error mapping, ETags, deprecations.

Everything that turns an HTTP exchange into a parsed answer or a ``ChainError``
lives here, so :mod:`balances.chain.client` only speaks in routes and shapes.

- Every attempt (retries included) waits for the shared :class:`RateLimiter`.
- 429 and 5xx answers, timeouts and connection failures are retried with backoff;
  ``retry-after`` (on 429, and on 503 if sent) is a floor, and a 429 defers the
  limiter so every concurrent request slows down, not only the refused one.
- After the last attempt: 429 -> RateLimitedError(retry_after), everything else ->
  ChainUnavailableError. 404/410 -> EndpointGoneError (callers refine it); other
  4xx -> ChainError with the API's message; a body that is not JSON ->
  MalformedResponseError (not retried: a broken answer is not a busy server).
- ``Warning`` headers (the API's deprecation notice) are logged once per route.
- Conditional GETs remember each URL's ETag and parsed answer and reuse the
  answer on 304.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson

from balances.chain.ratelimit import RateLimiter, Sleep
from balances.chain.retry import RetryPolicy, parse_retry_after
from balances.errors import (
    BalancesError,
    ChainError,
    ChainRejectedError,
    ChainUnavailableError,
    EndpointGoneError,
    MalformedResponseError,
    RateLimitedError,
)

log = logging.getLogger("balances.chain")

T = TypeVar("T")
_Failure = tuple[ChainError, float | None]  # the error to raise, the retry-after hint
#: Builds the error for a 4xx status from (our message, the API's message).
ErrorFactory = Callable[[str, str], BalancesError]
_MESSAGE_LIMIT = 200


#: A query value; a list is sent as the parameter repeated (OpenAPI's form style,
#: exploded: ``tx_id=a&tx_id=b``), as the API's array parameters are read.
QueryValue = str | int | list[str]


@dataclass(frozen=True, slots=True)
class Request:
    """One logical request: ``route`` is ``"GET /path/{param}"``, the counter's key."""

    route: str
    url: str
    query: Mapping[str, QueryValue] | None = None
    body: Any = None

    @property
    def method(self) -> str:
        return self.route.split(" ", 1)[0]


class Transport:
    """Sends requests for one API base URL under one limiter and retry policy."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        api_key: str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = 10.0,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        etag_cache_size: int = 4096,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {"accept": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key
        self.limiter = limiter or RateLimiter(None)
        self.retry = retry or RetryPolicy()
        self._timeout: float | httpx.Timeout | Any = (
            httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout)
        )
        self._timeout_text = "the client's timeout" if timeout is None else f"{timeout:g}s"
        self._sleep = sleep
        self._rng = rng
        self._etags: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._etag_cache_size = etag_cache_size
        self._warned: set[str] = set()
        #: Answers by (route template, status code or "timeout"/"unreachable"), for metrics.
        self.counts: Counter[tuple[str, str]] = Counter()

    def request(
        self,
        route: str,
        path: Mapping[str, str],
        query: Mapping[str, QueryValue] | None = None,
        body: Any = None,
    ) -> Request:
        """Build a :class:`Request`; path parameters are percent-encoded."""
        template = route.split(" ", 1)[1]
        encoded = {name: quote(value, safe=":") for name, value in path.items()}
        return Request(route, self.base_url + template.format(**encoded), query, body)

    async def fetch(
        self,
        request: Request,
        parse: Callable[[Any], T],
        *,
        conditional: bool = False,
        errors: Mapping[int, ErrorFactory] | None = None,
    ) -> T:
        """Send ``request`` and return ``parse(json)``; errors as in the module doc.

        ``errors`` maps a 4xx status to the error to raise, called with our message
        and the API's; the defaults are EndpointGoneError for 404/410 and ChainError.
        """
        key = _cache_key(request)
        cached = self._etags.get(key) if conditional else None
        headers = dict(self._headers)
        if cached is not None:
            headers["if-none-match"] = cached[0]
        response = await self._exchange(request, headers)
        if response.status_code == 304 and cached is not None:
            self._etags.move_to_end(key)
            return cached[1]  # type: ignore[no-any-return]
        if response.status_code == 304:
            raise MalformedResponseError(f"{request.route} answered 304 to an unconditional GET")
        if not 200 <= response.status_code < 300:
            raise _client_error(request.route, response, errors or {})
        value = parse(_decode_json(request.route, response))
        etag = response.headers.get("etag")
        if conditional and etag:
            self._remember(key, etag, value)
        return value

    def _remember(self, key: str, etag: str, value: Any) -> None:
        self._etags[key] = (etag, value)
        self._etags.move_to_end(key)
        while len(self._etags) > self._etag_cache_size:
            self._etags.popitem(last=False)

    async def _exchange(self, request: Request, headers: dict[str, str]) -> httpx.Response:
        """Send with rate limiting and bounded retries; return a non-retryable answer."""
        retry = 0
        while True:
            await self.limiter.acquire()
            outcome = await self._attempt(request, headers)
            if isinstance(outcome, httpx.Response):
                self._note_warning(request.route, outcome)
                return outcome
            error, retry_after = outcome
            too_long = retry_after is not None and retry_after > self.retry.max_retry_after
            if retry + 1 >= self.retry.attempts or too_long:
                raise error
            delay = self.retry.delay(retry, retry_after, self._rng)
            log.debug("retrying %s in %.2fs after: %s", request.route, delay, error)
            if isinstance(error, RateLimitedError):
                self.limiter.defer(delay)  # everyone waits, so a 429 storm slows the client
            else:
                await self._sleep(delay)
            retry += 1

    async def _attempt(
        self, request: Request, headers: dict[str, str]
    ) -> httpx.Response | _Failure:
        route, content = request.route, None
        if request.body is not None:
            content = orjson.dumps(request.body)
            headers = {**headers, "content-type": "application/json"}
        try:
            response = await self._http.request(
                request.method,
                request.url,
                params=request.query,
                content=content,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            self.counts[(route, "timeout")] += 1
            return ChainUnavailableError(f"{route} timed out after {self._timeout_text}"), None
        except httpx.DecodingError as error:
            raise MalformedResponseError(f"{route} sent an undecodable body: {error}") from error
        except httpx.TransportError as error:
            self.counts[(route, "unreachable")] += 1
            reason = str(error) or type(error).__name__
            return ChainUnavailableError(f"{route} could not be reached: {reason}"), None
        except httpx.HTTPError as error:
            raise ChainError(f"{route} failed: {error}") from error
        self.counts[(route, str(response.status_code))] += 1
        return _retryable(route, response) or response

    def _note_warning(self, route: str, response: httpx.Response) -> None:
        warning = response.headers.get("warning")
        if warning and route not in self._warned:
            self._warned.add(route)
            log.warning("%s: the API warns: %s", route, warning)


def _cache_key(request: Request) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted((request.query or {}).items()))
    return f"{request.url}?{query}"


def _retryable(route: str, response: httpx.Response) -> _Failure | None:
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        hint = "" if retry_after is None else f" (retry after {retry_after:g}s)"
        return RateLimitedError(f"{route} is rate limited{hint}", retry_after), retry_after
    if status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        message = _error_message(response)
        return ChainUnavailableError(f"{route} answered {status}: {message}"), retry_after
    return None


def _client_error(
    route: str, response: httpx.Response, errors: Mapping[int, ErrorFactory]
) -> BalancesError:
    status, message = response.status_code, _error_message(response)
    if status in errors:
        return errors[status](f"{route} answered {status}: {message}", message)
    if status in (404, 410):
        return EndpointGoneError(f"{route} answered {status}: {message}")
    return ChainRejectedError(f"{route} rejected the request ({status}): {message}")


def _error_message(response: httpx.Response) -> str:
    """The API's ``{"error", "message"}`` or the start of a text body."""
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


def _decode_json(route: str, response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as error:
        start = response.content[:60]
        raise MalformedResponseError(
            f"{route} answered a body that is not JSON: {start!r}"
        ) from error
