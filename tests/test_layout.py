"""The shape of the code: the import graph of src/hubheads, src/hubheads_cli and modeling/ (function-level imports
included) has no circles, modeling/ imports nothing of hubheads, no module imports a command module for a helper, and
no function is longer than `MAX_FUNCTION_LINES` (its docstring not counted)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE, MODELING, CLI = ROOT / "src" / "hubheads", ROOT / "modeling", ROOT / "src" / "hubheads_cli"
#: Modules that are commands: only the CLI (the dispatcher), the demo (which runs every command) and the commands that
#: run another command as one of their steps (push verifies; ray runs score's scorer) may import them.
COMMANDS = {"export", "tune", "card", "verify", "push", "score", "demo", "cli", "importing"}
ALLOWED_COMMAND_IMPORTS = {("cli", "*"), ("hubheads_cli", "cli"), ("demo", "*"), ("push", "verify"), ("ray", "score")}
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    """Module name (relative to hubheads, `modeling.x` for the shipped files, `hubheads_cli.x` for the console script)
    → path."""
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    modules.update({f"hubheads_cli.{path.stem}": path for path in CLI.glob("*.py") if path.stem != "__init__"})
    modules["hubheads_cli"] = CLI / "__init__.py"
    modules.update({f"modeling.{path.stem}": path for path in MODELING.glob("*.py") if path.stem != "__init__"})
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The hubheads modules `name` imports, anywhere in the file (module level or inside functions)."""
    found = set()
    package = name.rsplit(".", 1)[0] if "." in name else ""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative, inside modeling/
                base = f"{package}.{node.module}" if node.module else package
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            elif node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for target in targets:
            short = target.removeprefix("hubheads.")
            if target.startswith("hubheads") and short in known:
                found.add(short)
            elif short in known and node.__class__ is ast.ImportFrom and getattr(node, "level", 0):
                found.add(short)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                cycles.append(stack[stack.index(child) :] + [child])
            elif child not in state:
                visit(child, [*stack, child])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_the_graph_reader_sees_function_level_and_relative_imports():
    graph = _graph()
    assert "modeling.configuration_gated_bio" in graph["modeling.modeling_gated_bio"]  # a relative import
    assert "figures" in graph["card"] and "verify" in graph["push"]
    assert "tune" in graph["cli"]  # imported inside the command's handler
    assert "cli" in graph["hubheads_cli"] and "hubheads_cli.defaults" in graph["tuning"]


def test_no_import_circles_in_the_package_or_modeling():
    assert _cycles(_graph()) == []


def test_modeling_imports_nothing_of_hubheads():
    for path in MODELING.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            assert not any(name.split(".")[0] in ("hubheads", "hubheads_cli") for name in names), (
                f"{path.name} imports {names}"
            )


def test_no_module_imports_a_command_module_for_a_helper():
    wrong = [
        (name, target)
        for name, targets in _graph().items()
        for target in targets
        if target in COMMANDS
        and (name, "*") not in ALLOWED_COMMAND_IMPORTS
        and (name, target) not in ALLOWED_COMMAND_IMPORTS
    ]
    assert wrong == []


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The lines of a function from its `def` to its end, without its docstring (documentation is not length)."""
    length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        length -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
    return length


def _long_functions() -> list[str]:
    found = []
    for path in [*PACKAGE.glob("*.py"), *MODELING.glob("*.py"), *CLI.glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = _code_lines(node)
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return sorted(found)


def test_no_function_is_longer_than_the_limit():
    assert _long_functions() == []


def test_the_length_check_counts_code_not_docstrings():
    source = "def f():\n" + '    """doc\n\n    more doc\n    """\n' + "    x = 1\n" * MAX_FUNCTION_LINES
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef) and _code_lines(node) == MAX_FUNCTION_LINES + 1
