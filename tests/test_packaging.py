"""What ships: the wheel carries modeling/ byte for byte, and the modeling files stay safe to run remotely."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hubheads.verify import scan_python_source

ROOT = Path(__file__).resolve().parents[1]
MODELING = sorted((ROOT / "modeling").glob("*.py"))
ALLOWED_IMPORT_ROOTS = {"torch", "transformers", "numpy"} | set(sys.stdlib_module_names)
# Stricter than `hubheads verify`'s code-safety scan (which these files must pass too): no file writes, no prints.
FORBIDDEN_MODULES = {"shutil"}
FORBIDDEN_BUILTINS = {"open", "print", "input", "breakpoint"}
FORBIDDEN_METHODS = {"write_text", "write_bytes"}


@pytest.mark.slow
def test_the_wheel_ships_modeling_byte_identical(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("hubheads-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for path in MODELING:
            assert archive.read(f"hubheads/modeling/{path.name}") == path.read_bytes(), path.name
        for template in ("gitattributes", "modelcard_template.md"):
            assert (
                archive.read(f"hubheads/hub_templates/{template}") == (ROOT / "hub_templates" / template).read_bytes()
            )
        assert any(name.startswith("hubheads/data/") and name.endswith(".jsonl") for name in names)
        assert "hubheads/data/released_files.json" in names, "`hubheads verify` needs the released files' hashes"
        entry_points = next(name for name in names if name.endswith("entry_points.txt"))
        assert "hubheads = hubheads_cli:main" in archive.read(entry_points).decode()
        for module in ("__init__", "__main__", "parsers", "defaults"):  # the console script, beside the package
            assert f"hubheads_cli/{module}.py" in names, module


def _optional_imports(tree: ast.AST) -> set[int]:
    """The ids of import nodes in the body of a `try` that catches `ImportError` (optional extras, such as the author
    tooling of the hubheads package inside `from_backbone`)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(handler.type, ast.Name) and handler.type.id == "ImportError" for handler in node.handlers
        ):
            guarded |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return guarded


@pytest.mark.parametrize("path", MODELING, ids=lambda p: p.name)
def test_modeling_files_import_only_what_a_stranger_has(path):
    tree = ast.parse(path.read_text())
    optional = _optional_imports(tree)
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports are copied along by transformers' remote-code loader
                assert node.level == 1 and (path.parent / f"{node.module}.py").is_file(), ast.dump(node)
                continue
            roots = {node.module.split(".")[0]}
        else:
            continue
        assert roots <= ALLOWED_IMPORT_ROOTS, f"{path.name}:{node.lineno} imports {roots}"
        assert not roots & FORBIDDEN_MODULES, f"{path.name}:{node.lineno} imports {roots & FORBIDDEN_MODULES}"


@pytest.mark.parametrize("path", MODELING, ids=lambda p: p.name)
def test_modeling_files_pass_the_code_safety_scan(path):
    failures = [finding for finding in scan_python_source(path.read_text(), path.name) if finding.status == "fail"]
    assert not failures, "\n".join(finding.message for finding in failures)


@pytest.mark.parametrize("path", MODELING, ids=lambda p: p.name)
def test_modeling_files_write_no_files_and_print_nothing(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            assert func.id not in FORBIDDEN_BUILTINS, f"{path.name}:{node.lineno} calls {func.id}()"
        elif isinstance(func, ast.Attribute):
            assert func.attr not in FORBIDDEN_METHODS, f"{path.name}:{node.lineno} calls .{func.attr}()"
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            assert (owner, func.attr) != ("torch", "save"), f"{path.name}:{node.lineno}: pickle"


def _relative_imports(module: str) -> set[str]:
    """The modules `modeling/<module>.py` imports relatively, anywhere in the file (as transformers finds them)."""
    tree = ast.parse((ROOT / "modeling" / f"{module}.py").read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}


def _closure(module: str) -> set[str]:
    seen, pending = set(), [module]
    while pending:
        for needed in _relative_imports(pending.pop()) - seen:
            seen.add(needed)
            pending.append(needed)
    return seen


def test_remote_code_loads_from_a_local_folder_on_every_release():
    """transformers 4.x and 5.0 copy only the direct relative imports of a remote-code file when they load a repo
    from a local folder (an Inference Endpoint, `pipeline(model="./repo")`). The config file is loaded first, then the
    model file: each must import directly every file it reaches, beyond what the config file brought."""
    from hubheads.architectures import ARCHITECTURES

    for arch in ARCHITECTURES.values():
        config = _closure(arch.config_module)
        assert config <= _relative_imports(arch.config_module), arch.config_module
        brought = config | {arch.config_module} | _relative_imports(arch.model_module)
        assert _closure(arch.model_module) <= brought, arch.model_module
    assert _closure("pipeline_hubheads") <= _relative_imports("pipeline_hubheads")
