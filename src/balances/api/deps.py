"""Request dependencies: the service behind the app, and the API-key guard."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.requests import HTTPConnection

from balances.api.errors import ApiError
from balances.config import BalanceServiceConfig
from balances.service.balances import BalanceService

API_KEY_HEADER = "x-api-key"
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Needed by write and admin routes; they are disabled when no key is configured.",
)


def service(request: HTTPConnection) -> BalanceService:
    found: BalanceService = request.app.state.service
    return found


def settings(request: HTTPConnection) -> BalanceServiceConfig:
    found: BalanceServiceConfig = request.app.state.settings
    return found


def require_api_key(
    request: Request, given: Annotated[str | None, Depends(_api_key)] = None
) -> None:
    """Admit the request only with the configured key; with none configured, refuse."""
    configured = settings(request).api.key
    if configured is None:
        raise ApiError(
            403,
            "disabled",
            "this route is disabled: no API key is configured (set BALANCES_API__KEY)",
        )
    if given is None or not hmac.compare_digest(
        given.encode(), configured.get_secret_value().encode()
    ):
        raise ApiError(401, "unauthorized", f"this route needs a valid {API_KEY_HEADER} header")


Service = Annotated[BalanceService, Depends(service)]
ApiKey = Depends(require_api_key)
