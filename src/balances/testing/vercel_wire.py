"""What ``@vercel/blob`` 2.8.0 sends, as the Vercel Blob stand-in checks it: the
headers of each operation, the query string byte for byte, the put options; and
the stand-in's records (stored blobs, injected faults, requests received)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

API_PREFIX = "/api/blob"
COMMON_HEADERS = frozenset({"authorization", "x-api-version", "x-vercel-blob-store-id"}) | {
    "x-api-blob-request-id",
    "x-api-blob-request-attempt",
}
PUT_HEADERS = frozenset({"x-vercel-blob-access", "x-content-type", "x-add-random-suffix"}) | {
    "x-allow-overwrite",
    "x-cache-control-max-age",
    "x-if-match",
}
# Query parameters each call may carry, in the order the SDK writes them.
_QUERY_ORDER: dict[str, tuple[str, ...]] = {
    "put": ("pathname",),
    "head": ("url",),
    "list": ("limit", "prefix", "cursor", "mode"),
    "delete": (),
}
FORM_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*-._")
VIOLATION = "stand-in: not what @vercel/blob sends: "
EXISTS = (
    "This blob already exists, use `allowOverwrite: true` if you want to overwrite it. "
    "Or `addRandomSuffix: true` to generate a unique filename."
)


class RefusedError(Exception):
    """A request the stand-in refuses; becomes a JSON error answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def violation(message: str) -> RefusedError:
    """A request that is not what the SDK sends: 400, recorded as a violation."""
    return RefusedError(400, "bad_request", VIOLATION + message)


@dataclass
class StoredBlob:
    data: bytes
    etag: str
    content_type: str
    uploaded_at: datetime
    cache_max_age: int


@dataclass
class Fault:
    """Answer the next ``times`` requests of ``ops`` with an error."""

    status: int
    code: str
    ops: frozenset[str]
    times: int = 1
    retry_after: str | None = None
    after_commit: bool = False  # puts only: apply the write, then fail


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received, with the status it got.

    ``violation`` says why the request was refused as not matching the SDK's format.
    """

    op: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    violation: str | None


@dataclass
class StandInState:
    store_id: str
    token: str
    access: str
    cdn_cache: bool
    blobs: dict[str, StoredBlob] = field(default_factory=dict)
    cdn: dict[str, StoredBlob] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def form_value(value: str) -> str:
    """URLSearchParams' encoding, written independently of the client's."""
    encoded = value.encode("utf-8")
    return "".join(chr(b) if b in FORM_SAFE else f"%{b:02X}" for b in encoded).replace("%20", "+")


def op_of(method: str, path: str, raw_query: str, access: str) -> str:
    routes = {("PUT", API_PREFIX + "/"): "put", ("POST", API_PREFIX + "/delete"): "delete"}
    if (method, path) in routes:
        return routes[(method, path)]
    if method == "GET" and path == API_PREFIX:
        return "head" if raw_query.startswith("url=") else "list"
    if method == "GET" and path.startswith(f"/{access}/"):
        return "get"
    raise violation(f"no such route {method} {path}")


def check_query(op: str, raw: str) -> dict[str, str]:
    pairs = parse_qsl(raw, keep_blank_values=True)
    names = [name for name, _ in pairs]
    allowed = _QUERY_ORDER[op]
    positions = [allowed.index(name) if name in allowed else -1 for name in names]
    if -1 in positions or positions != sorted(set(positions)):
        raise violation(f"query {names} is not what the SDK sends")
    if "&".join(f"{name}={form_value(value)}" for name, value in pairs) != raw:
        raise violation(f"query {raw!r} is not URLSearchParams")
    return dict(pairs)


def check_headers(state: StandInState, op: str, headers: dict[str, str]) -> None:
    if not headers.get("authorization", "").startswith("Bearer vercel_blob_rw_"):
        raise violation("authorization must be 'Bearer <read-write token>'")
    expected = {"x-api-version": "12", "x-vercel-blob-store-id": state.store_id}
    for name, value in expected.items():
        if headers.get(name) != value:
            raise violation(f"header {name} must be {value!r}")
    if headers["authorization"] != f"Bearer {state.token}":
        raise RefusedError(403, "forbidden", "Access denied, please provide a valid token")
    request_id = re.escape(state.store_id) + r":\d{13}:[0-9a-f]{1,16}"
    if not re.fullmatch(request_id, headers.get("x-api-blob-request-id", "")):
        raise violation("bad x-api-blob-request-id")
    if not re.fullmatch(r"0|[1-9]\d*", headers.get("x-api-blob-request-attempt", "")):
        raise violation("bad x-api-blob-request-attempt")
    allowed = COMMON_HEADERS | PUT_HEADERS if op == "put" else COMMON_HEADERS
    extra = [name for name in headers if name.startswith("x-") and name not in allowed]
    if extra:
        raise violation(f"unexpected headers {extra}")
    content_type = headers.get("content-type")
    wanted = {"put": (None, "text/plain;charset=UTF-8"), "delete": ("application/json",)}
    if content_type not in wanted.get(op, (None,)):
        raise violation(f"content-type {content_type!r} for {op}")


def check_put_options(state: StandInState, headers: dict[str, str]) -> None:
    if headers.get("x-vercel-blob-access") != state.access:
        raise violation(f"this store's access is {state.access}")
    for name in ("x-add-random-suffix", "x-allow-overwrite"):
        if headers.get(name, "0") not in ("0", "1"):
            raise violation(f"{name} must be 0 or 1")
    if headers.get("x-add-random-suffix") == "1":
        raise violation("random suffixes are not modelled")
    age = headers.get("x-cache-control-max-age", "2592000")
    if not age.isdigit() or int(age) < 60:
        raise violation("cacheControlMaxAge must be >= 60")
    if headers.get("x-if-match") == "":
        raise violation("empty x-if-match")
