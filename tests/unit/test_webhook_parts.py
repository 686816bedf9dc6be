"""The parts of webhooks that need no network: signatures, backoff, the registry."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from balances.blobs import MemoryBlobStore
from balances.domain.webhooks import Webhook, decode_webhook, sign, verify_signature
from balances.errors import CorruptBlobError, InvalidSignatureError, WebhookNotFoundError
from balances.service.destinations import is_public
from balances.service.webhooks import backoff_delay, check_secret, check_url
from balances.stores.webhooks import Progress, WebhookRegistry, webhooks_key

SECRET = "whsec-0123456789abcdef"
BODY = (
    b'{"webhook":"wh_1","changes":[{"seq":7,"amount":"340282366920938463463374607431768211455"}]}'
)


def hook(hook_id: str = "wh_0000000000000001", **fields: object) -> Webhook:
    base: dict[str, object] = {
        "id": hook_id,
        "url": "https://example.com/hook",
        "secret": SECRET,
        "created_at": 1_700_000_000.0,
        "cursor": 5,
    }
    return Webhook(**{**base, **fields})  # type: ignore[arg-type]


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_raw_body() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature(SECRET, BODY, header, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("header", "now", "message"),
    [
        (None, 1_700_000_000, "no Balances-Signature"),
        ("v1=abc", 1_700_000_000, "is not t=<seconds>,v1=<hex>"),
        ("t=soon,v1=abc", 1_700_000_000, "is not t=<seconds>,v1=<hex>"),
        ("t=1700000000", 1_700_000_000, "is not t=<seconds>,v1=<hex>"),
        ("t=1700000000,v1=00", 1_700_000_000, "does not match"),
        ("good", 1_700_000_301, "replayed"),
        ("good", 1_699_999_699, "replayed"),  # from the future, as far
    ],
)
def test_a_bad_or_stale_signature_is_refused_with_a_reason(
    header: str | None, now: float, message: str
) -> None:
    given = sign(SECRET, 1_700_000_000, BODY) if header == "good" else header
    with pytest.raises(InvalidSignatureError, match=message):
        verify_signature(SECRET, BODY, given, now=now)


def test_a_signature_covers_every_byte_and_the_timestamp() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    digest = header.partition("v1=")[2]
    with pytest.raises(InvalidSignatureError):
        verify_signature(SECRET, BODY + b" ", header, now=1_700_000_000)
    with pytest.raises(InvalidSignatureError):  # the same digest under a newer timestamp
        verify_signature(SECRET, BODY, f"t=1700000200,v1={digest}", now=1_700_000_200)


def test_backoff_doubles_up_to_the_ceiling_with_jitter_in_its_upper_half() -> None:
    lows = [backoff_delay(n, 1.0, 60.0, rng=lambda: 0.0) for n in range(1, 10)]
    highs = [backoff_delay(n, 1.0, 60.0, rng=lambda: 1.0) for n in range(1, 10)]
    assert highs == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert lows == [h / 2 for h in highs]


def test_a_webhook_round_trips_and_its_listing_hides_the_secret() -> None:
    original = hook(addresses=("SP1",), tokens=("stx",), delivered=3, last_error="HTTP 500")
    assert decode_webhook(original.to_json()) == original
    assert "secret" not in original.public()
    with pytest.raises(ValueError, match="state"):
        decode_webhook({**original.to_json(), "state": "paused"})


def test_urls_and_secrets_are_checked() -> None:
    assert check_url("https://example.com/h?x=1") == "https://example.com/h?x=1"
    for bad in ("ftp://example.com/h", "/relative", "https://", "http://ex ample.com", "é"):
        with pytest.raises(ValueError, match=r"http\(s\) URL"):
            check_url(bad)
    assert check_secret("s" * 16) == "s" * 16
    for bad in ("short", "s" * 257, "s" * 15 + "\n"):
        with pytest.raises(ValueError, match="16 to 256"):
            check_secret(bad)


async def test_the_registry_keeps_cursors_moving_forward_only() -> None:
    registry = WebhookRegistry(MemoryBlobStore(), "v1")
    await registry.add(hook(), limit=10)
    await registry.record({"wh_0000000000000001": Progress(9, delivered=2, at=1.0)})
    await registry.record({"wh_0000000000000001": Progress(7)})  # a stale save
    await registry.record({"wh_0000000000000009": Progress(99)})  # deleted meanwhile
    stored = await registry.get("wh_0000000000000001")
    assert (stored.cursor, stored.delivered, stored.last_delivery_at) == (9, 2, 1.0)
    assert len(await registry.all()) == 1


async def test_the_registry_dead_letters_revives_and_bounds_its_size() -> None:
    registry = WebhookRegistry(MemoryBlobStore(), "v1")
    await registry.add(hook(), limit=1)
    with pytest.raises(ValueError, match="at most 1"):
        await registry.add(hook("wh_0000000000000002"), limit=1)
    await registry.record({hook().id: Progress(5, failures=3, error="HTTP 500", dead=True)})
    dead = await registry.get(hook().id)
    assert (dead.state, dead.failures, dead.last_error) == ("dead", 3, "HTTP 500")
    revived = await registry.revive(hook().id, cursor=50)
    assert (revived.state, revived.failures, revived.cursor) == ("active", 0, 50)
    await registry.delete(hook().id)
    with pytest.raises(WebhookNotFoundError):
        await registry.delete(hook().id)
    with pytest.raises(WebhookNotFoundError):
        await registry.revive(hook().id)


async def test_a_damaged_registry_is_reported_not_replaced() -> None:
    blobs = MemoryBlobStore()
    await blobs.put(webhooks_key("v1"), b'{"format": 1, "webhooks": [{"id": 3}]}')
    registry = WebhookRegistry(blobs, "v1")
    with pytest.raises(CorruptBlobError, match="not a webhook list"):
        await registry.all()
    with pytest.raises(CorruptBlobError):
        await registry.add(hook(), limit=10)
    assert (await blobs.get(webhooks_key("v1"))).data.startswith(b'{"format": 1')


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_globally_routable_unicast_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
