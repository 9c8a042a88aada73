"""The values table of the chart README, generated from the `# --` comments of values.yaml.

    .venv/bin/python -m tests.deploy.values_doc          # print the table
    .venv/bin/python -m tests.deploy.values_doc --write  # update the chart README in place

A key documented with `# -- text` (continued on the following `#` lines) becomes one row:
its dotted path, type, default and description. A documented mapping covers its children.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "payout-service"
VALUES = CHART / "values.yaml"
README = CHART / "README.md"
START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?:\s|$)")


@dataclass(frozen=True)
class Row:
    path: str
    type: str
    default: Any
    description: str


def documented_keys(text: str) -> dict[str, str]:
    """Dotted path -> description of every key that has a `# --` comment."""
    result: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped[1:].strip())
            continue
        match = KEY_LINE.match(line)
        if not match:
            if stripped and not stripped.startswith("-"):
                pending = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if pending is not None:
            result[".".join(k for _, k in stack)] = " ".join(pending)
            pending = None
    return result


def lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number" if isinstance(value, float) else "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def rows(values_path: Path = VALUES) -> list[Row]:
    text = values_path.read_text()
    values = yaml.safe_load(text)
    return [
        Row(path, type_name(lookup(values, path)), lookup(values, path), description)
        for path, description in documented_keys(text).items()
    ]


def leaf_paths(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf (scalars, lists, empty mappings) of a values tree."""
    if isinstance(node, dict) and node:
        paths = []
        for key, child in node.items():
            paths += leaf_paths(child, f"{prefix}.{key}" if prefix else key)
        return paths
    return [prefix]


def table(values_path: Path = VALUES) -> str:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for row in rows(values_path):
        default = json.dumps(row.default, separators=(", ", ": "))
        default = default.replace("|", "\\|")
        description = row.description.replace("|", "\\|")
        lines.append(f"| `{row.path}` | {row.type} | `{default}` | {description} |")
    return "\n".join(lines)


def readme_table(readme: Path = README) -> str:
    text = readme.read_text()
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme(readme: Path = README) -> None:
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_readme()
    else:
        print(table())
