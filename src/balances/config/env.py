"""Reading the settings from the environment, and saying which variable is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ValidationError,
)

from balances.config.sections import NetworkConfig
from balances.errors import ConfigError

ENV_PREFIX = "BALANCES_"
ENV_NESTING = "__"
#: Variables read without the prefix, as their own ecosystems name them.
FOREIGN_ENV = {
    "BLOB_READ_WRITE_TOKEN": "vercel_blob_token",
    "VERCEL_BLOB_API_URL": "vercel_blob_api_url",
}


def nested_from_env(
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``BALANCES_A__B=1`` -> ``{"a": {"b": "1"}}``, and where each value came from."""
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for variable, value in environ.items():
        if variable in FOREIGN_ENV:
            path: tuple[str, ...] = (FOREIGN_ENV[variable],)
        elif variable.upper().startswith(ENV_PREFIX):
            path = tuple(part.lower() for part in variable[len(ENV_PREFIX) :].split(ENV_NESTING))
        else:
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{variable} conflicts with another variable setting {part}")
            node = child
        node[path[-1]] = value
        origins[path] = variable
    return data, origins


def describe(
    error: ValidationError, origins: dict[tuple[str, ...], str], root: type[BaseModel]
) -> str:
    """One message naming each bad variable, its value and what it accepts."""
    lines = []
    for problem in error.errors():
        path = tuple(str(part) for part in problem["loc"])
        if not path:  # a whole-model check: its message names the variables
            lines.append(str(problem.get("ctx", {}).get("error", problem["msg"])))
            continue
        variable = origins.get(path) or env_name(path)
        accepted = field_description(path, root)
        shown = f"={problem['input']!r}" if path in origins else ""
        hint = f" (accepted: {accepted})" if accepted else ""
        lines.append(f"{variable}{shown}: {problem['msg']}{hint}")
    return "invalid configuration: " + "; ".join(lines)


def env_name(path: tuple[str, ...]) -> str:
    if not path:
        return "configuration"
    return ENV_PREFIX + ENV_NESTING.join(part.upper() for part in path)


def field_description(path: tuple[str, ...], root: type[BaseModel]) -> str | None:
    """The description of the field at ``path`` below the ``root`` settings model."""
    model = root
    description = None
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            if model is root and part != "networks":
                return None
            continue
        description = field.description
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif part == "networks":
            model = NetworkConfig
    return description
