"""Who may grow the tracked set by reading: every keyed request; an anonymous one
only within the operator's budget (off by default).

A read of an untracked address is answered either way (read through, cached); it
is just not kept fresh unless tracking is allowed. The budget counts the addresses
(and map tokens) each client adds in a sliding minute, and stops anonymous
additions once the tracked set holds ``anonymous_track_max`` addresses. Set per
request on :data:`balances.service.read_tracking`.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable

from starlette.requests import HTTPConnection

from balances.api.deps import API_KEY_HEADER, service, settings
from balances.service.core import read_tracking

WINDOW_SECONDS = 60.0
#: Clients remembered at once (the oldest windows are forgotten beyond it).
MAX_CLIENTS = 10_000


class AnonymousBudget:
    """Tracked-set additions allowed to anonymous clients, per client and minute."""

    def __init__(
        self, per_minute: int, max_tracked: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.max_tracked = max_tracked
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}

    def allow(self, client: str, tracked: int) -> bool:
        """Take one addition from ``client``'s minute, if it has one left."""
        if self.per_minute <= 0 or tracked >= self.max_tracked:
            return False
        now = self._clock()
        window = self._windows.pop(client, None) or deque()
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        self._windows[client] = window  # most recently used last
        if len(self._windows) > MAX_CLIENTS:
            del self._windows[next(iter(self._windows))]
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        return True


def _keyed(request: HTTPConnection) -> bool:
    configured = settings(request).api.key
    given = request.headers.get(API_KEY_HEADER)
    if configured is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), configured.get_secret_value().encode())


async def read_tracking_policy(request: HTTPConnection) -> None:
    """An app-wide dependency: sets who may track by reading, for this request (an
    HTTP request, or a WebSocket: GraphQL subscriptions)."""
    if _keyed(request):
        read_tracking.set(None)  # as the Python API: config.track_on_read decides
        return
    budget: AnonymousBudget = request.app.state.anonymous_budget
    client = request.client.host if request.client is not None else ""
    svc = service(request)

    async def gate() -> bool:
        return budget.allow(client, len(await svc.tracked.entries()))

    read_tracking.set(gate)
