"""What one GraphQL operation may cost, and how its errors are told.

- **Depth**: Strawberry's ``QueryDepthLimiter`` (``graphql.max_depth``).
- **Cost**: every field resolved counts once per item of each list above it. A
  field with ``addresses`` or ``tokens`` arguments yields that many items (their
  product), as does the first list beneath it (a bulk answer's balances); another
  list field counts :data:`LIST_GUESS` items. An operation over
  ``graphql.max_cost`` is refused before anything is read.
- **Codes**: a failed field carries ``extensions.code``, the REST API's error code
  (``invalid_address``, ``chain_unavailable``...); an unexpected error is masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
)
from graphql.language import OperationType
from graphql.type.definition import GraphQLOutputType
from strawberry.extensions import SchemaExtension

from balances.api.errors import describe

log = logging.getLogger("balances.api.graphql")
#: Arguments whose list length is the number of items a field yields.
LIST_ARGUMENTS = ("addresses", "tokens")
#: Items assumed of a list field no argument bounds (an address's tokens, a chart's points).
LIST_GUESS = 100


class CostLimiter(SchemaExtension):
    """Refuse an operation whose cost (module docstring) is over ``max_cost``."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        rule = cost_rule(self.max_cost, context.variables or {})
        context.validation_rules = (*context.validation_rules, rule)
        yield


def cost_rule(max_cost: int, variables: Mapping[str, Any]) -> type[ValidationRule]:
    """A validation rule refusing operations that cost more than ``max_cost``."""

    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            document = self.context.document
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            root = _root_type(self.context.schema, node.operation)
            cost = Walk(fragments, variables).cost(node.selection_set, root, 1)
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"this operation would resolve about {cost:,} fields, over the limit "
                        f"of {max_cost:,} (BALANCES_GRAPHQL__MAX_COST): ask for fewer "
                        "addresses, tokens or fields, or split it",
                        node,
                        extensions={"code": "query_too_costly", "cost": cost},
                    )
                )

    return CostLimit


class Walk:
    """The cost of a selection set, fragments followed (each spread at most once per
    path: a cycle is another rule's error)."""

    def __init__(
        self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
    ) -> None:
        self._fragments = fragments
        self._variables = variables

    def cost(
        self,
        selections: SelectionSetNode | None,
        parent: GraphQLObjectType | None,
        items: int,
        bound: int | None = None,
        seen: frozenset[str] = frozenset(),
    ) -> int:
        """The cost of ``selections`` resolved ``items`` times; ``bound``: the items
        the list arguments above promise the next list beneath."""
        if selections is None:
            return 0
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, items, bound, seen)
            elif isinstance(selection, InlineFragmentNode):
                total += self.cost(selection.selection_set, parent, items, bound, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if fragment is not None and name not in seen:
                    total += self.cost(fragment.selection_set, parent, items, bound, seen | {name})
        return total

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLObjectType | None,
        items: int,
        bound: int | None,
        seen: frozenset[str],
    ) -> int:
        if node.name.value.startswith("__"):
            return items  # introspection: switched off where it is not wanted
        definition = None if parent is None else parent.fields.get(node.name.value)
        if definition is None:
            return items  # an unknown field is another rule's error
        named, is_list = _unwrap(definition.type)
        own = self._listed(node)
        if is_list:
            below, bound_below = items * (own or bound or LIST_GUESS), None
        else:
            below, bound_below = items, own or bound
        child = named if isinstance(named, GraphQLObjectType) else None
        return items + self.cost(node.selection_set, child, below, bound_below, seen)

    def _listed(self, node: FieldNode) -> int | None:
        """The items this field's list arguments name (None: it has none)."""
        arguments = node.arguments or ()
        sizes = [self._length(a.value) for a in arguments if a.name.value in LIST_ARGUMENTS]
        known = [size for size in sizes if size is not None]
        if not known:
            return None
        product = 1
        for size in known:
            product *= max(1, size)
        return product

    def _length(self, value: object) -> int | None:
        if isinstance(value, ListValueNode):
            return len(value.values)
        if isinstance(value, VariableNode):
            given = self._variables.get(value.name.value)
            return len(given) if isinstance(given, list) else None
        return None


def _unwrap(kind: GraphQLOutputType) -> tuple[GraphQLOutputType, bool]:
    is_list = False
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(kind, GraphQLList)
        kind = kind.of_type
    return kind, is_list


def _root_type(schema: GraphQLSchema, operation: OperationType) -> GraphQLObjectType | None:
    if operation is OperationType.QUERY:
        return schema.query_type
    if operation is OperationType.MUTATION:
        return schema.mutation_type
    return schema.subscription_type


def label(error: GraphQLError) -> None:
    """Set ``error``'s code (and hide an unexpected error's internals)."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return
    status, code, message = describe(original)
    if status >= 500 and code == "internal_error":
        log.error("GraphQL field %s failed", error.path, exc_info=original)
    error.message = message
    error.extensions = {**(error.extensions or {}), "code": code}
