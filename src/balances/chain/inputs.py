"""Input checks done before any request: bad input never reaches the network."""

from __future__ import annotations

from balances.chain.clarity import ContractPrincipal, StandardPrincipal
from balances.chain.clarity_values import check_clarity_name
from balances.domain import Principal, TokenId
from balances.errors import ClarityValueError, InvalidAddressError, InvalidTokenIdError


def as_principal(value: str | Principal) -> Principal:
    """A validated principal (standard or contract); InvalidAddressError otherwise."""
    return value if isinstance(value, Principal) else Principal.parse(value)


def as_contract(contract_id: str | Principal) -> Principal:
    """A validated contract principal ``ADDRESS.contract-name``."""
    contract = as_principal(contract_id)
    if not contract.is_contract:
        raise InvalidAddressError(
            f"{str(contract_id)!r} is not a contract id; expected ADDRESS.contract-name"
        )
    return contract


def contract_path(contract: Principal) -> dict[str, str]:
    """The ``{deployer_address}/{contract_name}`` path parameters of contract routes."""
    return {"deployer_address": contract.address, "contract_name": str(contract.contract_name)}


def as_asset_identifier(text: str) -> str:
    """The canonical ``ADDR.contract::asset``; a bare contract id is rejected."""
    token = TokenId.parse(text)
    if token.asset_identifier is None:
        raise InvalidTokenIdError(
            f"{text!r} has no asset name; expected an asset identifier ADDR.contract::asset "
            "(learn the asset name from get_contract_interface)"
        )
    return token.asset_identifier


def check_function_name(function: str) -> str:
    """``function`` if it is a valid Clarity function name."""
    try:
        return check_clarity_name(function)
    except ClarityValueError as error:
        raise ClarityValueError(f"invalid function name: {error}") from error


def clarity_principal(principal: Principal) -> StandardPrincipal | ContractPrincipal:
    """The Clarity value of a principal, for call-read arguments."""
    if principal.contract_name is None:
        return StandardPrincipal(principal.version, principal.hash160)
    return ContractPrincipal(principal.version, principal.hash160, principal.contract_name)
