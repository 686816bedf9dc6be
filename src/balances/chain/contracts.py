"""Contract reads of :class:`~balances.chain.client.StacksClient`: read-only calls,
balances as of one block, contract interfaces and SIP-010 metadata getters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from balances.chain import wire
from balances.chain.clarity import ClarityValue, deserialize, expect_uint, to_hex
from balances.chain.inputs import (
    as_contract,
    as_principal,
    check_function_name,
    clarity_principal,
    contract_path,
)
from balances.chain.models import ContractInterface, TokenKind, TokenMetadata
from balances.chain.routes import (
    ACCOUNT,
    CALL_READ,
    INTERFACE,
)
from balances.chain.sip010 import (
    DISPLAY_GETTERS,
    METADATA_GETTERS,
    build_metadata,
    decode_result,
)
from balances.chain.transport import ErrorFactory, Request, Transport
from balances.domain import Principal
from balances.errors import (
    ClarityDecodeError,
    ContractCallError,
    ContractNotFoundError,
    MalformedResponseError,
    NotFoundError,
    TokenNotFoundError,
    ValidationError,
)

T = TypeVar("T")


def _contract_errors(contract: Principal) -> dict[int, ErrorFactory]:
    """404: the contract does not exist; 400: the node could not run the call."""
    return {
        404: lambda message, _: ContractNotFoundError(f"no contract {contract}: {message}"),
        400: lambda message, cause: ContractCallError(message, cause=cause),
    }


def _tip(index_block_hash: str) -> str:
    """The node's ``tip`` parameter: 64 lower-case hex digits (a malformed one would
    silently read the chain tip instead, so it is refused here)."""
    text = index_block_hash.lower().removeprefix("0x")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValidationError(f"a block's index hash is 64 hex digits, got {index_block_hash!r}")
    return text


def _tip_errors(tip: str) -> dict[int, ErrorFactory]:
    return {404: lambda message, _: NotFoundError(f"no block {tip[:16]}...: {message}")}


class ContractReadsMixin:
    """Read-only contract calls over the client's transport."""

    _transport: Transport

    async def get_balance_at(
        self, principal: str | Principal, token: str, index_block_hash: str
    ) -> int:
        """A balance exactly as of one block (the state after it): STX from the node's
        account (unlocked plus locked, the API's ``balance``), any other token from its
        ``get-balance`` (SIP-010 and map-based tokens alike). ``token`` is ``stx`` or a
        contract id; ``index_block_hash`` names the block (``0x`` optional)."""
        tip = _tip(index_block_hash)
        if token == "stx":
            holder = str(as_principal(principal))
            request = self._transport.request(
                ACCOUNT, {"principal": holder}, {"proof": 0, "tip": tip}
            )
            account = await self._get(request, wire.NodeAccount, errors=_tip_errors(tip))
            return account.balance + account.locked
        value = await self.call_read(
            token, "get-balance", [clarity_principal(as_principal(principal))], tip=tip
        )
        return decode_result(token, "get-balance", value, expect_uint)

    async def call_read(
        self,
        contract_id: str,
        function: str,
        args: Sequence[ClarityValue] = (),
        sender: str | Principal | None = None,
        *,
        tip: str | None = None,
    ) -> ClarityValue:
        """Call a read-only function; return its Clarity result (as of block ``tip``, an
        index block hash, when given; else the chain tip).

        ``okay:false`` (and a 400 from the node) -> ContractCallError with the
        node's cause; an unknown contract -> ContractNotFoundError. ``sender``
        defaults to the contract's deployer.
        """
        contract = as_contract(contract_id)
        check_function_name(function)
        caller = contract.standard if sender is None else as_principal(sender)
        body = {"sender": str(caller), "arguments": [to_hex(arg) for arg in args]}
        path = {"function_name": function, **contract_path(contract)}
        query: dict[str, str | int] | None = None if tip is None else {"tip": _tip(tip)}
        request = self._transport.request(CALL_READ, path, query, body=body)
        answer = await self._get(request, wire.CallReadAnswer, errors=_contract_errors(contract))
        where = f"{contract}.{function}"
        if not answer.okay:
            cause = answer.cause or "no cause given"
            raise ContractCallError(f"{where} failed: {cause}", cause=answer.cause)
        if answer.result is None:
            raise MalformedResponseError(f"{CALL_READ}: okay:true without a result for {where}")
        try:
            return deserialize(answer.result)
        except ClarityDecodeError as error:
            raise MalformedResponseError(
                f"{where} answered an undecodable result: {error}"
            ) from error

    async def get_contract_interface(self, contract_id: str) -> ContractInterface:
        """The token's kind and asset name, from ``/v2/contracts/interface``.

        A contract with neither a fungible token nor a read-only ``get-balance`` is
        not a token: TokenNotFoundError.
        """
        contract = as_contract(contract_id)
        request = self._transport.request(INTERFACE, contract_path(contract))
        abi = await self._get(request, wire.ContractAbi, errors=_contract_errors(contract))
        read_only = frozenset(f.name for f in abi.functions if f.access == "read_only")
        if abi.fungible_tokens:
            kind, asset_name = TokenKind.NATIVE, abi.fungible_tokens[0].name
        elif "get-balance" in read_only:
            kind, asset_name = TokenKind.MAP, None
        else:
            raise TokenNotFoundError(
                f"{contract} is not a fungible token: it defines no fungible token and "
                "no read-only get-balance"
            )
        return ContractInterface(str(contract), kind, asset_name, read_only)

    async def get_token_metadata(self, contract_id: str, *, full: bool = True) -> TokenMetadata:
        """SIP-010 metadata; see :class:`TokenMetadata` for what may be missing.

        ``full=False`` reads only what a balance display needs (decimals and symbol:
        two requests instead of five); the other fields are then None.
        """
        contract = str(as_contract(contract_id))
        getters = METADATA_GETTERS if full else DISPLAY_GETTERS
        outcomes = await asyncio.gather(
            *(self._read_getter(contract, name, decode) for name, decode in getters),
            return_exceptions=True,
        )
        return build_metadata(contract, outcomes, getters)

    async def _read_getter(
        self, contract: str, function: str, decode: Callable[[ClarityValue], T]
    ) -> T:
        return decode_result(contract, function, await self.call_read(contract, function), decode)

    async def _get(self, request: Request, model: type[wire.ModelT], **options: Any) -> wire.ModelT:
        return await self._transport.fetch(
            request, partial(wire.parse, model, route=request.route), **options
        )
