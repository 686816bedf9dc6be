"""The web dashboard at ``/``: an address's balances, how fresh they are, and charts.

Server-rendered HTML (Jinja2 with autoescape on, so whatever a user types or a token
contract calls itself is escaped) of the view :mod:`balances.api.dashboard_view`
builds, with inline SVG charts: the page is complete without JavaScript and needs
nothing from outside the app (one CSS file under ``/static``). Where the service keeps
a change feed, ``static/live.js`` follows the address's stream and updates the rows
as changes are applied (the only script, served by the app itself). A failure is a
friendly message on the page, with the status the REST error table gives it (400
for a bad address), never a stack trace.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined

from balances.api.dashboard_view import Form, build_view, too_many_buckets
from balances.api.deps import Service
from balances.api.errors import describe
from balances.domain import DEFAULT_PERIOD, Granularity, Period
from balances.errors import BalancesError
from balances.service.balances import BalanceService

log = logging.getLogger("balances.api.dashboard")

STATIC_PATH = "/static"
STATIC_NAME = "dashboard-static"
STREAM_ROUTE = "stream_balances"
PERIODS = ("24h", "7d", "30d", "90d", "1y", "all")
GRANULARITIES = ("auto", "hour", "day", "week")
#: Inputs are echoed back into the form; nothing valid is longer than this.
MAX_INPUT = 200
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    """The dashboard's CSS, served from the installed package (works in a wheel)."""
    return StaticFiles(packages=[("balances.api", "static")])


@functools.cache
def templates() -> Jinja2Templates:
    """Built on first use, not at import: nothing runs at import time (DESIGN.md 3)."""
    env = Environment(
        loader=PackageLoader("balances.api", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


@dataclass(frozen=True, slots=True)
class Switch:
    """A period or granularity link; ``href`` None when it would draw too many buckets."""

    label: str
    href: str | None
    active: bool


# --- the route ---------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, name="dashboard")
async def dashboard(
    request: Request,
    svc: Service,
    address: str = "",
    period: str = DEFAULT_PERIOD,
    granularity: str = "auto",
) -> HTMLResponse:
    """The form; with an address, its balances and charts (or why they are missing)."""
    form = Form(
        _bounded(address), _bounded(period) or DEFAULT_PERIOD, _bounded(granularity) or "auto"
    )
    context: dict[str, Any] = {"form": form, "view": None, "error": None, "tracked": []}
    status = 200
    if form.address:
        try:
            context["view"] = await build_view(svc, form)
        except Exception as error:  # shown on the page, never raised (module docstring)
            status, context["error"] = _failure(request, error)
    else:
        context["tracked"] = await _tracked(svc)
    context.update(_navigation(request, form))
    context.update(_live(request, svc, form.address if context["view"] else None))
    return _render(request, context, status)


def _bounded(text: str) -> str:
    return text.strip()[:MAX_INPUT]


def _failure(request: Request, error: Exception) -> tuple[int, str]:
    """(status, message) as the REST API would answer; unexpected errors are logged."""
    status, _, message = describe(error)
    if status >= 500:
        log.error("GET %s failed: %s", request.url.path, error, exc_info=error)
    return status, message


async def _tracked(svc: BalanceService) -> list[str]:
    """Tracked addresses as shortcuts on the empty form (a store outage hides them)."""
    try:
        return [entry.address for entry in await svc.tracked_addresses()][:20]
    except BalancesError:
        return []


def _render(request: Request, context: dict[str, Any], status: int) -> HTMLResponse:
    response = templates().TemplateResponse(request, "dashboard.html", context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- navigation ----------------------------------------------------------------------------


def _navigation(request: Request, form: Form) -> dict[str, Any]:
    home = request.url_for("dashboard").path
    period, granularity = _normalised(form)
    return {
        "home": home,
        "css_href": request.url_for(STATIC_NAME, path="dashboard.css").path,
        "docs_href": request.app.docs_url,
        "period_links": [
            _switch(home, form.address, p, form.granularity, p, p == period) for p in PERIODS
        ],
        "granularity_links": [
            _switch(home, form.address, form.period, g, g, g == granularity) for g in GRANULARITIES
        ],
    }


def _live(request: Request, svc: BalanceService, address: str | None) -> dict[str, Any]:
    """The live rows' stream and script, where there is a table and a change feed."""
    if address is None or svc.feed is None:
        return {"stream_href": None, "live_js_href": None}
    stream = request.url_for(STREAM_ROUTE).path
    return {
        "stream_href": f"{stream}?{urlencode({'addresses': address})}",
        "live_js_href": request.url_for(STATIC_NAME, path="live.js").path,
    }


def _switch(
    home: str, address: str, period: str, granularity: str, label: str, active: bool
) -> Switch:
    """A link to the same address at another period or granularity."""
    if too_many_buckets(period, granularity):
        return Switch(label, None, active)
    query = urlencode({"address": address, "period": period, "granularity": granularity})
    return Switch(label, f"{home}?{query}", active)


def _normalised(form: Form) -> tuple[str | None, str | None]:
    """The canonical period and granularity names (``1d`` is ``24h``); None if invalid."""
    try:
        period = Period.parse(form.period).name
    except BalancesError:
        period = None
    try:
        return period, Granularity.parse(form.granularity).value
    except BalancesError:
        return period, None


__all__ = ["STATIC_NAME", "STATIC_PATH", "router", "static_files", "templates"]
