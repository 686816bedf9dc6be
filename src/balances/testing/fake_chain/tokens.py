"""Token definitions of the fake chain: native fungible tokens and map-based credit tokens."""

from __future__ import annotations

from balances.domain import Principal, TokenId
from balances.errors import InvalidAddressError, InvalidTokenIdError
from balances.testing.fake_chain.records import (
    FakeChainError,
    TokenInfo,
    UnknownTokenError,
    fake_address,
)


class TokenRegistry:
    """Which token contracts exist; :class:`FakeChain` builds on it."""

    def __init__(self, network: str) -> None:
        self.network = network
        self._tokens: dict[str, TokenInfo] = {}
        #: Contracts the Token Metadata API does not know (404; left out of its list).
        self.metadata_unknown: set[str] = set()
        #: Contracts it lists without decimals (not yet read by its indexer).
        self.metadata_undecided: set[str] = set()

    @property
    def tokens(self) -> list[TokenInfo]:
        """Every token, in the order added."""
        return list(self._tokens.values())

    def add_native_token(
        self,
        contract_id: str,
        asset_name: str,
        *,
        decimals: int = 6,
        symbol: str = "TKN",
        name: str = "Token",
        token_uri: str | None = None,
    ) -> None:
        """Deploy a SIP-010 contract with ``(define-fungible-token <asset_name>)``.

        The asset name may differ from the contract name, as on mainnet
        (``charisma-token::charisma``).
        """
        token = TokenId.parse(f"{contract_id}::{asset_name}")
        self._add(
            TokenInfo(
                str(token.contract), "native", token.asset_name, decimals, symbol, name, token_uri
            )
        )

    def add_map_token(
        self,
        contract_id: str,
        *,
        decimals: int = 6,
        symbol: str = "TKN",
        name: str = "Token",
        token_uri: str | None = None,
        base_token: str | None = None,
    ) -> None:
        """Deploy a "subnet" credit token: SIP-010 over ``(define-map balances principal uint)``.

        With ``base_token`` (a native token's id), a deposit locks that token in this
        contract and a withdrawal releases it, as Charisma's ``-subnet-v1`` wrappers do.
        """
        base = None
        if base_token is not None:
            base_info = self.token(base_token)
            if base_info.kind != "native":
                raise FakeChainError(f"base_token {base_token} must be a native token")
            base = base_info.contract_id
        contract = _contract_id(contract_id)
        self._add(TokenInfo(contract, "map", None, decimals, symbol, name, token_uri, base))

    def add_native_tokens(
        self, count: int, prefix: str = "token", *, deployer: str | None = None, decimals: int = 6
    ) -> list[str]:
        """Deploy ``count`` native tokens ``<deployer>.<prefix>-<i>`` (asset ``<prefix><i>``).

        Returns their contract ids. The default deployer is a fixed fake address.
        """
        owner = deployer or fake_address(f"deployer:{prefix}", self.network)
        ids = []
        for index in range(count):
            contract_id = f"{owner}.{prefix}-{index}"
            self.add_native_token(
                contract_id,
                f"{prefix}{index}",
                decimals=decimals,
                symbol=f"T{index}",
                name=f"{prefix} {index}",
            )
            ids.append(contract_id)
        return ids

    def token(self, text: str) -> TokenInfo:
        """A token by contract id or asset identifier (the asset name must match)."""
        try:
            token_id = TokenId.parse(text)
        except InvalidTokenIdError as error:
            raise UnknownTokenError(f"not a token id: {error}") from error
        info = self._tokens.get(token_id.contract_id)
        if info is None:
            raise UnknownTokenError(f"no token {token_id.contract_id} on this fake chain")
        if token_id.asset_name is not None and token_id.asset_name != info.asset_name:
            raise UnknownTokenError(
                f"{info.contract_id} defines asset {info.asset_name!r}, not {token_id.asset_name!r}"
            )
        return info

    def find_contract(self, contract_id: str) -> TokenInfo | None:
        return self._tokens.get(contract_id)

    def _add(self, info: TokenInfo) -> None:
        if info.contract_id in self._tokens:
            raise FakeChainError(f"contract {info.contract_id} already exists")
        if info.decimals < 0:
            raise FakeChainError(f"decimals must be >= 0, got {info.decimals}")
        self._tokens[info.contract_id] = info


def _contract_id(text: str) -> str:
    try:
        principal = Principal.parse(text)
    except InvalidAddressError as error:
        raise FakeChainError(f"not a contract id: {error}") from error
    if not principal.is_contract:
        raise FakeChainError(f"{text!r} is not a contract id (ADDR.name)")
    return str(principal)
