"""The GraphQL schema is pinned: docs/schema.graphql is what ``balances graphql
schema`` prints, so a change to the schema is a reviewed change to that file."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLError, GraphQLScalarType, IntValueNode
from typer.testing import CliRunner

from balances.api.graphql import build_schema, schema_text
from balances.cli import app

PINNED = Path(__file__).resolve().parents[2] / "docs" / "schema.graphql"


def test_the_cli_prints_the_pinned_schema() -> None:
    result = CliRunner().invoke(app, ["graphql", "schema"])
    assert result.exit_code == 0, result.output
    assert result.output == PINNED.read_text(), (
        "the schema changed: review it, then run `balances graphql schema > docs/schema.graphql`"
    )
    assert result.output == schema_text()


def test_the_schema_keeps_amounts_exact_and_names_its_operations() -> None:
    text = PINNED.read_text()
    # u128 amounts never travel as GraphQL Int (32-bit) or Float.
    assert "  balance: String!" in text
    assert "  amount: String\n" in text
    assert "totalSupply: String" in text
    for operation in ("type Query {", "type Mutation {", "type Subscription {"):
        assert operation in text
    assert "balanceChanged(addresses: [String!]!" in text
    assert "asOf: Int" in text


def test_sequence_numbers_go_beyond_32_bits() -> None:
    """GraphQL's Int stops at 2^31 - 1; a feed's numbers do not (``Seq`` to 2^53 - 1)."""
    seq = build_schema()._schema.type_map["Seq"]
    assert isinstance(seq, GraphQLScalarType)
    big = 2**40
    assert seq.serialize(big) == big
    assert seq.parse_value(big) == big
    assert seq.parse_literal(IntValueNode(value=str(big))) == big
    for bad in (-1, 2**53, True, "12", 1.5):
        with pytest.raises((ValueError, TypeError, GraphQLError)):
            seq.parse_value(bad)
