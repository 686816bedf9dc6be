"""The plain-leaf shortcut of GraphQL execution answers exactly what graphql-core's
own path answers: data, errors and their paths, for every kind of selection."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from balances.api.graphql.execution import LeafExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Inner:
    label: str


@strawberry.type
class Item:
    name: str
    count: int | None
    colour: Colour
    at: datetime | None
    inner: Inner | None
    required: str  # set to None on purpose below: a non-null field with no value

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times


def _item(index: int, *, broken: bool = False) -> Item:
    return Item(
        name=f"item-{index}",
        count=None if index % 2 else index,
        colour=Colour.RED if index % 3 else Colour.BLUE,
        at=datetime(2025, 1, 1 + index, tzinfo=UTC) if index % 4 else None,
        inner=Inner(label=f"inner-{index}") if index % 5 else None,
        required=None if broken else "yes",  # type: ignore[arg-type]
    )


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item(i) for i in range(12)]

    @strawberry.field
    def broken(self) -> list[Item | None]:
        return [_item(0), _item(1, broken=True), _item(2)]

    @strawberry.field
    def huge(self) -> list[Item]:
        item = _item(1)
        item.count = 2**40  # beyond GraphQL's 32-bit Int: a serialization error
        return [item]


class Upper(SchemaExtension):
    """A resolve hook (a middleware): the shortcut must step aside for it."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


QUERIES = [
    "{ items { name count colour at } }",
    "{ items { __typename n: name c: count name } }",
    "{ items { name inner { label } } }",
    "{ items { name shout(times: 2) } }",
    "{ items { ...F } } fragment F on Item { name colour }",
    "query($x: Boolean!) { items { name count @include(if: $x) colour @skip(if: $x) } }",
    "{ broken { name required } }",
    "{ huge { name count } }",
    "{ items { name } huge { count } }",
]


def _run(context: type[StrawberryGraphQLCoreExecutionContext], query: str, **kw: Any) -> Any:
    schema = strawberry.Schema(query=Query, execution_context_class=context, **kw)
    result = schema.execute_sync(query, variable_values={"x": True})
    errors = [(e.message, e.path) for e in result.errors or []]
    return result.data, errors


@pytest.mark.parametrize("query", QUERIES)
def test_the_shortcut_answers_what_graphql_core_answers(query: str) -> None:
    expected = _run(StrawberryGraphQLCoreExecutionContext, query)
    assert _run(LeafExecutionContext, query) == expected


def test_errors_of_leaves_keep_their_messages_and_paths() -> None:
    data, errors = _run(LeafExecutionContext, "{ broken { name required } }")
    assert data == {
        "broken": [
            {"name": "item-0", "required": "yes"},
            None,
            {"name": "item-2", "required": "yes"},
        ]
    }
    assert [path for _, path in errors] == [["broken", 1, "required"]]
    _, huge = _run(LeafExecutionContext, "{ huge { count } }")
    assert "non-integer" in huge[0][0] or "32-bit" in huge[0][0]


def test_a_resolve_hook_still_sees_every_field() -> None:
    query = "{ items { name colour } }"
    expected = _run(StrawberryGraphQLCoreExecutionContext, query, extensions=[Upper])
    assert expected[0]["items"][0]["name"] == "ITEM-0"
    assert _run(LeafExecutionContext, query, extensions=[Upper]) == expected


class _Counting(LeafExecutionContext):
    """Counts the fields that took graphql-core's path (one resolve info each)."""

    fields = 0

    def build_resolve_info(self, *args: Any, **kwargs: Any) -> Any:
        type(self).fields += 1
        return super().build_resolve_info(*args, **kwargs)


def test_plain_leaves_skip_the_per_field_path() -> None:
    _Counting.fields = 0
    _run(_Counting, "{ items { name count colour at } }")
    assert _Counting.fields == 1  # ``items`` alone; its 12 x 4 leaves were completed at once
    _Counting.fields = 0
    _run(_Counting, "{ items { name shout } }")
    assert _Counting.fields == 1 + 12 * 2  # a resolver field: every field of the item
