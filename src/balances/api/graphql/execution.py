"""Completing plain leaf objects in one pass, so a bulk query costs what REST costs.

graphql-core executes every field of every object on its own: a resolve-info
object, the resolver, then the value's completion, about 25 µs a field. A bulk read
of 100 addresses x 100 tokens selects a dozen fields of 10,000 balances, so that
alone took three times the whole REST answer. Most of those fields are plain
attributes of a scalar or enum type (Strawberry marks their resolver as its
default), so :class:`LeafExecutionContext` completes an object whose selected
fields are all of that kind directly: the attribute, serialized by its type, as
graphql-core would. Anything else (a field with a resolver, arguments, a nested
object, a deferred fragment, a middleware or a value that fails to serialize)
takes graphql-core's own path, errors and all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.collect_fields import DeferUsage, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One selected field: where its value comes from and how it is serialized."""

    key: str
    attribute: str | None  # None: ``__typename``
    serialize: Callable[[Any], Any]
    non_null: bool


_NOT_PLAIN = None


class LeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with the plain-leaf shortcut above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Per grouped field set (memoized by graphql-core, so its id is stable
        #: for the operation): its leaves, or None when it is not all plain.
        self._plans: dict[tuple[str, int], tuple[_Leaf, ...] | None] = {}

    def execute_collected_subfields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path,
        grouped_field_set: GroupedFieldSet,
        new_defer_usages: Sequence[DeferUsage],
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        wrapped = self.middleware_manager is not None and self.middleware_manager.middlewares
        if not new_defer_usages and not wrapped:
            key = (parent_type.name, id(grouped_field_set))
            if key not in self._plans:
                self._plans[key] = _plan(parent_type, grouped_field_set)
            leaves = self._plans[key]
            if leaves is not None:
                completed = _complete(leaves, parent_type.name, source_value)
                if completed is not None:
                    return completed
        return super().execute_collected_subfields(
            parent_type, source_value, path, grouped_field_set, new_defer_usages, position_context
        )


def _plan(parent: GraphQLObjectType, fields: GroupedFieldSet) -> tuple[_Leaf, ...] | None:
    leaves = []
    for key, details in fields.items():
        node = details[0].node
        name = node.name.value
        if name == "__typename":
            leaves.append(_Leaf(key, None, str, True))
            continue
        field = parent.fields.get(name)
        if field is None or node.arguments or field.args:
            return _NOT_PLAIN
        if not getattr(field.resolve, "_is_default", False):
            return _NOT_PLAIN  # a resolver of our own
        definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        attribute = getattr(definition, "python_name", None)
        kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if attribute is None or not isinstance(kind, GraphQLScalarType | GraphQLEnumType):
            return _NOT_PLAIN
        serialize = kind.serialize
        if isinstance(kind, GraphQLEnumType):  # a handful of members: remember their names
            serialize = functools.lru_cache(maxsize=64)(serialize)
        leaves.append(_Leaf(key, attribute, serialize, isinstance(field.type, GraphQLNonNull)))
    return tuple(leaves)


def _complete(leaves: Sequence[_Leaf], type_name: str, source: Any) -> dict[str, Any] | None:
    """The object's answer, or None where graphql-core must say what went wrong."""
    answer: dict[str, Any] = {}
    for leaf in leaves:
        if leaf.attribute is None:
            answer[leaf.key] = type_name
            continue
        value = getattr(source, leaf.attribute, Undefined)
        if value is None and not leaf.non_null:
            answer[leaf.key] = None
            continue
        if value is None or value is Undefined:
            return None
        try:
            serialized = leaf.serialize(value)
        except Exception:
            return None
        if serialized is None or serialized is Undefined:
            return None
        answer[leaf.key] = serialized
    return answer
