"""Webhook subscriptions and the signature of their deliveries.

A delivery is a JSON batch of feed entries POSTed to the subscriber's URL. Its
``Balances-Signature`` header is ``t=<unix seconds>,v1=<hex>``, where ``v1`` is the
HMAC-SHA256, keyed with the subscription's secret, of ``"<t>." + raw body``. The
timestamp is inside the signed content, so a receiver that refuses signatures older
than a few minutes (:func:`verify_signature`) cannot be fed a replayed delivery;
it deduplicates retried ones by the entries' sequence numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from balances.errors import InvalidSignatureError

SIGNATURE_HEADER = "Balances-Signature"
#: Seconds a receiver accepts a signature for (its clock against ours, and retries).
DEFAULT_TOLERANCE = 300
WebhookState = Literal["active", "dead"]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Balances-Signature`` header value of ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a delivery: the signature matches ``body`` and is at most ``tolerance``
    seconds old (or ahead). Returns its timestamp; raises InvalidSignatureError."""
    if not header:
        raise InvalidSignatureError(f"no {SIGNATURE_HEADER} header")
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not (stamp.isascii() and stamp.isdigit()) or not given:
        raise InvalidSignatureError(f"{SIGNATURE_HEADER} is not t=<seconds>,v1=<hex>")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignatureError(
            f"the signature is {abs(current - timestamp):.0f} s old; at most {tolerance:.0f} "
            "s is accepted (a replayed delivery?)"
        )
    if not hmac.compare_digest(given, _digest(secret, timestamp, body)):
        raise InvalidSignatureError("the signature does not match the body")
    return timestamp


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Webhook:
    """One subscription: where to deliver, which changes, and how far it got.

    ``cursor`` is the last feed sequence number the subscription has accounted for
    (delivered, or not matching its filter): a restart resumes after it.
    """

    id: str
    url: str
    secret: str
    created_at: float
    cursor: int
    addresses: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    state: WebhookState = "active"
    failures: int = 0
    delivered: int = 0
    last_error: str | None = None
    last_delivery_at: float | None = None

    def public(self) -> dict[str, Any]:
        """What a listing shows: everything but the secret."""
        return {
            "id": self.id,
            "url": self.url,
            "addresses": list(self.addresses),
            "tokens": list(self.tokens),
            "state": self.state,
            "cursor": self.cursor,
            "failures": self.failures,
            "delivered": self.delivered,
            "last_error": self.last_error,
            "last_delivery_at": self.last_delivery_at,
            "created_at": self.created_at,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.public(), "secret": self.secret}

    def advanced(self, cursor: int, delivered: int, at: float | None) -> Webhook:
        """Moved on to ``cursor`` (never back), ``delivered`` more changes sent."""
        if cursor <= self.cursor and not delivered:
            return self
        return replace(
            self,
            cursor=max(self.cursor, cursor),
            delivered=self.delivered + delivered,
            failures=0,
            last_delivery_at=at if delivered else self.last_delivery_at,
        )


def decode_webhook(data: dict[str, Any]) -> Webhook:
    """The webhook :meth:`Webhook.to_json` wrote (KeyError/TypeError/ValueError if not)."""
    state = data["state"]
    if state not in ("active", "dead"):
        raise ValueError(f"webhook state {state!r}")
    return Webhook(
        id=str(data["id"]),
        url=str(data["url"]),
        secret=str(data["secret"]),
        created_at=float(data["created_at"]),
        cursor=int(data["cursor"]),
        addresses=tuple(str(a) for a in data["addresses"]),
        tokens=tuple(str(t) for t in data["tokens"]),
        state=state,
        failures=int(data["failures"]),
        delivered=int(data["delivered"]),
        last_error=None if data["last_error"] is None else str(data["last_error"]),
        last_delivery_at=(
            None if data["last_delivery_at"] is None else float(data["last_delivery_at"])
        ),
    )
