"""``balances graphql schema``: the GraphQL schema in SDL, for clients' code generators.

The same text is pinned in docs/schema.graphql, so a change to the schema shows in
review (tests/unit/test_graphql_schema.py fails until the file is regenerated).
"""

from __future__ import annotations

import typer

from balances.api.graphql import schema_text

graphql_app = typer.Typer(help="The GraphQL API's schema.", no_args_is_help=True)


@graphql_app.command("schema")
def schema() -> None:
    """Print the schema (SDL). Regenerate the pinned copy with
    ``balances graphql schema > docs/schema.graphql``."""
    typer.echo(schema_text(), nl=False)
