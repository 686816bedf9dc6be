"""The domain: pure, immutable value types (DESIGN.md section 2 and 5)."""

from balances.domain.balances import METADATA_STATES, SOURCES, Balance, MetadataState, Source
from balances.domain.principals import (
    ADDRESS_VERSIONS,
    CONTRACT_NAME_RE,
    Network,
    Principal,
    validate_contract_name,
)
from balances.domain.time import (
    AUTO_MAX_POINTS,
    DEFAULT_PERIOD,
    BalancePoint,
    Granularity,
    Period,
    parse_chain_time,
    parse_timestamp,
)
from balances.domain.tokens import (
    MAX_AMOUNT,
    STX,
    TokenId,
    parse_amount,
    to_display_units,
)

__all__ = [
    "ADDRESS_VERSIONS",
    "AUTO_MAX_POINTS",
    "CONTRACT_NAME_RE",
    "DEFAULT_PERIOD",
    "MAX_AMOUNT",
    "METADATA_STATES",
    "SOURCES",
    "STX",
    "Balance",
    "BalancePoint",
    "Granularity",
    "MetadataState",
    "Network",
    "Period",
    "Principal",
    "Source",
    "TokenId",
    "parse_amount",
    "parse_chain_time",
    "parse_timestamp",
    "to_display_units",
    "validate_contract_name",
]
