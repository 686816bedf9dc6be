"""The Hiro Token Metadata API: one request per token, or many tokens per page.

Sources used for these shapes (no spec of it is kept in shared/reference):

- docs.hiro.so, "Get fungible token metadata": ``GET /metadata/v1/ft/{principal}``
  answers ``name``, ``symbol``, ``decimals``, ``total_supply`` (a decimal string),
  ``token_uri``, ``description``, ``image_uri``, ``image_thumbnail_uri``,
  ``image_canonical_uri``, ``tx_id``, ``sender_address``; statuses 200, 404, 422.
- The Token Metadata API's OpenAPI document (v2.2.1, as republished by
  api-evangelist/hiro) and its generated TypeScript client
  (``@hirosystems/token-metadata-api-client``): ``GET /metadata/v1/ft`` takes
  ``offset`` (>= 0) and ``limit`` (1..60) and answers
  ``{limit, offset, total, results: [...]}``, each result the fields above (all
  optional but ``tx_id``, ``sender_address``) plus ``contract_principal``.

Not verified in a source we found: the exact 404 body (the stand-in answers
``{"error": "Token not found"}``); we rely on the status only. Every metadata
field is optional in the schema, so an answer without ``decimals`` counts as the
API not knowing the token (the SIP-010 getters are then asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from balances.chain import wire
from balances.chain.inputs import as_contract
from balances.chain.models import TokenMetadata
from balances.chain.sip010 import MAX_DECIMALS
from balances.chain.transport import ErrorFactory, Transport
from balances.errors import NotFoundError, ValidationError

FT_METADATA = "GET /metadata/v1/ft/{principal}"
FT_METADATA_LIST = "GET /metadata/v1/ft"
#: The most tokens the list route returns per page.
FT_LIST_LIMIT = 60
METADATA_ROUTES = frozenset({FT_METADATA, FT_METADATA_LIST})


class FtMetadataAnswer(wire.Wire):
    """One token's metadata as the API serves it (only the fields we keep)."""

    name: str | None = None
    symbol: str | None = None
    decimals: int | None = None
    total_supply: wire.Amount | None = None
    token_uri: str | None = None
    image_uri: str | None = None


class FtMetadataRow(FtMetadataAnswer):
    contract_principal: str


class FtMetadataPage(wire.Wire):
    limit: int
    offset: int
    total: int
    results: list[FtMetadataRow]


@dataclass(frozen=True, slots=True)
class MetadataPage:
    """One page of the list route: metadata by contract id, and the API's total."""

    offset: int
    total: int
    tokens: dict[str, TokenMetadata]
    #: Rows the API lists without decimals (it has not read the contract yet).
    undecided: tuple[str, ...]


def _metadata(contract: str, answer: FtMetadataAnswer) -> TokenMetadata | None:
    decimals = answer.decimals
    if decimals is None or not 0 <= decimals <= MAX_DECIMALS:
        return None  # not known to the API (or nonsense): the caller falls back
    return TokenMetadata(
        contract_id=contract,
        decimals=decimals,
        symbol=answer.symbol,
        name=answer.name,
        total_supply=answer.total_supply,
        token_uri=answer.token_uri,
    )


class TokenMetadataMixin:
    """Adds the Token Metadata API reads to :class:`~balances.chain.client.StacksClient`."""

    _transport: Transport

    async def get_ft_metadata(self, contract_id: str) -> TokenMetadata:
        """One token's metadata; NotFoundError when the API does not know it (404, or
        an answer without decimals), so the caller can ask the contract instead."""
        contract = str(as_contract(contract_id))
        request = self._transport.request(FT_METADATA, {"principal": contract})
        missing: dict[int, ErrorFactory] = {
            404: lambda message, _: NotFoundError(f"no metadata of {contract}: {message}"),
        }
        parse = partial(wire.parse, FtMetadataAnswer, route=FT_METADATA)
        found = _metadata(contract, await self._transport.fetch(request, parse, errors=missing))
        if found is None:
            raise NotFoundError(f"the metadata API has no decimals for {contract}")
        return found

    async def list_ft_metadata(self, offset: int = 0, limit: int = FT_LIST_LIMIT) -> MetadataPage:
        """One page of every fungible token the API knows, ``limit`` (1..60) from ``offset``."""
        if not 1 <= limit <= FT_LIST_LIMIT or offset < 0:
            raise ValidationError(f"limit is 1..{FT_LIST_LIMIT} and offset >= 0")
        request = self._transport.request(FT_METADATA_LIST, {}, {"limit": limit, "offset": offset})
        parse = partial(wire.parse, FtMetadataPage, route=FT_METADATA_LIST)
        page = await self._transport.fetch(request, parse)
        tokens: dict[str, TokenMetadata] = {}
        undecided = []
        for row in page.results:
            found = _metadata(row.contract_principal, row)
            if found is None:
                undecided.append(row.contract_principal)
            else:
                tokens[row.contract_principal] = found
        return MetadataPage(page.offset, page.total, tokens, tuple(undecided))
