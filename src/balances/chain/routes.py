"""The API routes the client uses, as ``"METHOD /path/{param}"`` templates.

The same strings key the stand-in's request counter, so tests and benchmarks can
hold request budgets per route.
"""

from __future__ import annotations

MAINNET_API_URL = "https://api.hiro.so"
#: The most the API returns per FT page (v2 and v3).
PAGE_SIZE = 200
#: A listing longer than this many pages is treated as a broken cursor chain.
MAX_PAGES = 5000
#: Balance API versions, newest first: the order of fallback.
VERSIONS = ("v3", "v2", "v1")

STX_ROUTES = (
    "GET /extended/v3/principals/{principal}/balances/stx",
    "GET /extended/v2/addresses/{principal}/balances/stx",
    "GET /extended/v1/address/{principal}/stx",
)
FT_LIST_V3 = "GET /extended/v3/principals/{principal}/balances/ft"
FT_LIST_V2 = "GET /extended/v2/addresses/{principal}/balances/ft"
FT_ONE_V3 = "GET /extended/v3/principals/{principal}/balances/ft/{asset_identifier}"
FT_ONE_V2 = "GET /extended/v2/addresses/{principal}/balances/ft/{token}"
BALANCES_V1 = "GET /extended/v1/address/{principal}/balances"
CALL_READ = "POST /v2/contracts/call-read/{deployer_address}/{contract_name}/{function_name}"
INTERFACE = "GET /v2/contracts/interface/{deployer_address}/{contract_name}"
#: The node's account (STX unlocked + locked), readable as of a block with ``tip``.
ACCOUNT = "GET /v2/accounts/{principal}"
LATEST_BLOCK = "GET /extended/v2/blocks/latest"
BLOCK_BY_TIME = "GET /extended/v2/blocks/by-block-time/{timestamp}"
BLOCK = "GET /extended/v2/blocks/{height_or_hash}"
#: History (v3): a principal's transactions, their balance changes, a tx's events.
PRINCIPAL_TXS = "GET /extended/v3/principals/{principal}/transactions"
BALANCE_CHANGES = "GET /extended/v3/principals/{principal}/balance-changes"
TX_EVENTS = "GET /extended/v3/transactions/{tx_id}/events"
#: Following blocks: a block's transactions (v3 summaries) and transactions with events (v1).
BLOCK_TXS = "GET /extended/v3/blocks/{height_or_hash}/transactions"
TX_MULTIPLE = "GET /extended/v1/tx/multiple"

#: Routes that read one principal's balances (what a refresh costs).
BALANCE_ROUTES = frozenset(
    {*STX_ROUTES, FT_LIST_V3, FT_LIST_V2, FT_ONE_V3, FT_ONE_V2, BALANCES_V1, CALL_READ, ACCOUNT}
)
