"""`hubheads verify`: a doctor for an exported repo, before and after pushing it.

[`verify_repo`] checks a folder (or a Hub repo id, through the local cache or the Hub) the way a consumer will meet
it: config.json and its decision thresholds, the classes `custom_pipelines` and `auto_map` point at, which Python
files are byte-identical to a released hubheads version (every other one is unknown code: a failure unless allowed,
and scanned by `hubheads.code_scan` for danger and for buffers transformers 5 leaves uninitialised; another repo's
code that `auto_map` points at is read for those buffers too, when the local cache holds it), symlinks that leave the
repo, safetensors-only weights, tokenizer and model card, and finally, only when all of that passed, a smoke run of
the stock `pipeline(..., trust_remote_code=True)` in a fresh, offline interpreter without credentials.
A review aid, not a sandbox.

The sha256 of the modeling files of every released hubheads version live in `hubheads/data/released_files.json`.
After editing modeling/ (or at a release), record the current ones with

```bash
python -m hubheads.verify --record
```
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from hubheads import code_scan
from hubheads.architectures import ARCHITECTURES
from hubheads.errors import InvalidInputError
from hubheads.modeling.configuration_hubheads import THRESHOLD_KEYS, DecisionThresholds
from hubheads.offline_hub import install_in_offline_cache, run_stock_pipelines
from hubheads.output_checks import numbers_in
from hubheads.release_check import ReleaseReport, check_releases, consumer_runs, known_cause, write_result
from hubheads.repo_files import (
    MULTI_LABEL,
    POSTPROCESSING_FILE,
    TOKENIZER_FILES,
    is_legacy_weights,
    label_names,
    read_json,
    sha256_bytes,
    write_json,
)
from hubheads.resolve import cached_snapshot, resolve_checkpoint
from hubheads.sources import MIN_GTE_TRANSFORMERS, NEW_FORMAT, check_trusted, class_references, code_repos, pin_advice

OK, WARN, FAIL = "ok", "warn", "fail"
RELEASED_FILES = Path(__file__).resolve().parent / "data" / "released_files.json"
RECORD_COMMAND = "python -m hubheads.verify --record"

SMOKE_TEXTS = ["This is a short test sentence.", "Another example to check that the model runs.", "ciao mondo"]
SMOKE_BIOS = ["A short author bio.", "", "Another author."]
#: What `--transformers` runs besides the smoke call: inputs of many lengths, one batch (padding exercised).
RELEASE_TEXTS = [
    "ok",
    "Thanks!",
    "I do not agree with this at all.",
    "grazie mille, sono d'accordo con te",
    "no estoy seguro de que esto sea verdad",
    "This is a longer post, with a few clauses, some punctuation; and words the vocabulary may not know: zyxt.",
]


@dataclass
class Finding:
    """One result of one check.

    Args:
        check (`str`): the check's short name, e.g. `"thresholds"`, `"weights"`, `"smoke-run"`.
        status (`str`): `"ok"`, `"warn"` or `"fail"`.
        message (`str`): what was found and, for a warning or a failure, what to do.
        path (`str`, *optional*): the file concerned, relative to the repo.
    """

    check: str
    status: str
    message: str
    path: str | None = None


@dataclass
class VerifyReport:
    """Everything [`verify_repo`] found.

    Args:
        target (`str`): what the user passed (a folder or a repo id).
        folder (`Path`): the local folder checked (the cached snapshot for a repo id).
        findings (`list[Finding]`): the results, in the order the checks ran.
        releases ([`ReleaseReport`], *optional*): the run on other transformers releases (`transformers=`).
    """

    target: str
    folder: Path
    findings: list[Finding] = field(default_factory=list)
    releases: ReleaseReport | None = None

    @property
    def ok(self) -> bool:
        """Whether no check failed (warnings allowed)."""
        return not any(finding.status == FAIL for finding in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for `hubheads verify --json`)."""
        return {
            "target": self.target,
            "folder": str(self.folder),
            "ok": self.ok,
            "findings": [asdict(finding) for finding in self.findings],
            "releases": self.releases.to_dict() if self.releases else None,
        }

    def format(self) -> str:
        """One line per finding, then a summary line."""
        width = max((len(finding.check) for finding in self.findings), default=0)
        lines = [
            f"  {'FAIL' if finding.status == FAIL else finding.status:<5} {finding.check:<{width}}  {finding.message}"
            for finding in self.findings
        ]
        failed = list(dict.fromkeys(finding.check for finding in self.findings if finding.status == FAIL))
        warnings = sum(finding.status == WARN for finding in self.findings)
        if failed:
            lines.append(f"FAIL: {self.target} failed {', '.join(failed)} ({warnings} warning(s)); fix the above.")
        else:
            lines.append(f"OK: {self.target} passed every check ({warnings} warning(s)).")
        if self.releases is not None:
            lines[-1:-1] = ["", self.releases.format(), ""]
        return "\n".join(lines)


def modeling_file_hashes() -> dict[str, str]:
    """The sha256 of every file hubheads writes into repos (`hubheads.modeling/*.py`, not `__init__.py`)."""
    package = resources.files("hubheads.modeling")
    return {
        entry.name: sha256_bytes(entry.read_bytes())
        for entry in sorted(package.iterdir(), key=lambda entry: entry.name)
        if entry.name.endswith(".py") and entry.name != "__init__.py"
    }


def load_released_files() -> dict[str, dict[str, str]]:
    """`{version: {filename: sha256}}` of every recorded hubheads release."""
    return read_json(RELEASED_FILES)


def record_release(version: str | None = None) -> Path:
    """Record the current modeling files' sha256 under `version` (defaults to `hubheads.__version__`).

    Run it (`python -m hubheads.verify --record`) after editing modeling/: `verify` trusts a repo's hubheads files
    only when they match a recorded version. An entry already recorded for `version` is replaced.

    Returns:
        `Path`: the file written.
    """
    from hubheads import __version__

    released = load_released_files() if RELEASED_FILES.is_file() else {}
    released[version or __version__] = modeling_file_hashes()
    write_json(RELEASED_FILES, released)
    return RELEASED_FILES


def scan_python_source(text: str, filename: str) -> list[Finding]:
    """Scan Python source for code that must not run through `trust_remote_code` (`hubheads.code_scan`).

    One `"fail"` per construct that runs programs or native code, loads pickles, opens connections, or reaches code
    by a name built at run time (dynamic imports, `getattr` with a computed name on a module or the built-ins,
    `globals()`, code objects, decoded blobs), through import aliases too; one `"warn"` per `getattr`/`setattr` with a
    computed name on an ordinary object. Source that does not parse is a failure as well. An empty list means nothing
    was found.

    Args:
        text (`str`): the source.
        filename (`str`): the file's name (relative to the repo), used in the messages and as `Finding.path`.
    """
    try:
        hits = code_scan.scan(text, filename)
    except SyntaxError as error:
        message = f"{filename}:{error.lineno} is not valid Python ({error.msg}); transformers cannot import it either."
        return [Finding("code-safety", FAIL, message, filename)]
    except ValueError as error:  # null bytes (a SyntaxError from Python 3.12 on)
        return [Finding("code-safety", FAIL, f"{filename} is not valid Python ({error}).", filename)]
    return [
        Finding(
            "code-safety", FAIL, f"{filename}:{hit.line} {hit.what}; remove it, or do not trust this repo.", filename
        )
        if hit.fatal
        else Finding("code-safety", WARN, f"{filename}:{hit.line} {hit.what}.", filename)
        for hit in hits
    ]


@dataclass
class _Repo:
    """The folder under check, what the checks share, and each Python file parsed once.

    `root` is the folder symlinks may point into: the folder itself, or for a Hub cache snapshot (whose files are
    links to `../../blobs/`) the repo's cache folder. `links` are the repo's symlinks; `unknown` maps each Python file
    that is not a released hubheads file to why (set by the hubheads-files check).
    """

    folder: Path
    files: list[str]
    root: Path
    links: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)
    _trees: dict[str, ast.Module | None] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: Path, root: Path | None = None) -> _Repo:
        """List the files as `upload_folder` would send them, without following links to folders."""
        files, links = [], []
        for parent, folders, names in os.walk(folder):
            relative = Path(parent).relative_to(folder)
            folders[:] = [name for name in folders if not _ignored((relative / name).parts)]
            for name in sorted(folders + names):
                path = Path(parent) / name
                if path.is_symlink():
                    links.append((relative / name).as_posix())
                if name in names and path.is_file() and not _ignored((relative / name).parts):
                    files.append((relative / name).as_posix())
        return cls(folder, sorted(files), (root or folder).resolve(), sorted(links))

    @property
    def python_files(self) -> list[str]:
        return [name for name in self.files if name.endswith(".py")]

    def source(self, name: str) -> str:
        """The text of a Python file; undecodable bytes become U+FFFD, so the parse fails where they stand."""
        return (self.folder / name).read_bytes().decode("utf-8", errors="replace")

    def tree(self, name: str) -> ast.Module | None:
        """The parsed file, or `None` when it does not parse (the code-safety check reports that)."""
        if name not in self._trees:
            try:
                self._trees[name] = ast.parse(self.source(name), filename=name)
            except (SyntaxError, ValueError):
                self._trees[name] = None
        return self._trees[name]


def _ignored(parts: tuple[str, ...]) -> bool:
    """Files `upload_folder` leaves out: git metadata and `huggingface_hub`'s local download cache."""
    return ".git" in parts or parts[:2] == (".cache", "huggingface")


def _check_config(repo: _Repo) -> list[Finding]:
    if "config.json" not in repo.files:
        return [Finding("config", FAIL, "config.json is missing; re-export the model with `hubheads export`.")]
    try:
        config = read_json(repo.folder / "config.json")
    except ValueError as error:
        return [Finding("config", FAIL, str(error), "config.json")]
    try:
        repo.labels = label_names(config)
    except (TypeError, ValueError, KeyError) as error:
        message = (
            f"`id2label`/`num_labels` in config.json are malformed ({type(error).__name__}: {error}); id2label must "
            'map integer ids to label names, e.g. {"0": "negative", "1": "positive"}.'
        )
        return [Finding("config", FAIL, message, "config.json")]
    repo.config = config
    kind = repo.config.get("problem_type") or "single-label"
    message = f"config.json: model_type {repo.config.get('model_type')!r}, {len(repo.labels)} labels, {kind}."
    return [Finding("config", OK, message, "config.json")]


def _check_thresholds(repo: _Repo) -> list[Finding]:
    config = repo.config or {}
    try:
        thresholds = DecisionThresholds.from_dict(config, label_names=repo.labels)
        thresholds.check_applies_to(config.get("problem_type"), len(repo.labels))
    except ValueError as error:
        return [Finding("thresholds", FAIL, str(error), "config.json")]
    declared = "text-classification" in (config.get("custom_pipelines") or {})
    if not thresholds.configured:
        if config.get("problem_type") == MULTI_LABEL and not declared:
            message = (
                "Multi-label model without the hubheads pipeline: the stock pipeline returns only the top label; "
                "re-export with `hubheads export` to ship label sets."
            )
            return [Finding("thresholds", WARN, message, "config.json")]
        return [Finding("thresholds", OK, "No decision thresholds set: the stock decisions apply.", "config.json")]
    if not declared:
        message = (
            "config.json sets decision thresholds but declares no `custom_pipelines`, so consumers silently get the "
            "stock 0.5 decisions; re-export with `hubheads export`."
        )
        return [Finding("thresholds", FAIL, message, "config.json")]
    findings = [Finding("thresholds", OK, f"Valid decision thresholds: {thresholds.to_dict()}.", "config.json")]
    if POSTPROCESSING_FILE in repo.files:
        try:
            external = DecisionThresholds.from_dict(read_json(repo.folder / POSTPROCESSING_FILE))
        except ValueError as error:
            return [Finding("thresholds", FAIL, f"{POSTPROCESSING_FILE}: {error}", POSTPROCESSING_FILE)]
        differing = [key for key in THRESHOLD_KEYS if thresholds.to_dict().get(key) != external.to_dict().get(key)]
        if differing:
            message = (
                f"{POSTPROCESSING_FILE} disagrees with config.json on {', '.join(differing)}, so tools that read it "
                "decide differently; re-export with `hubheads export`."
            )
            findings.append(Finding("thresholds", WARN, message, POSTPROCESSING_FILE))
    return findings


def _follow_relative_imports(repo: _Repo, roots: list[str]) -> tuple[set[str], list[Finding]]:
    """Follow the relative imports of `roots` as transformers' loader does: the files it would load, and a failure
    for each import that does not name a file of the repo."""
    findings: list[Finding] = []
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        tree = repo.tree(name) if name not in seen else None
        seen.add(name)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            if node.level > 1 or not node.module:
                message = (
                    f"{name}:{node.lineno} uses `from {'.' * node.level}{node.module or ''} import ...`, which "
                    "transformers' remote-code loader does not copy along; import siblings as `from .module import X`."
                )
                findings.append(Finding("remote-code", FAIL, message, name))
                continue
            imported = f"{node.module.replace('.', '/')}.py"
            if imported in repo.files:
                pending.append(imported)
            else:
                message = f"{name}:{node.lineno} imports .{node.module}, but {imported} is not in the repo; add it."
                findings.append(Finding("remote-code", FAIL, message, name))
    return seen, findings


def _loaded_files(repo: _Repo) -> set[str]:
    """The repo's files that `trust_remote_code` loads: those `custom_pipelines`/`auto_map` name, and their relative
    imports."""
    named = {
        f"{reference.split('.')[0]}.py"
        for _, reference in class_references(repo.config or {})
        if isinstance(reference, str) and "--" not in reference
    }
    return _follow_relative_imports(repo, sorted(named & set(repo.files)))[0]


def _check_remote_code(repo: _Repo) -> list[Finding]:
    config = repo.config or {}
    for key in ("custom_pipelines", "auto_map"):
        if not isinstance(config.get(key) or {}, Mapping):
            message = (
                f"`{key}` in config.json must be an object, got {config[key]!r}; re-export with `hubheads export`."
            )
            return [Finding("remote-code", FAIL, message, "config.json")]
    references = class_references(config)
    if not references:
        arch = ARCHITECTURES.get(config.get("model_type", ""))
        if arch is not None:
            message = (
                f"model_type {arch.model_type!r} is a hubheads architecture, but config.json has no `auto_map`, so "
                "consumers without hubheads cannot load it; re-export with `hubheads export`."
            )
            return [Finding("remote-code", FAIL, message, "config.json")]
        return [Finding("remote-code", OK, "No remote code declared: stock transformers classes load the repo.")]
    findings: list[Finding] = []
    roots: list[str] = []
    cross_repo: list[str] = []
    for where, reference in references:
        if not isinstance(reference, str) or reference.split("--")[-1].count(".") != 1:
            message = f"{where} in config.json must be a 'module.Class' string, got {reference!r}; fix config.json."
            findings.append(Finding("remote-code", FAIL, message, "config.json"))
            continue
        if "--" in reference:
            code_repo = reference.split("--")[0]
            if code_repo in cross_repo:
                continue
            cross_repo.append(code_repo)
            message = (
                f"{where} ({reference}) runs code from another repo, {code_repo}, which this check does not scan and "
                f"which consumers fetch at its newest commit unless they pin it. {pin_advice(config, code_repo)}"
            )
            findings.append(Finding("remote-code", WARN, message, "config.json"))
            continue
        module, class_name = reference.split(".")
        filename = f"{module}.py"
        if filename not in repo.files:
            message = f"{where} names {reference}, but {filename} is not in the repo; re-export or add the file."
            findings.append(Finding("remote-code", FAIL, message, "config.json"))
            continue
        roots.append(filename)
        tree = repo.tree(filename)
        defined = {node.name for node in tree.body if isinstance(node, ast.ClassDef)} if tree else set()
        if tree and class_name not in defined:
            message = f"{where} names {reference}, but {filename} defines no class {class_name}; fix config.json."
            findings.append(Finding("remote-code", FAIL, message, filename))
    findings += _follow_relative_imports(repo, sorted(set(roots)))[1]
    if not any(finding.status == FAIL for finding in findings):
        message = f"custom_pipelines and auto_map name {len(references)} class(es), each defined in the repo's files."
        findings.insert(0, Finding("remote-code", OK, message, "config.json"))
    return findings


def _newest(versions: list[str]) -> str:
    from packaging.version import InvalidVersion, Version

    def key(version: str) -> tuple[int, Any]:
        try:
            return (1, Version(version))
        except InvalidVersion:
            return (0, version)

    return max(versions, key=key)


def _check_hubheads_files(repo: _Repo) -> list[Finding]:
    versions_of: dict[str, dict[str, list[str]]] = {}  # filename → sha256 → versions that shipped it
    for version, files in load_released_files().items():
        for filename, digest in files.items():
            versions_of.setdefault(filename, {}).setdefault(digest, []).append(version)
    findings: list[Finding] = []
    matched: dict[str, list[str]] = {}
    for name in repo.python_files:
        known = versions_of.get(PurePosixPath(name).name)
        versions = known.get(sha256_bytes((repo.folder / name).read_bytes())) if known else None
        if versions:
            matched[name] = versions
        elif known:
            newest = _newest([version for shipped in known.values() for version in shipped])
            repo.unknown[name] = f"differs from the file of that name in every hubheads release up to {newest}"
        else:
            repo.unknown[name] = "is not a hubheads file"
    by_version: dict[str, list[str]] = {}
    for name, versions in matched.items():
        by_version.setdefault(_newest(versions), []).append(name)
    for version, names in sorted(by_version.items()):
        findings.insert(0, Finding("hubheads-files", OK, f"{', '.join(names)} match hubheads {version}."))
    if matched and not set.intersection(*(set(versions) for versions in matched.values())):
        message = (
            f"The hubheads files come from different versions ({', '.join(sorted(by_version))}) and may not work "
            "together; re-export with one hubheads version."
        )
        findings.append(Finding("hubheads-files", WARN, message))
    if not repo.python_files:
        findings.append(Finding("hubheads-files", OK, "The repo ships no Python files."))
    return findings


def _check_unknown_code(repo: _Repo, allowed: bool) -> list[Finding]:
    """Every Python file that is not byte-identical to a released hubheads file fails, unless the user allowed it."""
    loaded = _loaded_files(repo)
    findings: list[Finding] = []
    for name, why in repo.unknown.items():
        runs = (
            "runs when a consumer loads the repo with trust_remote_code"
            if name in loaded
            else "does not run on load, but ships to every consumer"
        )
        if allowed:
            message = f"{name} {why}: code verify does not recognise ({runs}); allowed by --allow-unknown-code."
            findings.append(Finding("unknown-code", WARN, message, name))
        else:
            message = (
                f"{name} {why}: code verify does not recognise, which {runs}. Re-export with `hubheads export` if it "
                "should be hubheads' own file; otherwise read it, and pass --allow-unknown-code "
                "(allow_unknown_code=True) to accept it and let the smoke run execute it."
            )
            findings.append(Finding("unknown-code", FAIL, message, name))
    return findings


def _check_links(repo: _Repo) -> list[Finding]:
    """A symlink must stay inside the repo: `upload_folder` sends the content of whatever it points at."""
    findings = []
    for name in repo.links:
        target = (repo.folder / name).resolve()
        if not target.is_relative_to(repo.root):
            message = (
                f"{name} is a symlink to {target}, outside the repo: an upload would send that file's content. "
                "Replace it with a copy of what the repo should hold, or delete it."
            )
            findings.append(Finding("symlinks", FAIL, message, name))
        elif not target.exists():
            findings.append(Finding("symlinks", FAIL, f"{name} is a symlink to nothing ({target}); delete it.", name))
    if not findings and repo.links:
        findings.append(Finding("symlinks", OK, f"{len(repo.links)} symlink(s), each to a file inside the repo."))
    return findings


def _check_weights(repo: _Repo) -> list[Finding]:
    from safetensors import SafetensorError, safe_open

    findings = [
        Finding(
            "weights",
            FAIL,
            f"{name} is a pickle-format (or non-safetensors) weights file, which can run code when loaded; delete it "
            "and ship *.safetensors only.",
            name,
        )
        for name in repo.files
        if is_legacy_weights(name)
    ]
    shards = [name for name in repo.files if name.endswith(".safetensors")]
    if not shards:
        message = "No *.safetensors weights; save the model with save_pretrained and re-export with `hubheads export`."
        findings.append(Finding("weights", FAIL, message))
    tensors = 0
    for name in shards:
        try:
            with safe_open(str(repo.folder / name), framework="np") as handle:
                tensors += len(list(handle.keys()))
        except (SafetensorError, OSError) as error:
            message = f"{name} cannot be read as safetensors ({error}); re-export or re-upload it."
            findings.append(Finding("weights", FAIL, message, name))
    for index in (name for name in repo.files if name.endswith(".safetensors.index.json")):
        try:
            weight_map = read_json(repo.folder / index).get("weight_map")
            if not isinstance(weight_map, Mapping):
                raise InvalidInputError(f"{index} has no `weight_map` object.")
        except ValueError as error:
            findings.append(Finding("weights", FAIL, f"{error} Re-save the model with save_pretrained.", index))
            continue
        folder = PurePosixPath(index).parent
        for shard in sorted(set(map(str, weight_map.values()))):
            if (folder / shard).as_posix() not in repo.files:
                message = f"{index} names the shard {shard}, which is not in the repo; upload it or re-save the model."
                findings.append(Finding("weights", FAIL, message, index))
    if not findings:
        message = f"Safetensors only: {', '.join(shards)} ({tensors} tensors) open cleanly."
        findings.append(Finding("weights", OK, message))
    return findings


def _check_code_safety(repo: _Repo) -> list[Finding]:
    """Scan the code verify does not recognise (a released hubheads file is trusted by its sha256)."""
    findings = []
    for name in repo.unknown:
        findings += scan_python_source(repo.source(name), name)
    if not findings:
        scanned = f"{len(repo.unknown)} unknown Python file(s) scanned" if repo.unknown else "No unknown code to scan"
        message = f"{scanned}: no exec/eval, dynamic imports or names, pickle, subprocess, native or network code."
        findings.append(Finding("code-safety", OK, message))
    return findings


#: The transformers releases that leave a non-persistent buffer uninitialised unless `_init_weights` restores it.
BUFFER_RELEASES = "transformers >= 5.0"
BUFFER_EFFECT = (
    f"{BUFFER_RELEASES} builds models on the meta device and leaves such a buffer holding uninitialised memory on "
    "every load (garbage indices, NaN scores; transformers issue #48892)"
)


def _unrestored_buffers(repo: _Repo, names: list[str]) -> list[code_scan.Buffer]:
    trees = {name: tree for name in names if (tree := repo.tree(name)) is not None}
    return code_scan.unrestored_buffers(trees)


def _buffer_route(config: Mapping[str, Any]) -> str:
    """The ways out for a repo whose `auto_map` runs another repo's code that leaves buffers uninitialised."""
    native = (
        "re-export the checkpoint with `hubheads export` without --keep-remote-code (hubheads' own implementation of "
        "the architecture, the same weights, no code of that repo, every transformers release; or --native for "
        f"transformers' own `gte`, transformers >= {MIN_GTE_TRANSFORMERS}), or "
        if config.get("model_type") == NEW_FORMAT
        else ""
    )
    return (
        f"{native}copy its files into this repo with each buffer restored in `_init_weights` and point `auto_map` at "
        "them (verify then checks them as the repo's own code)"
    )


def _check_buffers(repo: _Repo) -> list[Finding]:
    """Code that fills a non-persistent buffer while the model is built and never restores it in `_init_weights`
    (`code_scan.unrestored_buffers`): a failure in the repo's own unknown code that a load runs (a warning in a file no
    load runs); a warning in the code of another repo that `auto_map` points at and the local cache holds, since the
    author cannot fix it there."""
    findings = []
    loaded = _loaded_files(repo)
    for buffer in _unrestored_buffers(repo, list(repo.unknown)):
        runs = buffer.path in loaded
        effect = (
            "so the repo does not load there"
            if runs
            else "so any load that uses it breaks there (no load of this repo runs the file today)"
        )
        message = (
            f"{buffer.path}:{buffer.line} {buffer.owner} registers the non-persistent buffer `{buffer.name}` while "
            f"it is built, and no `_init_weights` of the repo restores it: {BUFFER_EFFECT}, {effect}. Set it in "
            f"`_init_weights` (`module.{buffer.name}.copy_(...)`), compute it in `forward` instead, or register it "
            "with `persistent=True` and save it with the weights."
        )
        findings.append(Finding("buffer-init", FAIL if runs else WARN, message, buffer.path))
    if repo.unknown and not findings:
        message = (
            f"{len(repo.unknown)} unknown Python file(s) read: every non-persistent buffer filled in `__init__` is "
            "restored in `_init_weights`."
        )
        findings.append(Finding("buffer-init", OK, message))
    config = repo.config or {}
    return findings + [_check_code_repo_buffers(config, code_repo) for code_repo in code_repos(config)]


def _check_code_repo_buffers(config: Mapping[str, Any], code_repo: str) -> Finding:
    """`_check_buffers` on the code of `code_repo`, which `auto_map` points at, from the local cache."""
    snapshot = cached_snapshot(code_repo)
    code = _Repo.read(snapshot) if snapshot else None
    if snapshot is None or code is None or not code.python_files:
        where = "the local Hugging Face cache" if snapshot is None else f"its cached snapshot {snapshot.name[:12]}"
        message = (
            f"Did not read {code_repo}'s code, which config.json's auto_map runs, for buffers that {BUFFER_RELEASES} "
            f"leaves uninitialised: it has no Python files in {where}; fetch it after reading it "
            f"(`hf download {code_repo}`) and verify again."
        )
        return Finding("buffer-init", WARN, message, "config.json")
    buffers = _unrestored_buffers(code, code.python_files)
    where = f"{code_repo}'s code (cached commit {snapshot.name[:12]}), which config.json's auto_map runs,"
    if not buffers:
        message = (
            f"{where} restores in `_init_weights` every non-persistent buffer it fills in `__init__` "
            f"({len(code.python_files)} Python file(s) read)."
        )
        return Finding("buffer-init", OK, message, "config.json")
    sites = ", ".join(f"{buffer.path}:{buffer.line} {buffer.owner}.{buffer.name}" for buffer in buffers)
    message = (
        f"{where} registers non-persistent buffers while the model is built that no `_init_weights` restores "
        f"({sites}): {BUFFER_EFFECT}. So this repo will not run for consumers on {BUFFER_RELEASES}, and that code is "
        f"not this repo's to fix: {_buffer_route(config)}."
    )
    return Finding("buffer-init", WARN, message, "config.json")


def _check_tokenizer_and_card(repo: _Repo) -> list[Finding]:
    present = [name for name in TOKENIZER_FILES if name in repo.files]
    if present:
        findings = [Finding("tokenizer", OK, f"Tokenizer present ({', '.join(present)}).")]
    else:
        message = (
            "No tokenizer (tokenizer.json or tokenizer_config.json); re-export with `hubheads export --tokenizer`."
        )
        findings = [Finding("tokenizer", FAIL, message)]
    if "README.md" in repo.files:
        findings.append(Finding("model-card", OK, "Model card present.", "README.md"))
    else:
        findings.append(Finding("model-card", WARN, "No model card (README.md); run `hubheads card`."))
    return findings


def _smoke_calls(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {}
    if config.get("use_bio"):
        kwargs["bio"] = SMOKE_BIOS
    if config.get("thresholds_by_lang"):
        kwargs["lang"] = next(iter(config["thresholds_by_lang"]))
    return [{"inputs": SMOKE_TEXTS, "kwargs": kwargs}]


def _check_smoke_output(output: Mapping[str, Any], config: Mapping[str, Any], labels: list[str]) -> list[str]:
    """What is wrong with the stock pipeline's output, as sentences (empty when nothing is)."""
    problems = []
    impl = ((config.get("custom_pipelines") or {}).get("text-classification") or {}).get("impl")
    if impl:
        expected = impl.split("--")[-1].rsplit(".", 1)[0]
        if not output["pipeline_module"].endswith(expected):
            problems.append(f"it ran {output['pipeline_module']}, not the repo's {expected}")
    (results,) = output["results"]
    if not isinstance(results, list) or len(results) != len(SMOKE_TEXTS):
        return problems + [f"it returned {results!r} for {len(SMOKE_TEXTS)} inputs"]
    multi_label = config.get("problem_type") == MULTI_LABEL and impl
    for result in results:
        if multi_label and not isinstance(result, list):
            problems.append(f"a multi-label model must return a list of labels per input, got {result!r}")
            continue
        items = [item if isinstance(item, Mapping) else {"label": item} for item in _listed(result)]
        unknown = [item.get("label") for item in items if item.get("label") not in labels]
        if unknown:
            problems.append(f"it returned labels {unknown} that are not in id2label {labels}")
        if config.get("model_type") == "residual_type_fusion" and not all(item.get("tasks") for item in items):
            problems.append(f"a multi-task model must return `tasks` for every head, got {result!r}")
    return problems


def _cached_code(config: Mapping[str, Any]) -> tuple[dict[str, Path], list[str]]:
    """The other repos whose code config.json's `auto_map` runs, as their snapshots in the local cache, and those the
    cache does not hold."""
    found = {code_repo: cached_snapshot(code_repo) for code_repo in code_repos(config)}
    return {repo: path for repo, path in found.items() if path is not None}, [r for r, p in found.items() if p is None]


def _smoke_run(repo: _Repo, name: str, python: str | None) -> Finding:
    config, labels = repo.config or {}, repo.labels
    repo_id = "hubheads-verify/" + (re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")[:96].strip("-") or "repo")
    code, missing = _cached_code(config)
    if missing:
        message = (
            f"Skipped the smoke run: the repo runs code from {', '.join(missing)}, which is not in the local Hugging "
            f"Face cache; fetch it after reading it (`hf download {missing[0]}`) and verify again."
        )
        return Finding("smoke-run", WARN, message)
    with tempfile.TemporaryDirectory(prefix="hubheads-verify-") as hf_home:
        install_in_offline_cache(repo.folder, repo_id, cache_dir=Path(hf_home) / "hub")
        for code_repo, snapshot in code.items():  # the code repo as the consumer's cache would hold it
            install_in_offline_cache(snapshot, code_repo, cache_dir=Path(hf_home) / "hub")
        # Two loads: as a consumer loads the repo, then with uninitialised memory filled (NaN, the largest integer),
        # so that a model that reads memory its load never set fails here every time, not only when unlucky.
        try:
            output, filled = run_stock_pipelines(hf_home, consumer_runs(repo_id, _smoke_calls(config)), python=python)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            tail = "\n".join(str(error).strip().splitlines()[-5:])
            return Finding("smoke-run", FAIL, f"The stock pipeline failed to run the repo offline:\n{tail}")
        except json.JSONDecodeError:
            message = "The stock pipeline printed to stdout while running the repo (remote code must not print)."
            return Finding("smoke-run", FAIL, message)
    version = output["transformers_version"]
    unstable = _unstable_outputs(output, filled)
    if unstable:
        return Finding("smoke-run", FAIL, f"The stock pipeline (transformers {version}) {unstable}")
    problems = _check_smoke_output(output, config, labels)
    if problems:
        message = f"The stock pipeline (transformers {version}) ran, but {'; '.join(problems)}."
        return Finding("smoke-run", FAIL, message)
    message = (
        f"The stock pipeline ran {output['pipeline_class']} offline with trust_remote_code under transformers "
        f"{version}; labels {sorted({str(item) for item in _returned_labels(output['results'][0])})}."
    )
    return Finding("smoke-run", OK, message)


def _unstable_outputs(output: Mapping[str, Any], filled: Mapping[str, Any]) -> str:
    """Why the smoke run's outputs cannot be trusted, as the end of a sentence (empty when they can): non-finite
    scores, or a load with uninitialised memory filled that fails or scores differently (naming the buffers)."""

    buffers = filled.get("suspect_buffers") or []
    cause = f" Uninitialised buffers after loading: {', '.join(buffers)}." if buffers else ""
    route = (
        " The model's code must set these buffers in `_init_weights` (transformers 5 builds models on the meta device "
        "and refills non-persistent buffers only there); the `buffer-init` check names the lines."
        if buffers
        else ""
    )
    for run, when in ((output, ""), (filled, " when the load's uninitialised memory was filled")):
        if "error" in run:
            known = known_cause(run["error"] + cause)
            return f"failed{when} ({run['error']}).{cause}{route}" + (f" Known cause: {known}" if known else "")
        if not all(math.isfinite(score) for score in numbers_in(run["results"])):
            return f"gave NaN or infinite scores{when}.{cause}{route}"
    scores, other = list(numbers_in(output["results"])), list(numbers_in(filled["results"]))
    if len(other) != len(scores) or any(abs(a - b) > 1e-5 for a, b in zip(scores, other)):
        return (
            "gave other scores when the load's uninitialised memory was filled: the model depends on memory its load "
            f"does not set.{cause}{route}"
        )
    return ""


def _listed(result: Any) -> list[Any]:
    """The items of one input's result: a list (multi-label, `top_k`) or one dict."""
    return result if isinstance(result, list) else [result]


def _returned_labels(results: list[Any]) -> list[str]:
    return [item["label"] for result in results for item in _listed(result)]


def _resolve_target(target: str | os.PathLike, revision: str | None) -> tuple[Path, str, Path]:
    """The local folder of `target` (every file: verify checks them all), a name for it, and the folder its symlinks
    may point into (for a cached snapshot, the repo's cache folder, which holds the blobs its files link to)."""
    if not isinstance(target, (str, os.PathLike)):
        raise InvalidInputError(
            f"target must be a folder path or a repo id like 'org/name', got {type(target).__name__}."
        )
    folder = resolve_checkpoint(target, revision, option="target", ignore_patterns=None)
    if Path(os.fspath(target)).expanduser().is_dir():
        return folder, folder.resolve().name, folder
    return folder, os.fspath(target).split("/")[-1], folder.parents[1]


def verify_repo(
    target: str | os.PathLike,
    *,
    smoke: bool = True,
    python: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    allow_unknown_code: bool = False,
    transformers: Sequence[str] | None = None,
) -> VerifyReport:
    """Check an exported repo folder, or a Hub repo, before and after pushing it.

    Checks, each reported as one or more [`Finding`]s: `config` (config.json is valid), `thresholds` (valid, and
    declared with the pipeline that applies them), `remote-code` (`custom_pipelines` and `auto_map` name classes
    defined in the repo's files, whose relative imports are in the repo too), `hubheads-files` (which files are
    byte-identical to a released hubheads version), `unknown-code` (every other Python file), `symlinks` (none
    points outside the repo), `weights` (safetensors only, readable, every indexed shard present), `code-safety` (the
    scan of the unknown code: no exec/eval, dynamic imports or computed names on modules, pickle, subprocess,
    native or network code), `buffer-init` (no non-persistent buffer filled in `__init__` goes unrestored in
    `_init_weights`, which transformers >= 5.0 would leave uninitialised: a failure in the unknown code a load runs, a
    warning in another repo's code that `auto_map` points at, read from the local cache), `tokenizer`, `model-card`
    and, last, `smoke-run`.

    It is a review aid, not a sandbox: the scan cannot prove code harmless, and the smoke run executes the repo's
    code (only when every static check passed) in a child process that has no credentials in its environment, an
    empty throwaway `HOME` and the Hub offline, but can still read what the user can.

    Args:
        target (`str` or `os.PathLike`):
            An existing folder, or a Hub repo id (`"org/name"`) fetched with `huggingface_hub.snapshot_download`
            (with `HF_HUB_OFFLINE=1`, the cached snapshot).
        smoke (`bool`, *optional*, defaults to `True`):
            Run the stock `pipeline("text-classification", trust_remote_code=True)` on a few texts in a fresh,
            offline interpreter with hubheads blocked (`offline_hub.offline_environment`). Skipped (with a warning)
            when a static check failed, so code verify does not recognise never runs unless it was allowed.
        python (`str`, *optional*):
            The interpreter of the smoke run (e.g. one with another transformers version); defaults to this one.
        revision (`str`, *optional*):
            The branch, tag or commit of a repo id; defaults to `main`.
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Let the smoke run execute code from another repo that config.json's `auto_map` points at (such as
            gte-multilingual-base's `Alibaba-NLP/new-impl`), which the static checks cannot see. Without it, such a
            repo is refused at once unless `smoke=False`.
        allow_unknown_code (`bool`, *optional*, defaults to `False`):
            Accept Python files of the repo that are not byte-identical to a released hubheads file (a warning
            instead of an `unknown-code` failure), after reading them; the smoke run then executes those the repo
            loads. The code-safety scan still fails on what it flags.
        transformers (`Sequence[str]`, *optional*):
            transformers releases (`"latest"` for the newest) to run the repo on as a consumer, after every other
            check passed (`hubheads.release_check`): one `releases` finding per release, the table in
            `report.releases`, and, for a folder, the result recorded in it (`verified_releases.json`) for the card.

    Returns:
        [`VerifyReport`]: the findings; `report.ok` is `False` when any check failed.

    Raises:
        `TypeError`: `target` is not a path or a string.
        `ValueError`: `target` is neither a folder nor a repo id.
        `FileNotFoundError`: the repo id is neither in the local cache nor on the Hub.
        `ValueError`: the smoke run would execute another repo's code and `trust_remote_code` is not set.
    """
    folder, name, root = _resolve_target(target, revision)
    repo = _Repo.read(folder, root)
    findings = _check_config(repo)
    if smoke and repo.config is not None:
        check_trusted(repo.config, target, trust_remote_code)  # before anything runs, in one line
    if repo.config is not None:
        findings += _check_thresholds(repo) + _check_remote_code(repo)
    findings += _check_hubheads_files(repo) + _check_unknown_code(repo, allow_unknown_code) + _check_links(repo)
    findings += _check_weights(repo) + _check_code_safety(repo) + _check_buffers(repo)
    findings += _check_tokenizer_and_card(repo)
    if smoke:
        if any(finding.status == FAIL for finding in findings):
            message = "Skipped the smoke run until the problems above are fixed: nothing of the repo was executed."
            findings.append(Finding("smoke-run", WARN, message))
        else:
            findings.append(_smoke_run(repo, name, python))
    report = VerifyReport(target=os.fspath(target), folder=folder, findings=findings)
    if transformers:
        _check_releases(repo, report, list(transformers), local=Path(os.fspath(target)).expanduser().is_dir())
    return report


def _check_releases(repo: _Repo, report: VerifyReport, releases: list[str], local: bool) -> None:
    """Run the repo on `releases` as a consumer (`release_check`) once every other check passed; one finding per
    release, the table in `report.releases`, and for a local folder the result recorded in it."""
    if not report.ok:
        message = "Skipped the releases run until the problems above are fixed: nothing of the repo was executed."
        report.findings.append(Finding("releases", WARN, message))
        return
    config = repo.config or {}
    code, missing = _cached_code(config)
    if missing:
        message = f"Skipped the releases run: {', '.join(missing)} is not in the local Hugging Face cache."
        report.findings.append(Finding("releases", FAIL, message))
        return
    calls = [*_smoke_calls(config), {"inputs": RELEASE_TEXTS}]
    report.releases = check_releases(repo.folder, releases, calls, code)
    for row in report.releases.rows:
        status = OK if row.ok else FAIL
        detail = "the author's outputs" if row.ok else row.cause
        message = f"transformers {row.version}: {'runs, ' if row.ok else ''}{detail}"
        report.findings.append(Finding("releases", status, message))
    if local:
        write_result(repo.folder, report.releases)


def main(argv: list[str] | None = None) -> int:
    """`python -m hubheads.verify --record`: record the modeling files' sha256 for this hubheads version."""
    from hubheads import __version__

    parser = argparse.ArgumentParser(
        prog="python -m hubheads.verify",
        description="Record the sha256 of the modeling files this hubheads version writes into repos, so that "
        "`hubheads verify` recognises them. Run it after editing modeling/. (Repos are checked by `hubheads verify`.)",
    )
    parser.add_argument("--record", action="store_true", required=True, help="write hubheads/data/released_files.json")
    parser.add_argument("--version", default=__version__, help="the version to record (default: %(default)s)")
    args = parser.parse_args(argv)
    path = record_release(args.version)
    print(f"Recorded {len(modeling_file_hashes())} modeling files for hubheads {args.version} in {path}")
    return 0


__all__ = [
    "Finding",
    "VerifyReport",
    "load_released_files",
    "modeling_file_hashes",
    "record_release",
    "scan_python_source",
    "verify_repo",
]

if __name__ == "__main__":
    raise SystemExit(main())
