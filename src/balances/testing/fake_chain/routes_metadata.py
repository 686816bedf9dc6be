"""The Token Metadata API's fungible-token routes, in its shapes (see
:mod:`balances.chain.token_metadata` for the sources).

- ``GET /metadata/v1/ft/{principal}``: one token's ``name``, ``symbol``,
  ``decimals``, ``total_supply`` (a decimal string), ``token_uri``, ``description``,
  images, ``tx_id`` and ``sender_address``; 404 ``{"error": "Token not found"}`` for
  a contract it does not know (``chain.metadata_unknown``, or no such token).
- ``GET /metadata/v1/ft?offset=&limit=``: ``{limit, offset, total, results}``, each
  result the fields above plus ``contract_principal``; ``limit`` is 1..60 (400
  beyond), in the order the tokens were deployed. A contract in
  ``chain.metadata_undecided`` is listed (and answered) without its decimals.

They go through the same pipeline as every route: counted, delayed, faulted.
"""

from __future__ import annotations

import hashlib
from typing import Any

from balances.testing.fake_chain.http import Ctx, HttpError, Reply, query_limit, query_offset
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.records import TokenInfo

LIST_LIMIT = 60
LIST_DEFAULT = 20


def _known(ctx: Ctx) -> list[TokenInfo]:
    unknown = ctx.chain.metadata_unknown
    return [info for info in ctx.chain.tokens if info.contract_id not in unknown]


def _fields(ctx: Ctx, info: TokenInfo) -> dict[str, Any]:
    deployer = info.contract_id.split(".", 1)[0]
    digest = hashlib.sha256(info.contract_id.encode()).hexdigest()
    undecided = info.contract_id in ctx.chain.metadata_undecided
    return {
        "name": info.name,
        "symbol": info.symbol,
        "decimals": None if undecided else info.decimals,
        "total_supply": str(ctx.chain.total_supply(info.base_token or info.contract_id)),
        "token_uri": info.token_uri,
        "description": None,
        "image_uri": None,
        "image_thumbnail_uri": None,
        "image_canonical_uri": None,
        "tx_id": f"0x{digest}",
        "sender_address": deployer,
    }


def ft_metadata(ctx: Ctx) -> Reply:
    principal = ctx.params["principal"]
    for info in _known(ctx):
        if info.contract_id == principal:
            return Reply(body=_fields(ctx, info))
    raise HttpError(Reply(404, {"error": "Token not found"}))


def ft_metadata_list(ctx: Ctx) -> Reply:
    limit = query_limit(ctx, LIST_DEFAULT, LIST_LIMIT)
    offset = query_offset(ctx)
    known = _known(ctx)
    rows = [
        {**_fields(ctx, info), "contract_principal": info.contract_id}
        for info in known[offset : offset + limit]
    ]
    return Reply(body={"limit": limit, "offset": offset, "total": len(known), "results": rows})


ROUTES = [
    RouteSpec("GET", "/metadata/v1/ft", ft_metadata_list),
    RouteSpec("GET", "/metadata/v1/ft/{principal}", ft_metadata),
]
