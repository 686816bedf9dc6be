"""The node's contract routes: ``call-read`` (SIP-010 read-only functions) and ``interface``.

Like the node: call-read answers HTTP 200 with ``okay:false`` and a ``cause`` for
calls that fail (unknown function, wrong arguments), 400 text/plain for a body or
argument that does not parse, and 404 text/plain for an unknown contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from balances.chain.clarity import (
    NONE,
    Bool,
    ClarityValue,
    ContractPrincipal,
    Int,
    ResponseOk,
    Some,
    StandardPrincipal,
    StringAscii,
    StringUtf8,
    UInt,
    deserialize,
    to_hex,
)
from balances.domain import Principal
from balances.errors import ClarityError, InvalidAddressError
from balances.testing.fake_chain.blocks import Block
from balances.testing.fake_chain.http import Ctx, Reply, plain_error
from balances.testing.fake_chain.pipeline import RouteSpec
from balances.testing.fake_chain.records import TokenInfo
from balances.testing.fake_chain.tx_parts import canonical

Abi = Any  # an ABI type as the node writes it: "uint128" or {"response": {...}}
_ALLOWED_KEYS = ("sender", "sponsor", "arguments")
_HEX_ARG = re.compile(r"(0x)?([0-9a-fA-F]{2})+")


def _response(ok: Abi) -> Abi:
    return {"response": {"ok": ok, "error": "uint128"}}


_STRING_32 = {"string-ascii": {"length": 32}}
READ_ONLY: dict[str, tuple[list[tuple[str, Abi]], Abi]] = {
    "get-balance": ([("who", "principal")], _response("uint128")),
    "get-decimals": ([], _response("uint128")),
    "get-name": ([], _response(_STRING_32)),
    "get-symbol": ([], _response(_STRING_32)),
    "get-token-uri": ([], _response({"optional": {"string-utf8": {"length": 256}}})),
    "get-total-supply": ([], _response("uint128")),
}
_TRANSFER_ARGS: list[tuple[str, Abi]] = [
    ("amount", "uint128"),
    ("sender", "principal"),
    ("recipient", "principal"),
    ("memo", {"optional": {"buffer": {"length": 34}}}),
]
_MOVE_ARGS: list[tuple[str, Abi]] = [
    ("amount", "uint128"),
    ("recipient", {"optional": "principal"}),
]


def _public(kind: str) -> dict[str, list[tuple[str, Abi]]]:
    functions = {"transfer": _TRANSFER_ARGS}
    if kind == "map":
        functions.update(deposit=_MOVE_ARGS, withdraw=_MOVE_ARGS)
    return functions


def interface_json(info: TokenInfo) -> dict[str, Any]:
    """The contract's ABI as ``/v2/contracts/interface`` describes it."""

    def function(
        name: str, access: str, args: list[tuple[str, Abi]], outputs: Abi
    ) -> dict[str, Any]:
        arg_list = [{"name": arg, "type": kind} for arg, kind in args]
        return {"name": name, "access": access, "args": arg_list, "outputs": {"type": outputs}}

    functions = [
        function(name, "public", args, _response("bool"))
        for name, args in _public(info.kind).items()
    ]
    functions += [function(name, "read_only", args, out) for name, (args, out) in READ_ONLY.items()]
    token_uri = {"optional": {"string-utf8": {"length": 256}}}
    return {
        "functions": functions,
        "variables": [
            {"name": "contract-owner", "type": "principal", "access": "constant"},
            {"name": "token-uri", "type": token_uri, "access": "variable"},
        ],
        "maps": [{"name": "balances", "key": "principal", "value": "uint128"}]
        if info.kind == "map"
        else [],
        "fungible_tokens": [{"name": info.asset_name}] if info.kind == "native" else [],
        "non_fungible_tokens": [],
        "epoch": "Epoch30",
        "clarity_version": "Clarity3",
    }


def _contract(ctx: Ctx) -> TokenInfo:
    contract_id = f"{ctx.params['deployer_address']}.{ctx.params['contract_name']}"
    info = ctx.chain.find_contract(contract_id)
    if info is None:
        raise plain_error(404, f"No contract analysis found or contract not found: {contract_id}")
    return info


def interface(ctx: Ctx) -> Reply:
    return Reply(body=interface_json(_contract(ctx)))


def _parse_body(raw: bytes) -> list[ClarityValue]:
    """The call-read body's arguments; 400 text/plain for anything the node would reject."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise plain_error(400, f"Failed to parse JSON body: {error}") from error
    if not isinstance(body, dict):
        raise plain_error(400, "Failed to parse JSON body: expected an object")
    extra = [key for key in body if key not in _ALLOWED_KEYS]
    if extra:
        raise plain_error(
            400,
            f"Failed to parse JSON body: unknown field `{extra[0]}`, expected one of "
            "`sender`, `sponsor`, `arguments`",
        )
    for key in ("sender", "arguments"):
        if key not in body:
            raise plain_error(400, f"Failed to parse JSON body: missing field `{key}`")
    for key in ("sender", "sponsor"):
        if key in body:
            _check_principal(key, body[key])
    arguments = body["arguments"]
    if not isinstance(arguments, list) or not all(isinstance(arg, str) for arg in arguments):
        raise plain_error(
            400, "Failed to parse JSON body: `arguments` must be an array of hex strings"
        )
    return [_decode_argument(index, arg) for index, arg in enumerate(arguments)]


def _check_principal(key: str, value: object) -> None:
    try:
        if not isinstance(value, str):
            raise InvalidAddressError(f"expected a string, got {type(value).__name__}")
        Principal.parse(value)
    except InvalidAddressError as error:
        raise plain_error(400, f"Failed to parse JSON body: invalid `{key}`: {error}") from error


def _decode_argument(index: int, text: str) -> ClarityValue:
    if not _HEX_ARG.fullmatch(text):
        raise plain_error(400, f"Failed to deserialize argument {index}: not hex: {text!r}")
    try:
        return deserialize(text)
    except ClarityError as error:
        raise plain_error(400, f"Failed to deserialize argument {index}: {error}") from error


def _debug(value: ClarityValue) -> str:
    """Roughly how the node's Rust ``Debug`` prints a value inside a cause."""
    if isinstance(value, UInt | Int):
        return f"{type(value).__name__}({value.value})"
    if isinstance(value, Bool):
        return f"Bool({str(value.value).lower()})"
    return f"{type(value).__name__}(..)"


def _tip_block(ctx: Ctx) -> Block | None:
    """``tip``: a 64-hex index block hash reads that block's state (an orphaned one's
    too); anything else the tip (None)."""
    tip = ctx.query.get("tip", "")
    if not re.fullmatch(r"[0-9a-f]{64}", tip):
        return None  # the node falls back to the anchored tip on a malformed value
    block = ctx.chain.blocks.by_hash(tip)
    if block is None:
        raise plain_error(404, f"No such block: {tip}")
    return block


def _balance_of(ctx: Ctx, info: TokenInfo, who: ClarityValue) -> int:
    block = _tip_block(ctx)
    try:
        if block is None:
            return ctx.chain.balance(info.contract_id, str(who))
        return ctx.chain.balance_after(canonical(str(who)), info.contract_id, block)
    except InvalidAddressError:
        return 0  # a principal of another address version can hold nothing here


def _results(info: TokenInfo, ctx: Ctx) -> dict[str, Callable[[list[ClarityValue]], ClarityValue]]:
    chain = ctx.chain
    supply_of = info.base_token or info.contract_id  # Charisma wrappers pass through
    return {
        "get-balance": lambda args: UInt(_balance_of(ctx, info, args[0])),
        "get-decimals": lambda _: UInt(info.decimals),
        "get-name": lambda _: StringAscii(info.name),
        "get-symbol": lambda _: StringAscii(info.symbol),
        "get-token-uri": lambda _: (
            NONE if info.token_uri is None else Some(StringUtf8(info.token_uri))
        ),
        "get-total-supply": lambda _: UInt(chain.total_supply(supply_of)),
    }


def _failure(info: TokenInfo, function: str, args: list[ClarityValue]) -> str | None:
    """The node's ``cause`` when this call cannot run; None when it can."""
    if function in _public(info.kind):
        return f'Unchecked(PublicFunctionNotReadOnly("{info.contract_id}", "{function}"))'
    if function not in READ_ONLY:
        return f'Unchecked(UndefinedFunction("{function}"))'
    expected = READ_ONLY[function][0]
    if len(args) != len(expected):
        return f"Unchecked(IncorrectArgumentCount({len(expected)}, {len(args)}))"
    for arg, (_, kind) in zip(args, expected, strict=True):
        if kind == "principal" and not isinstance(arg, StandardPrincipal | ContractPrincipal):
            return f"Unchecked(TypeValueError(PrincipalType, {_debug(arg)}))"
    return None


def call_read(ctx: Ctx) -> Reply:
    args = _parse_body(ctx.body)
    info = _contract(ctx)
    function = ctx.params["function_name"]
    cause = _failure(info, function, args)
    if cause is not None:
        return Reply(body={"okay": False, "cause": cause})
    value = _results(info, ctx)[function](args)
    return Reply(body={"okay": True, "result": to_hex(ResponseOk(value))})


ROUTES = [
    RouteSpec(
        "POST",
        "/v2/contracts/call-read/{deployer_address}/{contract_name}/{function_name}",
        call_read,
    ),
    RouteSpec("GET", "/v2/contracts/interface/{deployer_address}/{contract_name}", interface),
]
