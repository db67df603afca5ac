"""Write a Hub-ready repo folder from a checkpoint folder or an in-memory model.

The folder holds the safetensors weights, the tokenizer, a config.json carrying the decision thresholds (and
`custom_pipelines` when the repo needs the hubheads pipeline), the pipeline file with the files it imports, and a
`postprocessing.json` with the thresholds for tools that do not run Python. The write is atomic: the folder is built
next to OUT and swapped into place (`_swap_into_place`), so at every instant OUT is either the previous folder or the
new one, complete; an existing non-empty OUT is only replaced with `force=True`.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import errno
import glob
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hubheads.architectures import ARCHITECTURES
from hubheads.modeling.configuration_hubheads import THRESHOLD_KEYS, DecisionThresholds

logger = logging.getLogger(__name__)

PIPELINE_MODULE = "pipeline_hubheads"
PIPELINE_CLASS = "HubheadsTextClassificationPipeline"
#: The Inference Endpoints handler (`EndpointHandler`), written beside the pipeline so an endpoint runs it.
HANDLER_FILE = "handler.py"
POSTPROCESSING_FILE = "postprocessing.json"
#: Weights in formats other than safetensors: pickles (which can run code when loaded) and legacy framework files
#: (TensorFlow `.h5`, Flax `.msgpack`, rust-bert `.ot`). An export never carries them.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".h5", ".msgpack", ".ot")


def is_legacy_weights(name: str) -> bool:
    """Whether a repo file is weights in a format other than safetensors (`PICKLE_SUFFIXES`, any case), which
    `verify` rejects and `push --delete-legacy` deletes."""
    return name.lower().endswith(PICKLE_SUFFIXES)


ARCHIVE_SUFFIXES = (".tar", ".gz", ".tgz", ".zip", ".7z")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
MULTI_LABEL = "multi_label_classification"


@dataclass
class ExportReport:
    """What `export_model` wrote.

    Args:
        out_dir (`Path`): the exported folder.
        files (`list[str]`): the files in it.
        skipped (`list[str]`): files of the source that were left out (pickles, archives, folders).
        thresholds (`dict`): the threshold keys now in config.json.
        pipeline_declared (`bool`): whether config.json declares the hubheads pipeline.
        source_was_plain (`bool`): the source is a Hub repo that loads without remote code, but the export needs it
            (pushing it over the source's main would break consumers who call it without `trust_remote_code=True`).
        converted (`str`, *optional*): the model type a "new"-format source was converted to (`"new_gte"`, hubheads'
            own implementation, or `"gte"`, transformers' native one); `None` when the model code was kept.
    """

    out_dir: Path
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)
    pipeline_declared: bool = False
    source_was_plain: bool = False
    converted: str | None = None


def hub_files(module: str) -> list[str]:
    """The file of `hubheads.modeling.<module>` and, recursively, the sibling files it imports relatively."""
    package = resources.files("hubheads.modeling")
    needed: list[str] = []
    pending = [module]
    while pending:
        name = pending.pop()
        filename = f"{name}.py"
        if filename in needed:
            continue
        needed.append(filename)
        tree = ast.parse(package.joinpath(filename).read_text(encoding="utf-8"))
        relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1]
        pending += [node.module for node in relative if node.module]
    return sorted(needed)


def copy_resource(package: str, name: str, destination: Path) -> None:
    """Copy a file shipped in the hubheads wheel, byte for byte."""
    destination.write_bytes(resources.files(package).joinpath(name).read_bytes())


def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); fix or remove it.") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}.")
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")


def write_atomically(path: Path, content: bytes | str) -> None:
    """Write `content` (text as UTF-8) to `path` through a temporary file beside it and `os.replace`, so `path` is
    never left half-written."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _merged_thresholds(
    config: Mapping[str, Any], postprocessing: Mapping[str, Any], overrides: Mapping[str, Any], id2label: list[str]
) -> DecisionThresholds:
    """Thresholds of the source's postprocessing.json, then its config.json, then the caller's options."""
    merged: dict[str, Any] = {}
    for layer_name, layer in (
        ("postprocessing.json", postprocessing),
        ("config.json", config),
        ("options", overrides),
    ):
        # Each layer validated on its own first (which lowercases language codes), so that `IT` overrides `it`.
        layer = {**layer, **DecisionThresholds.from_dict(layer).to_dict()}
        for key in THRESHOLD_KEYS:
            if layer.get(key) is None:
                continue
            value = layer[key]
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                value = {**merged[key], **value}
            if key in merged and merged[key] != value and layer_name == "config.json":
                logger.warning("config.json and postprocessing.json disagree on %s; keeping config.json's value", key)
            merged[key] = value
    return DecisionThresholds.from_dict(merged, label_names=id2label)


def _check_source(src: Path) -> list[str]:
    """Refuse folders that are not safetensors checkpoints; return the names of files to leave out."""
    if not src.is_dir():
        raise FileNotFoundError(f"SRC {src} is not a folder; pass a checkpoint folder saved with save_pretrained.")
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"SRC {src} has no config.json; pass a folder saved with save_pretrained.")
    names = sorted(os.listdir(src))
    if not any(name.endswith(".safetensors") for name in names):
        pickles = [name for name in names if name.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise ValueError(
                f"SRC {src} holds only pickle weights ({', '.join(pickles)}); hubheads exports safetensors only, "
                "because loading a pickle can run arbitrary code. If you trust the file, convert it once with "
                '`python -c "from transformers import AutoModelForSequenceClassification as M; '
                f"M.from_pretrained('{src}').save_pretrained('{src}-safetensors')\"` and export that folder."
            )
        raise ValueError(f"SRC {src} holds no *.safetensors weights; save the model with save_pretrained first.")
    return [
        name
        for name in names
        if (src / name).is_dir() or name.endswith(PICKLE_SUFFIXES + ARCHIVE_SUFFIXES) or name.startswith(".")
    ]


def _make_tokenizer_portable(folder: Path) -> None:
    """Name the generic fast tokenizer so transformers 4.x loads it too.

    transformers 5 saves a tokenizer built from a `tokenizers` object as `"tokenizer_class": "TokenizersBackend"`,
    a class 4.x does not have; `PreTrainedTokenizerFast` names the same class in both.
    """
    path = folder / "tokenizer_config.json"
    if path.is_file():
        tokenizer_config = read_json(path)
        if tokenizer_config.get("tokenizer_class") == "TokenizersBackend":
            tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
            write_json(path, tokenizer_config)


def _check_out(out: Path, src: Path | None, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"OUT {out} exists and is not a folder; choose another OUT.")
    if src is not None:
        resolved_out, resolved_src = out.resolve(), src.resolve()
        if resolved_out == resolved_src or resolved_out in resolved_src.parents:
            raise ValueError(f"OUT {out} would replace SRC {src}; export into a new folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"OUT {out} is not empty; pass --force (force=True) to replace it.")


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.tmp-"


def _backup_prefix(out: Path) -> str:
    return f".{out.name}.old-"


@contextlib.contextmanager
def _writing_beside(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUT's parent folder while a run writes beside OUT, and first clean up after any run
    that was killed there: no other run is then writing in it, so every leftover is a dead run's.

    The lock is an `flock` on the folder itself (nothing is left behind); two exports into one folder take turns.
    Where `fcntl` does not exist (Windows) there is no lock, and leftovers are cleaned up all the same."""
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None  # type: ignore[assignment]
    descriptor = os.open(out.parent, os.O_RDONLY) if fcntl is not None else None
    try:
        if descriptor is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        _recover(out)
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # releases the lock


def _recover(out: Path) -> None:
    """Finish what a killed run left beside `out`. A run killed between moving the old OUT aside and moving the new
    one in (the fallback swap, where the OS has no atomic exchange) left OUT missing: the previous folder is put back.
    Then every leftover of a dead run (a staging folder, a moved-aside previous folder) is deleted."""
    for backup in sorted(out.parent.glob(glob.escape(_backup_prefix(out)) + "*")):
        previous = backup / "previous"
        if previous.is_dir() and not out.exists():
            os.replace(previous, out)
            logger.warning("Restored %s, which an interrupted export had moved aside.", out)
        shutil.rmtree(backup, ignore_errors=True)
    for staging in sorted(out.parent.glob(glob.escape(_staging_prefix(out)) + "*")):
        shutil.rmtree(staging, ignore_errors=True)


#: renameat2(2) flag: swap two paths in one step (Linux 3.15+, on ext4, xfs, btrfs, tmpfs and most others).
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically (Linux `renameat2(RENAME_EXCHANGE)`); `False` where the OS, the C library
    or the file system has no such call, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28+, musl 1.2.2+
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def _swap_into_place(staging: Path, out: Path) -> None:
    """Move the finished `staging` folder to `out` so that at every instant `out` is the old folder or the new one.

    No `out` (or an empty one): one rename. Otherwise one atomic exchange where the OS has it, then the old folder
    (now at `staging`) is deleted. Elsewhere: the old `out` is moved aside into a `.{out}.old-*` folder, `staging`
    renamed to `out`, the old folder deleted; a kill between the two renames leaves `out` missing until the next run
    beside it (`_recover`) puts the old folder back, and a failed rename puts it back at once."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.replace(staging, out)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # the old folder now
        return
    backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=_backup_prefix(out)))
    os.replace(out, backup / "previous")
    try:
        os.replace(staging, out)
    except OSError:
        try:
            os.replace(backup / "previous", out)
        except OSError as restore_error:
            kept = backup / "previous"
            raise OSError(f"Could not replace {out}; its previous content is kept in {kept}.") from restore_error
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def label_names(config: Mapping[str, Any]) -> list[str]:
    """The label names of a config dict, in id order (`LABEL_i` when it has no `id2label`).

    Raises:
        `ValueError`: `id2label` is not a mapping of the class ids 0, 1, ... (as strings, in JSON) to names.
    """
    id2label = config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
    if not isinstance(id2label, Mapping):
        raise ValueError(
            f'`id2label` in config.json must map class ids to names, e.g. {{"0": "negative"}}; got {id2label!r}.'
        )
    ids = {}
    for key in id2label:
        try:
            ids[int(key)] = key
        except (TypeError, ValueError):
            raise ValueError(
                f"`id2label` in config.json has the key {key!r}, which is not a class id: its keys must be the "
                f"integer ids 0 to {len(id2label) - 1} (as strings in JSON), e.g. "
                '{"0": "negative", "1": "positive"}. Put the names in the values (`label2id` maps them back).'
            ) from None
    if sorted(ids) != list(range(len(ids))):
        raise ValueError(f"`id2label` in config.json must have the ids 0 to {len(ids) - 1}, got {sorted(ids)}.")
    return [str(id2label[ids[index]]) for index in range(len(ids))]


def needs_remote_code(config: Mapping[str, Any]) -> bool:
    """Whether a repo with this config.json runs remote code for consumers (`custom_pipelines` or `auto_map`), so
    that the stock call needs `trust_remote_code=True`."""
    return "custom_pipelines" in config or "auto_map" in config


def write_decisions(config: dict[str, Any], thresholds: DecisionThresholds, folder: Path) -> bool:
    """Write config.json (with `thresholds`) and postprocessing.json into `folder`, with the hubheads files the repo
    needs; return whether config.json declares the hubheads pipeline.

    The threshold keys of `config` are replaced by `thresholds`. The pipeline is declared (and its files copied, with
    the Inference Endpoints `handler.py` that runs it) only when the repo needs it: thresholds, a multi-label model, or
    a hubheads architecture, whose modeling files and `auto_map` are added too.
    """
    from hubheads import __version__

    id2label = label_names(config)
    thresholds.check_applies_to(config.get("problem_type"), len(id2label), source="the thresholds you set")
    for key in THRESHOLD_KEYS:
        config.pop(key, None)
    config.update(thresholds.to_dict())
    arch = ARCHITECTURES.get(config.get("model_type", ""))
    needs_pipeline = arch is not None and arch.needs_pipeline
    pipeline_declared = thresholds.configured or config.get("problem_type") == MULTI_LABEL or needs_pipeline
    if arch is not None:
        # Our architectures load through remote code for consumers without hubheads.
        config["auto_map"] = {**config.get("auto_map", {}), **arch.auto_map()}
        for filename in hub_files(arch.model_module):
            copy_resource("hubheads.modeling", filename, folder / filename)
    if pipeline_declared:
        for filename in [*hub_files(PIPELINE_MODULE), HANDLER_FILE]:
            copy_resource("hubheads.modeling", filename, folder / filename)
        config.setdefault("custom_pipelines", {})["text-classification"] = {
            "impl": f"{PIPELINE_MODULE}.{PIPELINE_CLASS}",
            "pt": ["AutoModelForSequenceClassification"],
            "tf": [],
            "type": "text",
        }
    tokenizer_config = folder / "tokenizer_config.json"
    if config.get("auto_map") and not config.get("tokenizer_class") and tokenizer_config.is_file():
        # transformers 4.46-4.53 pipelines load a tokenizer only for a config class they ship or a config that names
        # its tokenizer class; a remote-code config is neither unless it names the class tokenizer_config.json names.
        tokenizer_class = read_json(tokenizer_config).get("tokenizer_class")
        if isinstance(tokenizer_class, str) and tokenizer_class:
            config["tokenizer_class"] = tokenizer_class
    config["hubheads_version"] = __version__
    write_json(folder / "config.json", config)
    write_json(
        folder / POSTPROCESSING_FILE,
        {
            "hubheads_version": __version__,
            "problem_type": config.get("problem_type") or "single_label_classification",
            "id2label": dict(enumerate(id2label)),
            "decision_rule": (
                "multi-label: every label with sigmoid score >= label_thresholds[label], else the rule below; "
                "binary: label 1 when softmax score >= thresholds_by_lang[lang], else best_threshold_global, "
                "else default_threshold, else 0.5"
            ),
            **thresholds.to_dict(),
        },
    )
    if not (folder / ".gitattributes").exists():
        copy_resource("hubheads.hub_templates", "gitattributes", folder / ".gitattributes")
    return pipeline_declared


def rewrite_decisions(
    folder: str | os.PathLike,
    thresholds: DecisionThresholds,
    extra_json: Mapping[str, Mapping[str, Any]] | None = None,
) -> bool:
    """Replace the thresholds of the repo (or checkpoint) `folder` in place; return whether the pipeline is declared.

    Writes what `export` would: config.json with `thresholds` (replacing every threshold key it had),
    postprocessing.json, the hubheads files the repo now needs, and the `extra_json` files (name → content, e.g.
    reports.json). Each file is written next to the folder first and then moved in with `os.replace`, so none is
    ever left half-written. A hubheads file that differs from this version's copy is replaced, with a warning.
    """
    folder = Path(folder)
    config = read_json(folder / "config.json")
    with _writing_beside(folder):
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=_staging_prefix(folder)))
        try:
            declared = write_decisions(config, thresholds, staging)
            for name, content in (extra_json or {}).items():
                write_json(staging / name, content)
            for path in sorted(staging.iterdir()):
                target = folder / path.name
                if target.exists() and path.suffix == ".py" and target.read_bytes() != path.read_bytes():
                    version = config["hubheads_version"]
                    logger.warning("%s differs from hubheads %s's copy; replacing it", target, version)
                if path.name == ".gitattributes" and target.exists():
                    continue
                os.replace(path, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return declared


def _build(
    src: Path,
    staging: Path,
    *,
    overrides: Mapping[str, Any],
    multi_label: bool | None,
    tokenizer: Any,
) -> ExportReport:
    skipped = _check_source(src)
    config = read_json(src / "config.json")
    if not config.get("model_type"):
        raise ValueError(
            f"SRC {src}/config.json has no `model_type`, so transformers cannot load it (a checkpoint saved by a "
            "custom PyTorch class?). Map its weights onto a transformers or hubheads architecture first: `hubheads "
            "import-weights` (hubheads.import_weights), then export the folder it writes."
        )
    postprocessing = read_json(src / POSTPROCESSING_FILE) if (src / POSTPROCESSING_FILE).is_file() else {}
    for name in sorted(os.listdir(src)):
        if name in skipped or name in ("config.json", POSTPROCESSING_FILE):
            continue
        shutil.copy2(src / name, staging / name)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(staging))
    if not any((staging / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(
            f"SRC {src} has no tokenizer (tokenizer.json / tokenizer_config.json), which the pipeline needs; "
            "pass --tokenizer DIR (tokenizer= in Python) to take it from the base model."
        )
    _make_tokenizer_portable(staging)

    if multi_label is not None:
        if multi_label:
            config["problem_type"] = MULTI_LABEL
        elif config.get("problem_type") == MULTI_LABEL:
            config["problem_type"] = "single_label_classification"
    thresholds = _merged_thresholds(config, postprocessing, overrides, label_names(config))
    pipeline_declared = write_decisions(config, thresholds, staging)
    return ExportReport(
        out_dir=staging,
        files=sorted(os.listdir(staging)),
        skipped=skipped,
        thresholds=thresholds.to_dict(),
        pipeline_declared=pipeline_declared,
    )


def _convert_to_native_gte(src: Path, folder: Path) -> Path:
    """Write `src` (a "new"-format GTE sequence classifier) into `folder` as transformers' native `gte`: weights
    renamed by transformers' own conversion mapping and saved as safetensors, config.json as a `GteConfig` keeping
    the labels, problem type and thresholds; the tokenizer and postprocessing.json copied; the remote code's files and
    the old weights left behind."""
    from transformers import AutoModelForSequenceClassification

    from hubheads.sources import load_native_gte

    model = load_native_gte(src, AutoModelForSequenceClassification)
    model.save_pretrained(folder)
    _copy_all_but_model(src, folder, weights=True)
    return folder


def _copy_all_but_model(src: Path, folder: Path, weights: bool) -> None:
    """Copy `src`'s files into `folder`, except config.json, code files and (with `weights=True`) the weights."""
    left = (".py", *((".safetensors", "model.safetensors.index.json") if weights else ()), *PICKLE_SUFFIXES)
    for name in sorted(os.listdir(src)):
        if (src / name).is_file() and name != "config.json" and not name.endswith(left):
            shutil.copy2(src / name, folder / name)


def _convert_to_new_gte(src: Path, folder: Path) -> Path:
    """Write `src` (a "new"-format checkpoint: gte-multilingual-base or a fine-tune) into `folder` for hubheads' own
    implementation of the architecture: the same safetensors (the weight names are the original ones), config.json
    rewritten by `new_gte_config` (its `auto_map` into the repo's own files), the rest copied; the other repo's code
    is left behind. The converted model is loaded first, every weight accounted for, and run on sample texts: a
    checkpoint that does not fit, or gives non-finite scores, is refused."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads.output_checks import probe
    from hubheads.sources import load_new_gte, new_gte_config

    config = new_gte_config(read_json(src / "config.json"))
    model = load_new_gte(src, AutoModelForSequenceClassification).eval()
    _copy_all_but_model(src, folder, weights=False)
    write_json(folder / "config.json", config)
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        probe(model, tokenizer, f"SRC {src} with hubheads' `new_gte`", config)
    return folder


def _new_format_route(config: Mapping[str, Any], source: Any, *, native: bool, keep_remote_code: bool) -> Any:
    """How a checkpoint's model code reaches consumers: `None` (as it is), or the conversion of a "new"-format
    checkpoint: hubheads' `new_gte` by default, transformers' native `gte` with `native`; `keep_remote_code` keeps
    the `auto_map` into the code repo (`None`)."""
    if config.get("model_type") != "new":
        if native or keep_remote_code:
            option = "--native" if native else "--keep-remote-code"
            raise ValueError(
                f'{option} applies to gte-multilingual-base\'s "new" format; {source} has model type '
                f"{config.get('model_type')!r}. Drop {option}."
            )
        return None
    if native and keep_remote_code:
        raise ValueError("--native and --keep-remote-code are two different routes for the model code; pick one.")
    if keep_remote_code:
        return None
    return _convert_to_native_gte if native else _convert_to_new_gte


def export_model(
    source: str | os.PathLike | Any,
    out_dir: str | os.PathLike,
    *,
    tokenizer: Any = None,
    threshold: float | None = None,
    default_threshold: float | None = None,
    lang_thresholds: Mapping[str, float] | None = None,
    label_thresholds: Mapping[str, float] | None = None,
    multi_label: bool | None = None,
    force: bool = False,
    revision: str | None = None,
    trust_remote_code: bool = False,
    native: bool = False,
    keep_remote_code: bool = False,
) -> ExportReport:
    """Export a checkpoint folder, a Hub repo or an in-memory model to a Hub-ready folder.

    Args:
        source (`str`, `os.PathLike` or `PreTrainedModel`):
            A folder saved with `save_pretrained` (safetensors weights), a Hub repo id (downloaded with
            `snapshot_download`; offline, from the cache), or a model object.
        out_dir (`str` or `os.PathLike`):
            The folder to write. It must not exist or be empty, unless `force=True`.
        tokenizer (`PreTrainedTokenizerBase`, *optional*):
            Saved into the repo; needed when `source` is a model object or a folder without a tokenizer.
        threshold (`float`, *optional*):
            The tuned global threshold (`best_threshold_global`).
        default_threshold (`float`, *optional*):
            The untuned threshold (`default_threshold`).
        lang_thresholds (`dict[str, float]`, *optional*):
            Thresholds per language (`thresholds_by_lang`), merged over those of the source.
        label_thresholds (`dict[str, float]`, *optional*):
            Thresholds per label of a multi-label model, merged over those of the source.
        multi_label (`bool`, *optional*):
            `True` marks the model multi-label (`problem_type="multi_label_classification"`); `None` keeps the
            source's problem type.
        force (`bool`, *optional*, defaults to `False`):
            Replace a non-empty `out_dir` (atomically).
        revision (`str`, *optional*):
            The branch, tag, commit or `refs/pr/N` of a repo id `source`.
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Export a checkpoint whose config.json's `auto_map` runs code transformers does not ship; the repo keeps
            pointing at that code. Without it such a checkpoint is refused, naming the code's repo. A "new"-format
            checkpoint (gte-multilingual-base's, code in `Alibaba-NLP/new-impl`) needs it only with
            `keep_remote_code`: by default it is exported with hubheads' own implementation of the architecture
            (`model_type: "new_gte"`, the same weights), which runs no code of that repo and works on every
            transformers release hubheads supports, where the original code fails on transformers 5.
        native (`bool`, *optional*, defaults to `False`):
            Convert a "new"-format checkpoint to transformers' native `gte` instead (transformers >= 5.18.0 only),
            with transformers' own weight renames.
        keep_remote_code (`bool`, *optional*, defaults to `False`):
            Keep a "new"-format checkpoint's `auto_map` into its code repo instead (with `trust_remote_code`); that
            code runs on transformers 4 only.

    Thresholds already in the source's config.json or postprocessing.json are kept unless overridden here.

    Returns:
        [`ExportReport`]: what was written.
    """
    from hubheads.sources import check_trusted, resolve_checkpoint

    out = Path(out_dir)
    src = None if hasattr(source, "save_pretrained") else resolve_checkpoint(source, revision)
    _check_out(out, src, force)
    # Only a published repo that loads without remote code has consumers that a pipeline declaration would break.
    published_plain = False
    convert = None
    if src is not None and (src / "config.json").is_file():
        config = read_json(src / "config.json")
        published_plain = not Path(source).is_dir() and not needs_remote_code(config)
        convert = _new_format_route(config, source, native=native, keep_remote_code=keep_remote_code)
        if convert is None:
            check_trusted(config, source, trust_remote_code)
    elif native or keep_remote_code:
        raise ValueError(
            "--native and --keep-remote-code apply to a checkpoint folder or repo id, not a model object."
        )
    overrides = {
        "default_threshold": default_threshold,
        "best_threshold_global": threshold,
        "thresholds_by_lang": dict(lang_thresholds) if lang_thresholds else None,
        "label_thresholds": dict(label_thresholds) if label_thresholds else None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with _writing_beside(out):
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out)))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes the folder private; the export should not be
        try:
            with tempfile.TemporaryDirectory(prefix="hubheads-model-") as saved:
                if src is None:
                    model: Any = source
                    model.save_pretrained(saved)
                    src = Path(saved)
                elif convert is not None:
                    src = convert(src, Path(saved))
                report = _build(src, staging, overrides=overrides, multi_label=multi_label, tokenizer=tokenizer)
            for path in staging.iterdir():  # save_pretrained may write private (0600) weights; an export is shared
                path.chmod(0o666 & ~umask)
            _swap_into_place(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    report.out_dir = out
    report.converted = (
        {_convert_to_new_gte: "new_gte", _convert_to_native_gte: "gte"}.get(convert) if convert else None
    )
    # Declaring the pipeline is what adds remote code to a plain repo (an `auto_map` only ever comes with it).
    report.source_was_plain = published_plain and report.pipeline_declared
    return report


__all__ = [
    "ExportReport",
    "export_model",
    "hub_files",
    "label_names",
    "needs_remote_code",
    "read_json",
    "rewrite_decisions",
    "write_json",
]
