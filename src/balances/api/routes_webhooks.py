"""Webhook subscription routes (all need the API key).

- ``POST /webhooks``: subscribe a URL to the changes of some addresses and tokens;
  the answer holds the secret that signs its deliveries (shown this once).
- ``GET /webhooks``, ``GET /webhooks/{id}``: subscriptions and how far each got
  (cursor, failures, dead-letter state), without secrets.
- ``DELETE /webhooks/{id}``; ``POST /webhooks/{id}/revive`` delivers to a
  dead-lettered one again (``?skip=true``: from now, leaving out what it missed).

Deliveries, their signature and how to verify it: README, "Webhooks".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from balances.api.deps import ApiKey, Service
from balances.api.params import PRINCIPAL_SCHEMA, TOKEN_ID_SCHEMA
from balances.api.routes_balances import ERRORS
from balances.domain.webhooks import Webhook
from balances.errors import FeedUnavailableError
from balances.service.balances import BalanceService
from balances.service.webhooks import Webhooks

router = APIRouter(tags=["webhooks"], responses=ERRORS, dependencies=[ApiKey])
WEBHOOK_ID = Path(pattern=r"^wh_[0-9a-f]{16}$", description="a subscription id")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: The URLs the route accepts (the service's own check would also take IPv6 hosts).
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = rf"^https?://{_LABEL}(?:\.{_LABEL})*(?::{_PORT})?(?:/[!-~]*)?$"
Address = Annotated[str, Field(json_schema_extra=PRINCIPAL_SCHEMA)]
Token = Annotated[str, Field(json_schema_extra=TOKEN_ID_SCHEMA)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=2000,
        description="http(s) URL the deliveries are POSTed to (a host name or IPv4 address)",
        pattern=URL_PATTERN,
    )
    addresses: list[Address] = Field(
        default_factory=list,
        max_length=100_000,
        description="at most BALANCES_FEED__MAX_ADDRESSES (none: every address)",
    )
    tokens: list[Token] = Field(default_factory=list, max_length=1000)
    secret: str | None = Field(
        None,
        description="16-256 characters signing the deliveries (default: one is made)",
        json_schema_extra={"pattern": "^[!-~]{16,256}$"},
    )
    after: int | None = Field(
        None, ge=0, description="deliver changes after this seq (default: now)"
    )

    @field_validator("after", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("a sequence number, not a boolean")  # JSON true is no integer
        return value


class WebhookOut(BaseModel):
    id: str
    url: str
    addresses: list[str]
    tokens: list[str]
    state: str = Field(description="active, or dead (dead-lettered after repeated failures)")
    cursor: int = Field(description="the last change seq delivered or passed over")
    failures: int = Field(description="failed deliveries in a row")
    delivered: int = Field(description="changes delivered so far")
    last_error: str | None
    last_delivery_at: float | None
    created_at: float

    @classmethod
    def of(cls, hook: Webhook) -> WebhookOut:
        return cls(**hook.public())


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(description="signs the deliveries; not shown again")


def _webhooks(svc: BalanceService) -> Webhooks:
    if svc.webhooks is None:
        raise FeedUnavailableError(
            "webhooks need the change feed (the sharded layout and BALANCES_FEED__ENABLED=true)"
        )
    return svc.webhooks


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to balance changes")
async def create_webhook(svc: Service, body: WebhookIn) -> CreatedWebhookOut:
    hook = await _webhooks(svc).create(
        body.url, body.addresses, body.tokens, secret=body.secret, after=body.after
    )
    return CreatedWebhookOut(**hook.to_json())


@router.get("/webhooks", summary="Webhook subscriptions and their delivery state")
async def list_webhooks(svc: Service) -> list[WebhookOut]:
    return [WebhookOut.of(hook) for hook in await _webhooks(svc).list()]


@router.get("/webhooks/{webhook_id}", summary="One webhook subscription")
async def get_webhook(svc: Service, webhook_id: Annotated[str, WEBHOOK_ID]) -> WebhookOut:
    return WebhookOut.of(await _webhooks(svc).get(webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a subscription")
async def delete_webhook(svc: Service, webhook_id: Annotated[str, WEBHOOK_ID]) -> None:
    await _webhooks(svc).delete(webhook_id)


@router.post("/webhooks/{webhook_id}/revive", summary="Deliver to a dead-lettered one again")
async def revive_webhook(
    svc: Service,
    webhook_id: Annotated[str, WEBHOOK_ID],
    skip: Annotated[bool, Query(description="resume from now, leaving out what it missed")] = False,
) -> WebhookOut:
    return WebhookOut.of(await _webhooks(svc).revive(webhook_id, skip=skip))
