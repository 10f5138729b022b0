"""No import circle among the project's modules and no import that runs up a layer, counting the imports
made inside functions too: a circle hidden in a function still ties two modules' jobs together (#33)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def modules() -> dict[str, Path]:
    out = {}
    for path in [*REPO.glob("sweeper/**/*.py"), *REPO.glob("models/**/*.py")]:
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, known: dict) -> set[str]:
    """The project modules `path` imports anywhere in it (a name imported from a package counts as its
    submodule when there is one)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            }
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m in known}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_project_has_no_import_circle():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert circles(graph) == []
    # and the check sees one when there is one
    assert circles({**graph, "sweeper.errors": graph["sweeper.errors"] | {"sweeper.api"}}) != []


# Bottom to top: a module may import its own layer and the ones below it. The model registry costs a
# spec on the generated data's mixture, so it sits above data; the architectures and FLOP counts below.
LAYERS = (
    "sweeper.errors",
    "sweeper.library_logs",
    "sweeper.fit",
    "sweeper.config",
    "models",
    "sweeper.data",
    "models.registry",
    "sweeper.train",
    "sweeper.plan",
    "sweeper.samplers",
    "sweeper.trial",
    "sweeper.tracking",
    "sweeper.report",
    "sweeper.sweep",
    "sweeper.tuning",
    "sweeper.api",
    "sweeper.commands",
    "sweeper.cli",
    "sweeper",
)


def layer(module: str) -> int:
    """The index of the most specific layer that holds `module`."""
    held = [i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")]
    return max(held, key=lambda i: len(LAYERS[i]))


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a))


def test_no_import_runs_up_a_layer():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert upward(graph) == []
    assert upward({**graph, "sweeper.fit.laws": {"sweeper.sweep.ledger"}}) == [
        "sweeper.fit.laws -> sweeper.sweep.ledger"
    ]
