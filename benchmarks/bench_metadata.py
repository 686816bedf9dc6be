"""A first read: an address holding 250 native tokens and one map-based token.

Counted at the stand-in (served on loopback): the chain requests before the balance
answer, and the requests until every token's metadata is known. Three ways, in the
same run:

- *today's path* (the baseline): the reader has no Token Metadata API, so the
  metadata are the SIP-010 getters (decimals and symbol) of every token, and the
  answer used to wait on all of them;
- *list route*: the stand-in lists about as many tokens as the address holds, so
  paging the Token Metadata API's list (60 a page) is cheapest;
- *per token*: the API lists 20,000 tokens, so one request per token is cheaper
  than the 334 pages (the list's first page, read to learn that, is counted).

The minutes each takes at the keyless rate of 25 requests a minute follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from balances.blobs import MemoryBlobStore
from balances.chain.client import StacksClient
from balances.chain.networks import ANONYMOUS_RATE_LIMIT
from balances.chain.token_metadata import FT_METADATA, FT_METADATA_LIST
from balances.config import BalanceServiceConfig
from balances.domain import Balance
from balances.service.balances import BalanceService
from balances.testing import FakeChain, fake_address, serve_fake_chain
from benchmarks.harness import Result

HOLDER = fake_address("bench-metadata-holder")
DEPLOYER = fake_address("bench-metadata-deployer")
MAP_TOKEN = f"{DEPLOYER}.bench-credit-v1"
HELD = 250
LISTED_LARGE = 20_000
GETTERS = ("get-decimals", "get-symbol", "get-name", "get-token-uri", "get-total-supply")


class WithoutMetadataApi:
    """The chain reader as it was: no Token Metadata API, SIP-010 getters only."""

    def __init__(self, client: StacksClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name in ("get_ft_metadata", "list_ft_metadata"):
            raise AttributeError(name)
        return getattr(self._client, name)


def _chain(listed_extra: int) -> FakeChain:
    chain = FakeChain()
    for index in range(HELD):
        contract = f"{DEPLOYER}.held-{index}"
        chain.add_native_token(contract, f"held{index}", decimals=index % 9, symbol=f"H{index}")
        chain.mint(contract, HOLDER, 10**6 + index)
    chain.add_map_token(MAP_TOKEN, decimals=6, symbol="CRD")
    chain.deposit(MAP_TOKEN, HOLDER, 42)
    for index in range(listed_extra):
        chain.add_native_token(f"{DEPLOYER}.listed-{index}", f"listed{index}")
    return chain


@dataclass(frozen=True, slots=True)
class ColdRead:
    before_answer: int
    metadata: int
    amounts_right: bool


def _metadata_requests(chain: FakeChain, before: dict[str, int]) -> int:
    spent = {route: n - before.get(route, 0) for route, n in chain.requests.items()}
    return sum(n for route, n in spent.items() if route in (FT_METADATA, FT_METADATA_LIST))


class GetterCount:
    """An httpx response hook counting SIP-010 getter call-reads."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, response: httpx.Response) -> None:
        self.count += response.request.url.path.rsplit("/", 1)[-1] in GETTERS


def _service(client: StacksClient, metadata_api: bool) -> BalanceService:
    reader: Any = client if metadata_api else WithoutMetadataApi(client)
    config = BalanceServiceConfig(
        networks={"mainnet": {"map_tokens": [MAP_TOKEN]}}, store_url="memory://"
    )
    return BalanceService(config, blobs=MemoryBlobStore(), chain=reader)


def _amounts_right(answer: list[Balance]) -> bool:
    shown = {b.token_id.split("::")[0]: b.amount for b in answer if b.token_id != "stx"}
    held = {f"{DEPLOYER}.held-{i}": 10**6 + i for i in range(HELD)}
    return shown == {**held, MAP_TOKEN: 42}


async def _cold_read(listed_extra: int, *, metadata_api: bool) -> ColdRead:
    chain = _chain(listed_extra)
    getters = GetterCount()
    hooks: dict[str, list[Any]] = {"response": [getters]}
    async with (
        serve_fake_chain(chain) as stand_in,
        httpx.AsyncClient(timeout=15, event_hooks=hooks) as http,
    ):
        service = _service(StacksClient(http, stand_in.url), metadata_api)
        try:
            chain.reset_requests()
            answer = await service.refresh_address_balances(HOLDER)
            before = dict(chain.requests)
            await service.metadata_settled()
            settled = await service.get_all_balances(HOLDER)
        finally:
            await service.close()
    known = all(b.decimals is not None for b in settled)
    metadata = _metadata_requests(chain, before) + getters.count
    return ColdRead(sum(before.values()), metadata, _amounts_right(answer) and known)


def _minutes(requests: int) -> float:
    return requests / ANONYMOUS_RATE_LIMIT


async def run(quick: bool) -> list[Result]:
    today = await _cold_read(0, metadata_api=False)
    listed = await _cold_read(5, metadata_api=True)
    per_token = await _cold_read(2_000 if quick else LISTED_LARGE, metadata_api=True)
    old_answer = today.before_answer + today.metadata  # it used to wait on all of them
    note = f"{HELD} native + 1 map token; amounts and metadata right: "
    return [
        Result(
            "cold read: requests before the answer",
            listed.before_answer,
            "req",
            target=6,
            note=note + str(listed.amounts_right and per_token.amounts_right),
        ),
        Result(
            "cold read: requests before the answer, vs today's path",
            listed.before_answer,
            "req",
            baseline=old_answer,
            baseline_name="refresh + SIP-010 getters of every token",
        ),
        Result(
            "cold read: minutes to the answer at 25/min",
            _minutes(listed.before_answer),
            "min",
            baseline=_minutes(old_answer),
            baseline_name="today's path",
        ),
        Result(
            "metadata requests until all known, list route",
            listed.metadata,
            "req",
            target=HELD / 10,
            note=f"{HELD + 6} tokens listed, 60 a page",
        ),
        Result(
            "metadata requests until all known, one per token",
            per_token.metadata,
            "req",
            target=HELD,
            note=f"{LISTED_LARGE if not quick else 2_000:,} listed: the list's first page tells",
        ),
        Result(
            "metadata requests until all known, today's path",
            today.metadata,
            "req",
            note=f"SIP-010 getters, amounts and metadata right: {today.amounts_right}",
        ),
    ]
