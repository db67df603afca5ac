"""Write a Hub-ready repo folder from a checkpoint folder or an in-memory model.

The folder holds the safetensors weights, the tokenizer, a config.json carrying the decision thresholds (and
`custom_pipelines` when the repo needs the hubheads pipeline), the pipeline file with the files it imports, and a
`postprocessing.json` with the thresholds for tools that do not run Python. The write is atomic: the folder is built
next to OUT and swapped into place (`hubheads.atomic.swap_into_place`), so at every instant OUT is either the previous
folder or the new one, complete; an existing non-empty OUT is only replaced with `force=True`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubheads.atomic import replacing_folder
from hubheads.errors import InvalidInputError, OutputExistsError, SourceNotFoundError, first_line, modeling_checks
from hubheads.modeling.configuration_hubheads import THRESHOLD_KEYS, DecisionThresholds
from hubheads.repo_files import (
    ARCHIVE_SUFFIXES,
    MULTI_LABEL,
    PICKLE_SUFFIXES,
    POSTPROCESSING_FILE,
    TOKENIZER_FILES,
    check_safetensors,
    label_names,
    needs_remote_code,
    read_json,
    write_decisions,
    write_json,
)

logger = logging.getLogger(__name__)


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


def _merged_thresholds(
    config: Mapping[str, Any], postprocessing: Mapping[str, Any], overrides: Mapping[str, Any], id2label: list[str]
) -> DecisionThresholds:
    """Thresholds of the source's postprocessing.json, then its config.json, then the caller's options; a value the
    pipeline would refuse is an `InvalidInputError` naming its key."""
    merged: dict[str, Any] = {}
    for layer_name, layer in (
        ("postprocessing.json", postprocessing),
        ("config.json", config),
        ("options", overrides),
    ):
        # Each layer validated on its own first (which lowercases language codes), so that `IT` overrides `it`.
        with modeling_checks():
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
    with modeling_checks():
        return DecisionThresholds.from_dict(merged, label_names=id2label)


def _check_source(src: Path) -> list[str]:
    """Refuse folders that are not safetensors checkpoints; return the names of files to leave out."""
    if not src.is_dir():
        raise SourceNotFoundError(f"SRC {src} is not a folder; pass a checkpoint folder saved with save_pretrained.")
    if not (src / "config.json").is_file():
        raise SourceNotFoundError(f"SRC {src} has no config.json; pass a folder saved with save_pretrained.")
    check_safetensors(src, f"SRC {src}")
    names = sorted(os.listdir(src))
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
        raise OutputExistsError(f"OUT {out} exists and is not a folder; choose another OUT.")
    if src is not None:
        resolved_out, resolved_src = out.resolve(), src.resolve()
        if resolved_out == resolved_src or resolved_out in resolved_src.parents:
            raise InvalidInputError(f"OUT {out} would replace SRC {src}; export into a new folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"OUT {out} is not empty; pass --force (force=True) to replace it.")


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
        raise InvalidInputError(
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
        raise InvalidInputError(
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
            raise InvalidInputError(
                f'{option} applies to gte-multilingual-base\'s "new" format; {source} has model type '
                f"{config.get('model_type')!r}. Drop {option}."
            )
        return None
    if native and keep_remote_code:
        raise InvalidInputError(
            "--native and --keep-remote-code are two different routes for the model code; pick one."
        )
    if keep_remote_code:
        return None
    return _convert_to_native_gte if native else _convert_to_new_gte


def _load_tokenizer(path: str | os.PathLike) -> Any:
    """The tokenizer saved in the folder (or cached repo) `path`, for `--tokenizer DIR`."""
    from transformers import AutoTokenizer

    from hubheads.resolve import resolve_checkpoint

    folder = resolve_checkpoint(path, None, option="--tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as error:
        raise SourceNotFoundError(
            f"--tokenizer {path}: no tokenizer loads from it ({type(error).__name__}: {first_line(error)}). Pass a "
            "folder saved with tokenizer.save_pretrained (tokenizer.json or the files of its class)."
        ) from None


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
        tokenizer (`PreTrainedTokenizerBase`, `str` or `os.PathLike`, *optional*):
            Saved into the repo; needed when `source` is a model object or a folder without a tokenizer. A folder
            (or Hub repo id) is loaded with `AutoTokenizer`.
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
    from hubheads.resolve import resolve_checkpoint
    from hubheads.sources import check_trusted

    out = Path(out_dir)
    src = None if hasattr(source, "save_pretrained") else resolve_checkpoint(source, revision)
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = _load_tokenizer(tokenizer)
    if src is None:  # as the pipeline reads it: save_pretrained would turn a key such as 1 into "1" without a word
        with modeling_checks():
            DecisionThresholds.from_config(getattr(source, "config", None))
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
        raise InvalidInputError(
            "--native and --keep-remote-code apply to a checkpoint folder or repo id, not a model object."
        )
    overrides = {
        "default_threshold": default_threshold,
        "best_threshold_global": threshold,
        "thresholds_by_lang": dict(lang_thresholds) if lang_thresholds else None,
        "label_thresholds": dict(label_thresholds) if label_thresholds else None,
    }
    with replacing_folder(out) as staging:
        with tempfile.TemporaryDirectory(prefix="hubheads-model-") as saved:
            if src is None:
                model: Any = source
                model.save_pretrained(saved)
                src = Path(saved)
            elif convert is not None:
                src = convert(src, Path(saved))
            report = _build(src, staging, overrides=overrides, multi_label=multi_label, tokenizer=tokenizer)
    report.out_dir = out
    report.converted = (
        {_convert_to_new_gte: "new_gte", _convert_to_native_gte: "gte"}.get(convert) if convert else None
    )
    # Declaring the pipeline is what adds remote code to a plain repo (an `auto_map` only ever comes with it).
    report.source_was_plain = published_plain and report.pipeline_declared
    return report


__all__ = ["ExportReport", "export_model"]
