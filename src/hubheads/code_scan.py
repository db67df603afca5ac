"""The static scan `hubheads verify` runs on code it does not recognise, before anything executes it.

A list of forbidden names alone is walked past by names built at run time (`getattr(builtins, "ex" + "ec")`,
`importlib.import_module("sub" + "process")`, `__import__` bound to another name), so besides the calls and imports
that run programs, load pickles or open connections, the scan flags every way of reaching code by a name that is not
written in the source: attribute access with a computed name on a module or on the built-ins, dynamic imports,
`globals()`/`vars()`/`locals()` and `sys.modules` lookups, code objects, native code, and decoding of embedded blobs.
It reads the source only (`ast`); it never imports it.

It is a review aid, not a proof: Python can reach anything, and a determined author can hide code from any static
scan. What it guarantees is narrower: each construct listed here is reported with file:line.

[`unrestored_buffers`] reads the same way for a bug rather than a danger: modeling code written for transformers 4.x
that fills a non-persistent buffer in `__init__` and never restores it in `_init_weights`, which transformers >= 5.0
(building models on the meta device) leaves holding uninitialised memory on every load.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

#: Built-ins that run code given as data, or hand out the namespaces that reach everything.
CODE_BUILTINS = {
    "exec": "runs code given as data",
    "eval": "runs code given as data",
    "compile": "builds code from data",
    "__import__": "imports a module named at run time",
    "__builtins__": "reaches every built-in, exec and __import__ included",
    "globals": "looks names up at run time",
    "vars": "looks names up at run time",
    "locals": "looks names up at run time",
    "breakpoint": "starts a debugger",
}
#: Modules a file run through `trust_remote_code` has no business importing, and why.
DANGEROUS_MODULES = {
    **dict.fromkeys(("pickle", "cloudpickle", "dill", "joblib", "shelve"), "loads pickles, which can run any code"),
    **dict.fromkeys(("subprocess", "pty", "multiprocessing"), "runs programs"),
    **dict.fromkeys(("ctypes", "cffi"), "runs native code"),
    "marshal": "loads code objects",
    **dict.fromkeys(
        ("importlib", "imp", "pkgutil", "runpy", "zipimport"), "imports or runs modules named at run time"
    ),
    "builtins": "reaches every built-in, exec and __import__ included",
    **dict.fromkeys(
        ("socket", "ssl", "urllib", "urllib3", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib"),
        "opens network connections",
    ),
    **dict.fromkeys(
        ("base64", "binascii", "codecs", "zlib", "lzma", "bz2", "gzip", "zipfile", "tarfile"),
        "decodes embedded data, the usual way to hide code",
    ),
}
#: Calls (after resolving import aliases) that run programs, load pickles or fetch code.
DANGEROUS_CALLS = {
    "os.system": "runs a shell command",
    "os.popen": "runs a shell command",
    "os.fork": "starts a process",
    "os.execv": "replaces the process",
    "torch.load": "loads a pickle",
    "numpy.load": "can load a pickle",
    "bytes.fromhex": "decodes embedded data, the usual way to hide code",
    "bytearray.fromhex": "decodes embedded data, the usual way to hide code",
    "types.CodeType": "builds a code object",
    "types.FunctionType": "builds a function from a code object",
    "sys.modules": "looks modules up at run time",
    "sys._getframe": "reaches the callers' namespaces",
}
DANGEROUS_CALL_PREFIXES = {
    "os.exec": "replaces the process",
    "os.spawn": "runs a program",
    "os.posix_spawn": "runs a program",
    "torch.hub.": "fetches code",
}
#: Attributes that lead from any object to code, namespaces or every class (the classic sandbox escapes).
DANGEROUS_ATTRIBUTES = {
    "__code__": "reaches a code object",
    "__globals__": "reaches a module's namespace",
    "__builtins__": "reaches every built-in",
    "__subclasses__": "reaches every class",
    "__getattribute__": "looks attributes up by name",
    "f_globals": "reaches a frame's namespace",
    "f_locals": "reaches a frame's namespace",
    "gi_frame": "reaches a frame",
}
#: Built-ins that take an attribute name as a string.
NAME_LOOKUPS = ("getattr", "setattr", "delattr")
#: Built-in names whose attributes or calls the scan resolves like imports.
BUILTIN_ROOTS = {*CODE_BUILTINS, *NAME_LOOKUPS, "bytes", "bytearray"}
DECODE_CODECS = ("rot13", "rot_13", "base64", "hex", "zlib", "bz2", "uu")
#: The modules of in-place initialisers that take the tensor they set first: torch's `nn.init` and transformers 5's
#: `initialization` (imported as `init`), as in `init.copy_(module.inv_freq, ...)`.
INIT_MODULES = ("init", "initialization")


@dataclass(frozen=True)
class Hit:
    """One construct the scan reports.

    Args:
        line (`int`): where it is.
        what (`str`): what the code does there, as the middle of a sentence ("calls os.system(), which ...").
        fatal (`bool`): whether it fails verification; a computed attribute name on an ordinary object is reported
            for review only.
    """

    line: int
    what: str
    fatal: bool = True


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → the dotted name it was imported as (`import os as o` → `{"o": "os"}`)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def dotted_name(node: ast.expr, aliases: Mapping[str, str]) -> str | None:
    """`o.path.join` → `"os.path.join"` given `import os as o`; `None` for anything but names and attributes."""
    attributes = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(attributes)])


def _dangerous_name(name: str) -> str | None:
    """Why reaching the dotted `name` must not happen in remote code, or `None`."""
    builtin = name.split(".", 1)[1] if name.startswith(("builtins.", "__builtins__.")) else name
    if builtin in CODE_BUILTINS:
        return CODE_BUILTINS[builtin]
    if name in DANGEROUS_CALLS:
        return DANGEROUS_CALLS[name]
    if name.split(".")[0] in DANGEROUS_MODULES:
        return DANGEROUS_MODULES[name.split(".")[0]]
    return next((why for prefix, why in DANGEROUS_CALL_PREFIXES.items() if name.startswith(prefix)), None)


def _chain(node: ast.expr) -> tuple[ast.expr, list[str]]:
    """`a.b.c` → (`a`, `["b", "c"]`): the expression an attribute chain starts from, and its attributes."""
    attributes = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    return node, attributes[::-1]


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: Mapping[str, str]):
        self.aliases = aliases
        self.hits: list[Hit] = []

    def report(self, node: ast.AST, what: str, fatal: bool = True) -> None:
        self.hits.append(Hit(getattr(node, "lineno", 0), what, fatal))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:  # relative imports are the repo's own files, scanned on their own
            return
        self._check_import(node, node.module)
        if node.module.split(".")[0] not in DANGEROUS_MODULES:
            for alias in node.names:
                why = _dangerous_name(f"{node.module}.{alias.name}")
                if why:
                    self.report(node, f"imports {node.module}.{alias.name}, which {why}")

    def _check_import(self, node: ast.AST, module: str) -> None:
        root = module.split(".")[0]
        if root in DANGEROUS_MODULES:
            self.report(node, f"imports {module}, which {DANGEROUS_MODULES[root]}")

    def _resolved(self, node: ast.expr) -> str | None:
        """The dotted name of a chain that starts from an import or a built-in name, else `None`."""
        base, _ = _chain(node)
        if not isinstance(base, ast.Name) or not (base.id in self.aliases or base.id in BUILTIN_ROOTS):
            return None
        return dotted_name(node, self.aliases)

    def visit_Name(self, node: ast.Name) -> None:
        # Any reference, not only a call: `run = eval; run(text)` is the same as `eval(text)`.
        name = self._resolved(node)
        why = _dangerous_name(name) if name else None
        if why and (name != node.id or node.id in CODE_BUILTINS):
            self.report(node, f"uses {name}, which {why}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        base, attributes = _chain(node)
        for attribute in attributes:
            if attribute in DANGEROUS_ATTRIBUTES:
                self.report(node, f"reads .{attribute}, which {DANGEROUS_ATTRIBUTES[attribute]}")
        name = self._resolved(node)
        if name and "__dict__" in attributes:
            self.report(node, f"reads {name}, a module's namespace, which looks names up at run time")
        elif name and _dangerous_name(name):
            self.report(node, f"uses {name}, which {_dangerous_name(name)}")
        else:
            self.visit(base)

    def visit_Call(self, node: ast.Call) -> None:
        func: ast.expr | None = node.func
        name = self._resolved(node.func) if isinstance(func, (ast.Name, ast.Attribute)) else None
        if name in NAME_LOOKUPS and isinstance(func, ast.Name):
            self._check_name_lookup(node, name)
        elif name and _dangerous_name(name):
            self.report(node, f"calls {name}(), which {_dangerous_name(name)}")
            func = None  # reported as a call, not again as a name
        elif isinstance(func, ast.Attribute) and func.attr in ("decode", "encode") and node.args:
            codec = node.args[0]
            if isinstance(codec, ast.Constant) and str(codec.value).lower().replace("-", "_") in DECODE_CODECS:
                self.report(node, f"decodes with the {codec.value!r} codec, the usual way to hide code")
        for child in [func, *node.args, *node.keywords]:
            if child is not None:
                self.visit(child)

    def _check_name_lookup(self, node: ast.Call, lookup: str) -> None:
        """`getattr(obj, name)`: with a literal name it is `obj.name`; a computed name is reported, as a failure when
        `obj` is a module, the built-ins or an expression (`__import__("os")`, `sys.modules[...]`), for review when it
        is a variable or an attribute of one (`getattr(self, name)`, `getattr(config, key)`)."""
        if len(node.args) < 2:
            return
        target, name = node.args[0], node.args[1]
        owner = self._resolved(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            why = _dangerous_name(f"{owner}.{name.value}") if owner else None
            why = why or DANGEROUS_ATTRIBUTES.get(name.value)
            if why:
                self.report(node, f"calls {lookup}(..., {name.value!r}), which {why}")
            return
        if owner is not None or not isinstance(target, (ast.Name, ast.Attribute)):
            what = f"calls {lookup}() on {owner or 'an expression'} with an attribute name computed at run time"
            self.report(node, f"{what}, which can reach any function of any module (os.system, exec)")
        else:
            what = f"calls {lookup}() with an attribute name computed at run time"
            self.report(node, f"{what}; check every name it can take", fatal=False)


def scan(text: str, filename: str) -> list[Hit]:
    """Every construct of the module docstring in Python source `text`, in line order.

    Raises:
        `SyntaxError` or `ValueError`: the source does not parse (null bytes raise `ValueError` before Python 3.12).
    """
    tree = ast.parse(text, filename=filename)
    scanner = _Scanner(import_aliases(tree))
    scanner.visit(tree)
    return sorted(set(scanner.hits), key=lambda hit: (hit.line, hit.what))


@dataclass(frozen=True)
class Buffer:
    """A non-persistent buffer that a module fills while it is built and no `_init_weights` restores.

    Args:
        path (`str`): the file that registers it.
        line (`int`): the line of the `register_buffer` call.
        owner (`str`): the class whose method registers it.
        name (`str`): the buffer's name (the source of the expression when it is not a literal).
    """

    path: str
    line: int
    owner: str
    name: str


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    return (node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _called_names(function: ast.AST, *, on_self: bool) -> set[str]:
    """The names of the functions `function` calls: `f(...)` and `x.f(...)`, or only `self.f(...)` with `on_self`."""
    names = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and (
            not on_self or (isinstance(func.value, ast.Name) and func.value.id == "self")
        ):
            names.add(func.attr)
        elif isinstance(func, ast.Name) and not on_self:
            names.add(func.id)
    return names


def _reachable(functions: Mapping[str, list[ast.AST]], roots: set[str], *, on_self: bool) -> set[str]:
    """`roots` and the names of every function defined in the files that they call, transitively."""
    seen: set[str] = set()
    pending = sorted(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for function in functions[name]:
            pending += sorted(_called_names(function, on_self=on_self) - seen)
    return seen


def _attribute_written(target: ast.expr) -> str | None:
    """The attribute a write to `target` sets: `m.inv_freq`, `m.inv_freq.data` and `m.inv_freq[...]` all set
    `inv_freq`."""
    while isinstance(target, ast.Subscript):
        target = target.value
    if isinstance(target, ast.Attribute) and target.attr == "data" and isinstance(target.value, ast.Attribute):
        target = target.value
    return target.attr if isinstance(target, ast.Attribute) else None


def _last_name(node: ast.expr) -> str | None:
    """`nn.init` → `"init"`, `init` → `"init"`."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _written_attributes(function: ast.AST) -> set[str]:
    """The attributes `function` sets: assigned (`m.x = ...`), written in place (`m.x.copy_(...)`, any tensor method
    whose name ends in `_`), passed first to an in-place initialiser (`init.copy_(m.x, ...)`, `nn.init.zeros_(m.x)`,
    `zeros_(m.x)`: a function of `INIT_MODULES` or a bare name), or set by name (`m.register_buffer("x", ...)`,
    `setattr(m, "x", ...)`)."""
    written: set[str | None] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            written.update(_attribute_written(target) for target in node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            written.add(_attribute_written(node.target))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name.endswith("_") and not name.startswith("_"):
                receiver = func.value if isinstance(func, ast.Attribute) else None
                if receiver is None or _last_name(receiver) in INIT_MODULES:
                    written.add(_attribute_written(node.args[0]) if node.args else None)
                else:
                    written.add(_attribute_written(receiver))
            elif name == "register_buffer" and node.args:
                written.add(_literal(node.args[0]))
            elif name == "setattr" and len(node.args) > 1:
                written.add(_literal(node.args[1]))
    return {name for name in written if name}


def _filled_buffers(method: ast.AST) -> Iterator[tuple[int, str | None, str]]:
    """(line, name or `None` when it is not a literal, name as written) of each buffer `method` registers with a
    tensor and `persistent` given as anything but the literal `True` (a false warning rather than a silent miss)."""
    for call in ast.walk(method):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        if call.func.attr != "register_buffer":
            continue
        arguments = dict(zip(("name", "tensor", "persistent"), call.args))
        arguments.update({keyword.arg: keyword.value for keyword in call.keywords if keyword.arg})
        tensor, persistent = arguments.get("tensor"), arguments.get("persistent")
        if persistent is None or (isinstance(persistent, ast.Constant) and persistent.value is True):
            continue
        if isinstance(tensor, ast.Constant) and tensor.value is None:
            continue
        name = arguments.get("name")
        literal = _literal(name)
        yield call.lineno, literal, literal or (ast.unparse(name) if name is not None else "?")


def unrestored_buffers(trees: Mapping[str, ast.Module]) -> list[Buffer]:
    """Every non-persistent buffer the modules of `trees` (file name → parsed source, one repo's files) fill while
    they are built and no `_init_weights` of those files restores, in file and line order.

    transformers >= 5.0 builds a model on the meta device and, after loading the weights, fills the non-persistent
    buffers (which no checkpoint holds) with uninitialised memory, unless `_init_weights` sets them (transformers
    #48892). The rule, by name, so that it stays simple and errs towards a false warning:

    - *filled while built*: a `register_buffer(name, tensor, persistent=<anything but True>)` with a tensor, in an
      `__init__` or in a method an `__init__` calls as `self.method(...)` (directly or through such methods;
      matched by method name across the files, as rotary embeddings' `self._set_cos_sin_cache(...)` is);
    - *restored*: some function named `_init_weights`, or a function defined in the files that one calls (by name,
      transitively: `module._set_cos_sin_cache(...)`, `self._init_rope(module)`), sets an attribute of that name
      (see `_written_attributes`). Which class the attribute belongs to is not checked.

    A buffer whose name is not a string literal is never counted as restored.
    """
    functions: dict[str, list[ast.AST]] = {}
    for tree in trees.values():
        for definition in _functions(tree):
            functions.setdefault(definition.name, []).append(definition)
    building = _reachable(functions, {"__init__"}, on_self=True)
    restoring = _reachable(functions, {"_init_weights"}, on_self=False)
    restored = {attribute for name in restoring for body in functions[name] for attribute in _written_attributes(body)}
    found = []
    for path, tree in trees.items():
        for owner in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
            for method in owner.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) and method.name in building:
                    found += [
                        Buffer(path, line, owner.name, shown)
                        for line, name, shown in _filled_buffers(method)
                        if name is None or name not in restored
                    ]
    return sorted(set(found), key=lambda buffer: (buffer.path, buffer.line, buffer.name))
