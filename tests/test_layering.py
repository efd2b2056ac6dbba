"""The shape of the tree (docs/README.md): imports point one way and never in a circle.

Read from the source with `ast`, every import counted, also those inside functions: a late import is still a
dependency, and hiding one in a function is how a cycle usually comes back.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "blocks", "handlers", "jobs", "outbox", "standin", "bench", "migrations", "ops")
TOP = ("bot", "doctor", "runtime", "prefork", "settings", "logsafe")
SLACK = ("slack_bolt", "slack_sdk")

# What each layer may not import (of the project, and of Slack's libraries).
FORBIDDEN = {
    "models": ("blocks", "handlers", "jobs", "outbox", "standin", "bot", "doctor", "runtime", "prefork", *SLACK),
    "blocks": ("handlers", "jobs", "outbox", "standin", "bot", "doctor", "runtime", "prefork", *SLACK),
    "outbox": ("handlers", "jobs", "standin", "bot", "doctor", "runtime", "prefork"),
    "jobs": ("handlers", "standin", "bot", "doctor", "runtime", "prefork", *SLACK),
    "handlers": ("jobs", "standin", "bot", "doctor", "runtime", "prefork"),
    "settings": ("blocks", "handlers", "jobs", "outbox", "standin", "bot", "doctor", "runtime", "prefork"),
    # scopes, metrics, logs: used by the outbox and the handlers, below both
    "ops": ("handlers", "jobs", "outbox", "standin", "bot", "doctor", "runtime", "prefork"),
    "doctor": ("handlers", "jobs", "standin", "bot", "runtime", "prefork"),  # it reads; it serves nothing
}


def source_files() -> list[Path]:
    files = [ROOT / f"{name}.py" for name in TOP]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, by its full dotted name (`from a import b` counts a.b when that is a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in source_files()}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_downwards(layer):
    wrong = []
    for path in source_files():
        name = module_name(path)
        if name.split(".")[0] != layer:
            continue
        for imported in imports_of(path):
            if imported.split(".")[0] in FORBIDDEN[layer]:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = project_graph()
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [node, nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(cycles)


def test_the_checks_see_real_imports():
    """The reader must find what is there, or the tests above pass on nothing."""
    graph = project_graph()
    assert "models.leads" in graph["models.intake"]
    assert "runtime" in graph["bot"] and "runtime" in graph["standin.demo"]
    assert "blocks.card" in graph["outbox.deliveries.card_post"]
