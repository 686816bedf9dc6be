"""The path and query parameters of the REST API, with the constraints the schema
states for them.

Patterns and bounds come from the domain parsers that judge the values (one source
for both). They are stated in the OpenAPI schema, not enforced by FastAPI: the
parser checks more than a pattern can (the address version and checksum, a time
within the chain's lifetime) and answers 400 with the code and message of what is
wrong, e.g. ``invalid_address`` rather than a generic 422. The ``format`` names
say what a pattern cannot:

- ``stacks-principal``: a c32check address (SP..., SM..., ST..., SN...) with a
  valid checksum, or a contract principal ``ADDR.name``;
- ``stacks-token-id``: ``stx``, a contract id or an asset identifier ``ADDR.name::asset``;
- ``chain-time``: ISO 8601 or unix seconds, from the chain's genesis
  (2021-01-14T17:28:24Z) to before 2200.
"""

from __future__ import annotations

from typing import Any

from fastapi import Path, Query

from balances.domain.principals import PRINCIPAL_PATTERN
from balances.domain.time import GRANULARITY_PATTERN, PERIOD_PATTERN, TIME_PATTERN
from balances.domain.tokens import TOKEN_ID_PATTERN
from balances.service.core import MAX_BLOCK_HEIGHT

PRINCIPAL_FORMAT = "stacks-principal"
TOKEN_ID_FORMAT = "stacks-token-id"
TIME_FORMAT = "chain-time"


def _stated(
    pattern: str, form: str | None = None, examples: list[str] | None = None
) -> dict[str, Any]:
    stated: dict[str, Any] = {"pattern": pattern}
    if form is not None:
        stated["format"] = form
    if examples:
        stated["examples"] = examples
    return stated


_EXAMPLE_ADDRESS = "SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7"
#: The schema of a principal and of a token id (for body fields too).
PRINCIPAL_SCHEMA = _stated(PRINCIPAL_PATTERN, PRINCIPAL_FORMAT, [_EXAMPLE_ADDRESS])
TOKEN_ID_SCHEMA = _stated(
    TOKEN_ID_PATTERN,
    TOKEN_ID_FORMAT,
    ["stx", "SP3NE50GEXFG9SZGTT51P40X2CKYSZ5CC4ZTZ7A2G.welshcorgicoin-token::welshcorgicoin"],
)


ADDRESS = Path(
    description="a Stacks address (SP...) or contract principal (SP....name)",
    json_schema_extra=PRINCIPAL_SCHEMA,
)
TOKEN_HELP = "stx, a contract id SP....name, or an asset identifier SP....name::asset"
TOKEN = Path(
    alias="tokenId",
    description=TOKEN_HELP,
    json_schema_extra=TOKEN_ID_SCHEMA,
)
ONLY_TOKEN = Query(description="only this token", json_schema_extra=TOKEN_ID_SCHEMA)
PERIOD = Query(
    description="1h, 24h (1d), 7d, 30d, 90d, 1y or all; ignored with from/to",
    json_schema_extra=_stated(PERIOD_PATTERN),
)
GRANULARITY = Query(
    description="5m, hour, day, week, month or auto", json_schema_extra=_stated(GRANULARITY_PATTERN)
)
_TIME = _stated(TIME_PATTERN, TIME_FORMAT, ["2023-05-01T00:00:00Z", "1682899200"])
_LATER = _stated(TIME_PATTERN, TIME_FORMAT, ["2023-06-01T00:00:00Z", "1685577600"])
FROM = Query(
    alias="from",
    description="explicit range start: ISO 8601 or unix seconds",
    json_schema_extra=_TIME,
)
TO = Query(
    alias="to", description="explicit range end: ISO 8601 or unix seconds", json_schema_extra=_LATER
)
AT = Query(description="a time: ISO 8601 or unix seconds", json_schema_extra=_TIME)
SINCE = Query(description="not before: ISO 8601 or unix seconds", json_schema_extra=_TIME)
HEIGHT = Query(ge=0, description="a block height", json_schema_extra={"maximum": MAX_BLOCK_HEIGHT})
