"""The services stand in layers (docs/architecture.md): imports run one way, and none hides inside a function.

Read from the source with `ast`, so a cycle cannot be held together by an import deferred to call time.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "webinar_pay" / "services"
PACKAGE = "webinar_pay.services"
# What the flows build on ("" is the package itself: the errors). They import no flow.
LOW = {
    "",
    "state",
    "seats",
    "tickets",
    "jobs",
    "video",
    "payments",
    "schemas",
    "text",
    "markdown",
    "timezones",
    "ics",
    "heartbeat",
    "health",
    "personal_data",
    "totp",
    "account_links",
}
# The flows, top to bottom as docs/architecture.md draws them: each imports only the flows below it.
FLOWS = [
    "privacy",
    "inbox",
    "paypal_checkout",
    "webhooks",
    "orders",
    "refunds",
    "sessions",
    "enrollment",
    "accounts",
    "outbox",
    "creators",
    "discounts",
]


def _modules() -> dict[str, Path]:
    """Dotted names under `webinar_pay.services` ("orders", "outbox.dispatch", "" for the package) -> source."""
    found = {}
    for path in sorted(SERVICES.rglob("*.py")):
        parts = list(path.relative_to(SERVICES).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _package_of(name: str, path: Path) -> list[str]:
    """The package a module's relative imports start from, as a dotted path of `webinar_pay.services`'s modules."""
    parts = name.split(".") if name else []
    return parts if path.name == "__init__.py" else parts[:-1]


def _targets(node: ast.Import | ast.ImportFrom, name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The modules of the app (fully dotted) an import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "webinar_pay"]
    if node.level == 0:
        return [node.module] if (node.module or "").split(".")[0] == "webinar_pay" else []
    package = _package_of(name, path)
    up = node.level - 1
    if up > len(package):
        return ["webinar_pay"]  # above the services: the models, the extensions and the like
    parent = [*package[: len(package) - up], *(node.module.split(".") if node.module else [])]
    targets = []
    for alias in node.names:
        child = ".".join([*parent, alias.name])
        targets.append(f"{PACKAGE}.{child}" if child in modules else ".".join([PACKAGE, *parent]))
    return targets


def _service(target: str) -> str | None:
    """The services module a dotted import target is, or None when it is elsewhere in the app."""
    if target == PACKAGE:
        return ""
    if target.startswith(PACKAGE + "."):
        return target.removeprefix(PACKAGE + ".")
    return None


def _imports(name: str, path: Path, modules: dict[str, Path]) -> tuple[set[str], list[str]]:
    """The services modules this one imports at module level, and the app imports it makes inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    at_top: set[str] = set()
    hidden: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                targets = _targets(child, name, path, modules)
                if in_function and targets:
                    hidden.append(f"{name or 'services'}:{child.lineno}: {ast.unparse(child)}")
                at_top.update(s for s in map(_service, targets) if s is not None and not in_function)
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(tree, False)
    return at_top - {name}, hidden


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules)[0] for name, path in modules.items()}


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_no_service_imports_the_app_inside_a_function():
    modules = _modules()
    hidden = [line for name, path in modules.items() for line in _imports(name, path, modules)[1]]
    assert hidden == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """An import cycle of the graph (`a -> b -> a`), or None."""
    done: set[str] = set()

    def walk(module: str, trail: list[str]) -> list[str] | None:
        if module in trail:
            return trail[trail.index(module) :] + [module]
        if module in done:
            return None
        for imported in sorted(graph.get(module, ())):
            if cycle := walk(imported, [*trail, module]):
                return cycle
        done.add(module)
        return None

    return next((cycle for module in sorted(graph) if (cycle := walk(module, []))), None)


def test_service_imports_run_one_way():
    assert _cycle(_graph()) is None


def test_every_service_module_has_its_place_in_the_layers():
    assert {_layer(module) for module in _graph()} == LOW | set(FLOWS)


def test_low_layers_import_no_flow():
    for module, imported in sorted(_graph().items()):
        if _layer(module) in LOW:
            assert {_layer(m) for m in imported} <= LOW, f"{module or 'services'} imports {sorted(imported)}"


def test_each_flow_imports_only_what_is_below_it():
    for module, imported in sorted(_graph().items()):
        if _layer(module) in FLOWS:
            below = LOW | set(FLOWS[FLOWS.index(_layer(module)) :])
            assert {_layer(m) for m in imported} <= below, f"{module} imports {sorted(imported)}"


def test_the_layer_checks_see_a_hidden_import_and_a_cycle(tmp_path):
    """The checks above read imports right: a deferred import and a two-module cycle are both found."""
    (tmp_path / "a.py").write_text("from .b import x\n\n\ndef f():\n    from .state import transition\n")
    (tmp_path / "b.py").write_text("from . import a\n")
    modules = {"a": tmp_path / "a.py", "b": tmp_path / "b.py", "state": SERVICES / "state.py"}
    top_a, hidden_a = _imports("a", modules["a"], modules)
    top_b, _hidden = _imports("b", modules["b"], modules)
    assert top_a == {"b"} and len(hidden_a) == 1 and "from .state import transition" in hidden_a[0]
    assert _cycle({"a": top_a, "b": top_b, "state": set()}) == ["a", "b", "a"]
