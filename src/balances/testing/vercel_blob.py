"""A loopback stand-in for the Vercel Blob API, strict about the SDK's wire format.

    with VercelBlobStandIn(access="private") as server:
        store = VercelBlobStore(**server.store_options())

Blobs live in memory; uvicorn serves put, head, list, delete and reads on 127.0.0.1
in a background thread. A request that differs from what ``@vercel/blob`` 2.8.0
sends (``shared/reference/vercel-blob/``: headers and values, the query string
byte for byte as ``URLSearchParams`` writes it, JSON as ``JSON.stringify`` writes
it) is refused with 400 and recorded as a violation, so a drifting client fails.

Modelled: ``x-allow-overwrite`` (a create over an existing pathname gets 400 "This
blob already exists", as from the service), ``x-if-match`` (412), cursor paging, a
CDN that serves the first copy it read until bypassed (``?cache=0``, private
stores), injected faults (429 + ``retry-after``, 503, failing after applying a
put). Not modelled: random suffixes, folded listings, copy, rename, multipart.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from balances.testing.vercel_wire import (
    API_PREFIX,
    EXISTS,
    VIOLATION,
    Fault,
    RecordedRequest,
    RefusedError,
    StandInState,
    StoredBlob,
    check_headers,
    check_put_options,
    check_query,
    op_of,
    violation,
)


def _take_fault(state: StandInState, op: str) -> Fault | None:
    for fault in state.faults:
        if op in fault.ops and fault.times > 0:
            fault.times -= 1
            return fault
    return None


def _fault_response(fault: Fault) -> Response:
    headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else None
    return _error(fault.status, fault.code, f"stand-in: injected {fault.code}", headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def _pathname_of(state: StandInState, url_or_pathname: str) -> str:
    if url_or_pathname.startswith(("http://", "https://")):
        path = urlsplit(url_or_pathname).path
        return unquote(path.removeprefix(f"/{state.access}/"))
    return url_or_pathname


def _describe(
    request: Request, state: StandInState, pathname: str, blob: StoredBlob
) -> dict[str, Any]:
    url = f"{str(request.base_url).rstrip('/')}/{state.access}/{quote(pathname)}"
    return {
        "url": url,
        "downloadUrl": url + "?download=1",
        "pathname": pathname,
        "contentType": blob.content_type,
        "contentDisposition": f'inline; filename="{pathname.rsplit("/", 1)[-1]}"',
        "etag": blob.etag,
        "size": len(blob.data),
        "uploadedAt": blob.uploaded_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "cacheControl": f"public, max-age={blob.cache_max_age}",
    }


def _put(request: Request, state: StandInState, query: dict[str, str], body: bytes) -> Response:
    headers = request.headers
    check_put_options(state, dict(headers))
    pathname = query.get("pathname", "")
    if not pathname or len(pathname) > 950 or "//" in pathname:
        raise violation("invalid pathname")
    current = state.blobs.get(pathname)
    if_match = headers.get("x-if-match")
    if if_match is not None and (current is None or current.etag != if_match):
        raise RefusedError(412, "precondition_failed", "The ETag does not match (x-if-match)")
    if current is not None and headers.get("x-allow-overwrite") != "1":
        raise RefusedError(400, "bad_request", EXISTS)
    blob = StoredBlob(
        data=body,
        etag=f'"{uuid.uuid4().hex}"',
        content_type=headers.get("x-content-type", "application/octet-stream"),
        uploaded_at=datetime.now(UTC),
        cache_max_age=int(headers.get("x-cache-control-max-age", "2592000")),
    )
    state.blobs[pathname] = blob
    description = _describe(request, state, pathname, blob)
    keep = ("url", "downloadUrl", "pathname", "contentType", "contentDisposition", "etag")
    return JSONResponse({name: description[name] for name in keep})


def _head(request: Request, state: StandInState, query: dict[str, str]) -> Response:
    pathname = _pathname_of(state, query["url"])
    blob = state.blobs.get(pathname)
    if blob is None:
        raise RefusedError(404, "not_found", "The requested blob does not exist")
    return JSONResponse(_describe(request, state, pathname, blob))


def _list(request: Request, state: StandInState, query: dict[str, str]) -> Response:
    if query.get("mode", "expanded") != "expanded":
        raise violation("folded listings are not modelled")
    limit = int(query.get("limit", "1000")) if query.get("limit", "1").isdigit() else 0
    if not 1 <= limit <= 1000:
        raise RefusedError(400, "bad_request", "limit must be between 1 and 1000")
    prefix = query.get("prefix", "")
    try:
        after = base64.urlsafe_b64decode(query["cursor"]).decode() if "cursor" in query else None
    except ValueError:
        raise RefusedError(400, "bad_request", "invalid cursor") from None
    names = sorted(name for name in state.blobs if name.startswith(prefix))
    names = [name for name in names if after is None or name > after]
    page, has_more = names[:limit], len(names) > limit
    keep = ("url", "downloadUrl", "pathname", "size", "uploadedAt", "etag")
    blobs = [_describe(request, state, name, state.blobs[name]) for name in page]
    body: dict[str, Any] = {"blobs": [{k: b[k] for k in keep} for b in blobs], "hasMore": has_more}
    if has_more:
        body["cursor"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
    return JSONResponse(body)


def _delete(state: StandInState, body: bytes) -> Response:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise violation("body is not JSON") from None
    canonical = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode()
    urls = parsed.get("urls") if isinstance(parsed, dict) and len(parsed) == 1 else None
    if not isinstance(urls, list) or not urls or canonical != body:
        raise violation("body must be JSON.stringify({urls: [...]})")
    if not all(isinstance(url, str) and url for url in urls):
        raise violation("urls must be non-empty strings")
    for url in urls:
        state.blobs.pop(_pathname_of(state, url), None)
    return JSONResponse({})


def _read(request: Request, state: StandInState, path: str) -> Response:
    token_ok = request.headers.get("authorization") == f"Bearer {state.token}"
    if state.access == "private" and not token_ok:
        raise RefusedError(403, "forbidden", "private blobs need the store's token")
    pathname = unquote(path.removeprefix(f"/{state.access}/"))
    bypass = state.access == "private" and request.query_params.get("cache") == "0"
    blob = state.blobs.get(pathname)
    if state.cdn_cache and not bypass:
        blob = state.cdn.setdefault(pathname, blob) if blob else state.cdn.get(pathname)
    if blob is None:
        return Response("Not Found", 404, media_type="text/plain")
    headers = {
        "etag": blob.etag,
        "last-modified": format_datetime(blob.uploaded_at, usegmt=True),
        "cache-control": f"public, max-age={blob.cache_max_age}",
    }
    return Response(blob.data, 200, headers=headers, media_type=blob.content_type)


async def _handle(request: Request) -> Response:
    state: StandInState = request.app.state.vercel
    raw_query = request.scope["query_string"].decode("latin-1")
    body = await request.body()
    headers = dict(request.headers)
    op, violation = "?", None
    try:
        op = op_of(request.method, request.url.path, raw_query, state.access)
        with state.lock:
            response = _serve(request, state, op, raw_query, headers, body)
    except RefusedError as rejection:
        if rejection.message.startswith(VIOLATION):
            violation = rejection.message.removeprefix(VIOLATION)
        response = _error(rejection.status, rejection.code, rejection.message)
    seen = (op, request.method, request.url.path, raw_query, headers, body)
    entry = RecordedRequest(*seen, response.status_code, violation)
    with state.lock:
        state.requests.append(entry)
    return response


def _serve(
    request: Request, state: StandInState, op: str, raw: str, headers: dict[str, str], body: bytes
) -> Response:
    query: dict[str, str] = {}
    if op != "get":
        check_headers(state, op, headers)
        query = check_query(op, raw)
        if op in ("head", "list") and body:
            raise violation(f"{op} has no body")
    fault = _take_fault(state, op)
    if fault is not None and not fault.after_commit:
        return _fault_response(fault)
    if op == "put":
        response = _put(request, state, query, body)
    elif op == "head":
        response = _head(request, state, query)
    elif op == "list":
        response = _list(request, state, query)
    elif op == "delete":
        response = _delete(state, body)
    else:
        response = _read(request, state, request.scope["raw_path"].decode("ascii"))
    return _fault_response(fault) if fault is not None else response


def create_app(state: StandInState) -> Starlette:
    """The ASGI app; one catch-all route so the path is checked to the last slash."""
    app = Starlette(routes=[Route("/{path:path}", _handle, methods=["GET", "PUT", "POST"])])
    app.state.vercel = state
    return app


class VercelBlobStandIn:
    """Run the stand-in on 127.0.0.1 (a free port) in a background thread."""

    def __init__(
        self, *, store_id: str = "teststore123", access: str = "public", cdn_cache: bool = True
    ) -> None:
        token = f"vercel_blob_rw_{store_id}_SECRETSECRET"
        self._state = StandInState(store_id, token, access, cdn_cache)
        self.app = create_app(self._state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def token(self) -> str:
        return self._state.token

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def read_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self._state.access}"

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for ``VercelBlobStore`` talking to this stand-in."""
        return {
            "token": self.token,
            "api_url": self.api_url,
            "read_url": self.read_url,
            "access": self._state.access,
        }

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def violations(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.violation is not None]

    def inject_fault(
        self,
        status: int,
        code: str,
        *,
        ops: tuple[str, ...] = ("put", "head", "list", "delete", "get"),
        times: int = 1,
        retry_after: str | None = None,
        after_commit: bool = False,
    ) -> None:
        """Answer the next ``times`` requests of ``ops`` with ``status`` / ``code``."""
        fault = Fault(status, code, frozenset(ops), times, retry_after, after_commit)
        with self._state.lock:
            self._state.faults.append(fault)

    def reset(self) -> None:
        """Forget blobs, the CDN cache, faults and recorded requests."""
        with self._state.lock:
            for collection in (self._state.blobs, self._state.cdn):
                collection.clear()
            self._state.faults.clear()
            self._state.requests.clear()

    def start(self, timeout: float = 30.0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Accepted sockets inherit it: without it every answer waits ~40 ms for the
        # client's delayed ACK (Nagle), which made each request cost 44 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))  # bound before serving: no race for the port
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not server.started:
            self.stop()
            raise RuntimeError("the Vercel Blob stand-in did not start")

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=30)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
