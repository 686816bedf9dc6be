"""One table from errors to HTTP answers: ``{"error": code, "message": text}``.

The first row whose class matches (in order, most specific first) decides the
status and the code. Anything not in the table is a 500 whose message does not
leak internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from balances.blobs.health import reportable
from balances.errors import (
    BalanceNotFoundError,
    BalancesError,
    BehindBlockError,
    BlobStoreError,
    ChainError,
    ChainRejectedError,
    ChainUnavailableError,
    ConfigError,
    ContractCallError,
    ContractNotFoundError,
    FeedGoneError,
    FeedUnavailableError,
    IngestError,
    InvalidAddressError,
    InvalidDeliveryError,
    InvalidGranularityError,
    InvalidPeriodError,
    InvalidTokenIdError,
    NotFoundError,
    RateLimitedError,
    RequestTooLargeError,
    TokenNotFoundError,
    ValidationError,
    WebhookNotFoundError,
)

log = logging.getLogger("balances.api")


class ApiError(BalancesError):
    """An error the API raises itself (auth, limits), with its status and code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PayloadTooLargeError(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(413, "payload_too_large", message)


#: (error class, HTTP status, error code), most specific first.
ERROR_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (RequestTooLargeError, 413, "request_too_large"),
    (InvalidAddressError, 400, "invalid_address"),
    (InvalidTokenIdError, 400, "invalid_token_id"),
    (InvalidPeriodError, 400, "invalid_period"),
    (InvalidGranularityError, 400, "invalid_granularity"),
    (InvalidDeliveryError, 400, "invalid_delivery"),
    (ValidationError, 400, "invalid_request"),
    (BalanceNotFoundError, 404, "balance_not_found"),
    (ContractNotFoundError, 404, "token_not_found"),
    (TokenNotFoundError, 404, "token_not_found"),
    (WebhookNotFoundError, 404, "webhook_not_found"),
    (NotFoundError, 404, "not_found"),
    (RateLimitedError, 429, "chain_rate_limited"),
    (ChainUnavailableError, 503, "chain_unavailable"),
    # The chain refused what the caller's input made us ask: their error, not ours.
    (ChainRejectedError, 400, "chain_rejected_request"),
    (ContractCallError, 400, "token_call_failed"),
    (ChainError, 502, "chain_error"),
    (BlobStoreError, 503, "storage_unavailable"),
    (IngestError, 503, "ingestion_unavailable"),
    (FeedGoneError, 410, "feed_gone"),
    (FeedUnavailableError, 503, "feed_unavailable"),
    (BehindBlockError, 503, "behind_block"),
    (ConfigError, 500, "configuration_error"),
)


def describe(error: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for ``error``."""
    if isinstance(error, ApiError):
        return error.status, error.code, str(error)
    for error_class, status, code in ERROR_TABLE:
        if isinstance(error, error_class):
            return status, code, str(error)
    return 500, "internal_error", "an unexpected error occurred; it has been logged"


def error_body(error: BaseException) -> dict[str, str]:
    """The JSON body of ``error`` (also used per item in batch answers)."""
    _, code, message = describe(error)
    return {"error": code, "message": message}


def error_response(error: BaseException) -> JSONResponse:
    status, code, message = describe(error)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = "ApiKey"
    body: dict[str, object] = {"error": code, "message": message}
    if isinstance(error, FeedGoneError):
        body["resume_after"] = error.resume_after
    return JSONResponse(body, status_code=status, headers=headers)


async def _balances_error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, BlobStoreError) and reportable(error):
        # A damaged blob fails every read of it: one warning per blob (from the
        # storage health record), not a traceback per request.
        request.app.state.service.storage_failed(error)
        log.debug("%s %s failed: %s", request.method, request.url.path, error)
    elif describe(error)[0] >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, error, exc_info=error)
    return error_response(error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=error)
    return error_response(error)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(_problem(item) for item in error.errors()[:10])
    body = {"error": "invalid_request", "message": problems or "the request is invalid"}
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(error.status_code, "http_error")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(
        {"error": code, "message": str(error.detail)},
        status_code=error.status_code,
        headers=headers,
    )


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the path the request is for: the first route that matches it
    decides the path template (as it does in routing), and every route of that
    template adds its methods (Starlette names only the first route's, though
    ``PUT`` and ``DELETE /tracked/{address}`` are two routes)."""
    template: str | None = None
    methods: set[str] = set()
    for route in request.app.state.api_routes:
        match, _ = route.matches(request.scope)
        path = getattr(route, "path", None)
        if match is Match.NONE or path is None:
            continue
        template = path if template is None else template
        if path == template:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _problem(item: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    return f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BalancesError, _balances_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
