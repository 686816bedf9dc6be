"""The stand-in's answers validate against the reference API specs.

Hiro API routes are checked against ``shared/reference/stacks-api/openapi.yaml``
(OpenAPI 3.0), node routes against ``shared/reference/stacks-node-rpc/
openapi.bundled.json`` (OpenAPI 3.1). Schemas are made strict first: an object
schema that lists ``properties`` and says nothing about others forbids them, so
a misspelt or invented field fails too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from balances.chain.clarity import principal_from_text, to_hex
from balances.testing import FakeChain, fake_address

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
HIRO_SPEC = REFERENCE / "stacks-api" / "openapi.yaml"
NODE_SPEC = REFERENCE / "stacks-node-rpc" / "openapi.bundled.json"

ALICE = fake_address("alice")
BOB = fake_address("bob")
DEPLOYER = fake_address("deployer")
TOKEN = f"{DEPLOYER}.charisma-token"
ASSET = f"{TOKEN}::charisma"
CREDIT = f"{DEPLOYER}.charisma-token-subnet-v1"
POOL = f"{DEPLOYER}.pool-v1"
V3 = "/extended/v3/principals/{principal}"


#: The node spec's bundler inlined clarity-type.schema.yaml, whose self-reference "#"
#: meant that file's root; in the bundle it must point at the ClarityType component.
_SELF_REFERENCE = "#/components/schemas/ClarityType"


def _strict(node: Any) -> Any:
    """OpenAPI schema -> JSON Schema 2020-12: nullable as a type list, "#" fixed, strict objects."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if out.pop("nullable", False) is True:
        if "type" in out:
            kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*kinds, "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    if out.get("$ref") == "#":
        out["$ref"] = _SELF_REFERENCE
    out = _merge_all_of(out)
    if "properties" in out and "additionalProperties" not in out and "allOf" not in out:
        out["additionalProperties"] = False
    return out


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """An ``allOf`` of plain object schemas as one object schema, so that closing it
    forbids what none of its parts names (closing each part would forbid the others')."""
    parts = node.get("allOf")
    if not parts or any("$ref" in p or "properties" not in p for p in parts):
        return node
    merged = {key: value for key, value in node.items() if key != "allOf"}
    merged["type"] = "object"
    merged["properties"] = {}
    merged["required"] = []
    for part in parts:
        merged["properties"].update(part["properties"])
        merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
    merged.pop("additionalProperties", None)
    return merged


class Spec:
    """One OpenAPI document, ready to validate response bodies by path template."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            pytest.fail(f"reference spec missing: {path} (the repo's ../shared must be present)")
        text = path.read_text(encoding="utf-8")
        raw = (
            json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=yaml.CSafeLoader)
        )
        self.document = _strict(raw)
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource("urn:spec", resource)

    def validate(self, template: str, method: str, status: int, body: Any) -> None:
        responses = self.document["paths"][template][method]["responses"]
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        assert key in responses, f"{method.upper()} {template} documents no {status} answer"
        pointer = "/".join(
            part.replace("~", "~0").replace("/", "~1")
            for part in (
                "paths",
                template,
                method,
                "responses",
                key,
                "content",
                "application/json",
                "schema",
            )
        )
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"urn:spec#/{pointer}"}, registry=self._registry
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{method.upper()} {template} {status}: {errors[:5]}"


@pytest.fixture(scope="session")
def hiro_spec() -> Spec:
    return Spec(HIRO_SPEC)


@pytest.fixture(scope="session")
def node_spec() -> Spec:
    return Spec(NODE_SPEC)


@pytest.fixture
def fake_chain() -> FakeChain:
    chain = FakeChain()
    chain.add_native_token(TOKEN, "charisma", token_uri="https://example.com/cha.json")
    chain.add_map_token(CREDIT, base_token=TOKEN)
    chain.mint("stx", ALICE, 10_000)
    chain.mint(TOKEN, ALICE, 1_000)
    chain.transfer("stx", ALICE, BOB, 2_500)
    chain.transfer(TOKEN, ALICE, POOL, 100)
    chain.deposit(CREDIT, ALICE, 300)
    chain.burn(TOKEN, ALICE, 1)
    for token in chain.add_native_tokens(5, prefix="extra"):
        chain.mint(token, ALICE, 7)
    return chain


async def _check(
    client: httpx.AsyncClient, spec: Spec, template: str, url: str, status: int = 200, **params: Any
) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    spec.validate(template, "get", status, body)
    return body


async def test_v3_balance_routes_match_the_spec(
    fake_chain_client: httpx.AsyncClient, hiro_spec: Spec
) -> None:
    base = V3.format(principal=ALICE)
    await _check(fake_chain_client, hiro_spec, f"{V3}/balances/stx", f"{base}/balances/stx")
    page = await _check(
        fake_chain_client, hiro_spec, f"{V3}/balances/ft", f"{base}/balances/ft", limit=2
    )
    await _check(
        fake_chain_client,
        hiro_spec,
        f"{V3}/balances/ft",
        f"{base}/balances/ft",
        cursor=page["cursor"]["next"],
    )
    one = f"{V3}/balances/ft/{{asset_identifier}}"
    await _check(fake_chain_client, hiro_spec, one, f"{base}/balances/ft/{ASSET}")
    await _check(
        fake_chain_client, hiro_spec, one, f"{V3.format(principal=BOB)}/balances/ft/{ASSET}"
    )
    await _check(
        fake_chain_client,
        hiro_spec,
        f"{V3}/balances/ft",
        "/extended/v3/principals/bad/balances/ft",
        400,
    )
    await _check(
        fake_chain_client, hiro_spec, f"{V3}/balances/ft", f"{base}/balances/ft", 400, limit=0
    )


async def test_v3_history_routes_match_the_spec(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient, hiro_spec: Spec
) -> None:
    for principal in (ALICE, BOB, POOL, CREDIT):
        base = V3.format(principal=principal)
        txs = await _check(
            fake_chain_client, hiro_spec, f"{V3}/transactions", f"{base}/transactions", limit=50
        )
        ids = [row["transaction"]["tx_id"] for row in txs["results"]]
        types = {row["transaction"]["type"] for row in txs["results"]}
        if principal == ALICE:
            assert types == {"coinbase", "token_transfer", "contract_call"}
        if ids:
            await _check(
                fake_chain_client,
                hiro_spec,
                f"{V3}/balance-changes",
                f"{base}/balance-changes",
                tx_id=ids[:20],
            )
            await _check(
                fake_chain_client,
                hiro_spec,
                f"{V3}/transactions/{{tx_id}}/balance-changes",
                f"{base}/transactions/{ids[0]}/balance-changes",
            )
    await _check(
        fake_chain_client,
        hiro_spec,
        f"{V3}/balance-changes",
        f"{V3.format(principal=ALICE)}/balance-changes",
        400,
    )


async def test_v3_events_match_the_spec(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient, hiro_spec: Spec
) -> None:
    template = "/extended/v3/transactions/{tx_id}/events"
    kinds = set()
    for tx in fake_chain.transactions_of(ALICE):
        body = await _check(
            fake_chain_client, hiro_spec, template, f"/extended/v3/transactions/{tx.tx_id}/events"
        )
        kinds |= {event["type"] for event in body["results"]}
    assert kinds == {"stx_asset", "ft_asset", "contract_log"}
    await _check(
        fake_chain_client,
        hiro_spec,
        template,
        f"/extended/v3/transactions/{'0x' + '00' * 32}/events",
        404,
    )


async def test_status_and_block_routes_match_the_spec(
    fake_chain: FakeChain, fake_chain_client: httpx.AsyncClient, hiro_spec: Spec
) -> None:
    fake_chain.advance_time(900)
    block = "/extended/v2/blocks/{height_or_hash}"
    by_time = "/extended/v2/blocks/by-block-time/{timestamp}"
    await _check(fake_chain_client, hiro_spec, "/extended", "/extended")
    latest = await _check(fake_chain_client, hiro_spec, block, "/extended/v2/blocks/latest")
    await _check(fake_chain_client, hiro_spec, block, "/extended/v2/blocks/1001")
    await _check(fake_chain_client, hiro_spec, block, f"/extended/v2/blocks/{latest['hash']}")
    await _check(fake_chain_client, hiro_spec, block, "/extended/v2/blocks/5")
    await _check(fake_chain_client, hiro_spec, block, "/extended/v2/blocks/999999", 404)
    await _check(
        fake_chain_client,
        hiro_spec,
        by_time,
        f"/extended/v2/blocks/by-block-time/{fake_chain.tip_time - 1}",
    )
    await _check(fake_chain_client, hiro_spec, by_time, "/extended/v2/blocks/by-block-time/1", 404)


async def test_node_routes_match_the_node_spec(
    fake_chain_client: httpx.AsyncClient, node_spec: Spec
) -> None:
    await _check(fake_chain_client, node_spec, "/v2/info", "/v2/info")
    interface = "/v2/contracts/interface/{deployer_address}/{contract_name}"
    for contract_id in (TOKEN, CREDIT):
        address, name = contract_id.split(".")
        await _check(
            fake_chain_client, node_spec, interface, f"/v2/contracts/interface/{address}/{name}"
        )
    call = "/v2/contracts/call-read/{deployer_address}/{contract_name}/{function_name}"
    argument = to_hex(principal_from_text(ALICE))
    address, name = CREDIT.split(".")
    for function, args in (("get-balance", [argument]), ("get-token-uri", []), ("get-balance", [])):
        body = {"sender": ALICE, "arguments": args}
        response = await fake_chain_client.post(
            f"/v2/contracts/call-read/{address}/{name}/{function}", json=body
        )
        node_spec.validate(call, "post", 200, response.json())


def test_the_validator_is_not_vacuous(hiro_spec: Spec, node_spec: Spec) -> None:
    stx = f"{V3}/balances/stx"
    good = {"balance": "1", "available": "1", "locked": None, "mempool": None}
    hiro_spec.validate(stx, "get", 200, good)
    for bad in ({**good, "balance": 1}, {**good, "surprise": True}, {"balance": "1"}):
        with pytest.raises(AssertionError):
            hiro_spec.validate(stx, "get", 200, bad)
    with pytest.raises(AssertionError):
        node_spec.validate("/v2/info", "get", 200, {"peer_version": 1})


async def test_block_following_routes_match_the_specs(
    fake_chain: FakeChain,
    fake_chain_client: httpx.AsyncClient,
    hiro_spec: Spec,
    node_spec: Spec,
) -> None:
    txs = f"/extended/v3/blocks/{fake_chain.tip_height}/transactions"
    page = await _check(
        fake_chain_client, hiro_spec, "/extended/v3/blocks/{height_or_hash}/transactions", txs
    )
    assert page["total"] >= 1
    await _check(
        fake_chain_client,
        hiro_spec,
        "/extended/v3/blocks/{height_or_hash}/transactions",
        "/extended/v3/blocks/999999/transactions",
        404,
    )
    ids = [tx.tx_id for tx in fake_chain.transactions_of(ALICE)] + ["0x" + "00" * 32]
    multiple = await _check(
        fake_chain_client,
        hiro_spec,
        "/extended/v1/tx/multiple",
        "/extended/v1/tx/multiple",
        tx_id=ids,
    )
    assert [entry["found"] for entry in multiple.values()] == [True] * (len(ids) - 1) + [False]
    tip = fake_chain.tip.index_block_hash.removeprefix("0x")
    for query in ({"proof": 0, "tip": tip}, {}):
        await _check(
            fake_chain_client,
            node_spec,
            "/v2/accounts/{principal}",
            f"/v2/accounts/{ALICE}",
            **query,
        )
