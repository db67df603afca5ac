"""The files of a Hub repo and their IO: what each file is called, reading and writing them, and the decision files.

Every command reads or writes repo folders through this module: the JSON files (`read_json`, `write_json`), the
hubheads files shipped in the wheel (`hub_files`, `copy_resource`), the weights hubheads refuses (`PICKLE_SUFFIXES`,
`is_legacy_weights`), the label names of a config (`label_names`), content hashes (`sha256_file`), and the files that
carry a repo's decisions (`write_decisions`, `rewrite_decisions`: config.json's thresholds, postprocessing.json, the
pipeline and modeling files the repo needs). It imports no command module.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from hubheads.architectures import ARCHITECTURES
from hubheads.atomic import staging_prefix, writing_beside
from hubheads.errors import InvalidInputError, modeling_checks
from hubheads.modeling.configuration_hubheads import (
    PRECISION_KEYS,
    THRESHOLD_KEYS,
    DecisionThresholds,
    PrecisionRecord,
)

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


def check_safetensors(
    folder: Path, what: str, *, revision: str | None = None, allow_pickle: bool | None = None
) -> bool:
    """Whether the checkpoint in `folder` has *.safetensors weights (`True`) or pickle-only weights that `allow_pickle`
    accepts (`False`); the one refusal of pickle-only checkpoints, for `export` and `load_encoder`.

    Args:
        folder (`Path`): the checkpoint folder.
        what (`str`): how messages name it (e.g. `"SRC ckpt"`).
        revision (`str`, *optional*): the Hub revision it was downloaded at, for the message.
        allow_pickle (`bool`, *optional*): the caller's consent to read pickles; `None` for a caller that never reads
            them (`export`), whose message says how to convert them instead.

    Raises:
        `InvalidInputError`: no weights, or pickle-only weights without `allow_pickle`, naming the ways out.
    """
    names = sorted(os.listdir(folder))
    if any(name.endswith(".safetensors") for name in names):
        return True
    pickles = [name for name in names if is_legacy_weights(name) and name != "training_args.bin"]
    where = f"{what} (revision {revision})" if revision else what
    if not pickles:
        raise InvalidInputError(f"{where} holds no *.safetensors weights; save the model with save_pretrained first.")
    if allow_pickle:
        return False
    consent = (
        'convert it once with `python -c "from transformers import AutoModelForSequenceClassification as M; '
        f"M.from_pretrained('{folder}').save_pretrained('{folder}-safetensors')\"` and pass that folder"
        if allow_pickle is None
        else "pass allow_pickle=True (--allow-pickle): it is read with torch.load(weights_only=True) and the model is "
        "saved as safetensors"
    )
    raise InvalidInputError(
        f"{where} has only pickle weights ({', '.join(pickles)}), and loading a pickle can run code. Either load a "
        "revision that has *.safetensors (on the Hub, often the safetensors conversion pull request: "
        f"revision='refs/pr/N', --revision refs/pr/N), or, if you trust the file, {consent}."
    )


ARCHIVE_SUFFIXES = (".tar", ".gz", ".tgz", ".zip", ".7z")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
MULTI_LABEL = "multi_label_classification"


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
        raise InvalidInputError(f"{path} is not valid JSON ({error}); fix or remove it.") from error
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} must hold a JSON object, got {type(data).__name__}.")
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")


def sha256_bytes(data: bytes) -> str:
    """The sha256 of `data`, as hex."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file's content (as hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def label_names(config: Mapping[str, Any]) -> list[str]:
    """The label names of a config dict, in id order (`LABEL_i` when it has no `id2label`).

    Raises:
        `ValueError`: `id2label` is not a mapping of the class ids 0, 1, ... (as strings, in JSON) to names.
    """
    id2label = config.get("id2label") or {str(i): f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
    if not isinstance(id2label, Mapping):
        raise InvalidInputError(
            f'`id2label` in config.json must map class ids to names, e.g. {{"0": "negative"}}; got {id2label!r}.'
        )
    ids = {}
    for key in id2label:
        try:
            ids[int(key)] = key
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"`id2label` in config.json has the key {key!r}, which is not a class id: its keys must be the "
                f"integer ids 0 to {len(id2label) - 1} (as strings in JSON), e.g. "
                '{"0": "negative", "1": "positive"}. Put the names in the values (`label2id` maps them back).'
            ) from None
    if sorted(ids) != list(range(len(ids))):
        raise InvalidInputError(f"`id2label` in config.json must have the ids 0 to {len(ids) - 1}, got {sorted(ids)}.")
    return [str(id2label[ids[index]]) for index in range(len(ids))]


def needs_remote_code(config: Mapping[str, Any]) -> bool:
    """Whether a repo with this config.json runs remote code for consumers (`custom_pipelines` or `auto_map`), so
    that the stock call needs `trust_remote_code=True`."""
    return "custom_pipelines" in config or "auto_map" in config


def _changed(config: Mapping[str, Any], thresholds: DecisionThresholds) -> bool:
    """Whether `thresholds` differ from the ones `config` holds, compared as the pipeline reads them (language codes
    lower-cased, numbers as floats); a config whose thresholds do not validate has none to keep."""
    try:
        return DecisionThresholds.from_dict(config).to_dict() != thresholds.to_dict()
    except ValueError:
        return True


def write_decisions(
    config: dict[str, Any], thresholds: DecisionThresholds, folder: Path, precision: PrecisionRecord | None = None
) -> bool:
    """Write config.json (with `thresholds`) and postprocessing.json into `folder`, with the hubheads files the repo
    needs; return whether config.json declares the hubheads pipeline.

    The threshold keys of `config` are replaced by `thresholds`; its precision keys by `precision` (what `tune`
    measured), and dropped when the thresholds change without it (they described the thresholds of before). The
    pipeline is declared (and its files copied, with the Inference Endpoints `handler.py` that runs it) only when the
    repo needs it: thresholds, a multi-label model, or a hubheads architecture, whose modeling files and `auto_map` are
    added too.
    """
    from hubheads import __version__

    id2label = label_names(config)
    with modeling_checks():
        thresholds.check_applies_to(config.get("problem_type"), len(id2label), source="the thresholds you set")
    for key in THRESHOLD_KEYS + (PRECISION_KEYS if precision is not None or _changed(config, thresholds) else ()):
        config.pop(key, None)
    config.update(thresholds.to_dict())
    if precision is not None:
        config.update(precision.to_dict())
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
    precision: PrecisionRecord | None = None,
) -> bool:
    """Replace the thresholds of the repo (or checkpoint) `folder` in place; return whether the pipeline is declared.

    Writes what `export` would: config.json with `thresholds` (replacing every threshold key it had),
    postprocessing.json, the hubheads files the repo now needs, and the `extra_json` files (name → content, e.g.
    reports.json), and the precision keys as `write_decisions` does. Each file is written next to the folder first and
    then moved in with `os.replace`, so none is ever left half-written. A hubheads file that differs from this
    version's copy is replaced, with a warning.
    """
    folder = Path(folder)
    config = read_json(folder / "config.json")
    with writing_beside(folder):
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=staging_prefix(folder)))
        try:
            declared = write_decisions(config, thresholds, staging, precision)
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


__all__ = [
    "HANDLER_FILE",
    "MULTI_LABEL",
    "PICKLE_SUFFIXES",
    "POSTPROCESSING_FILE",
    "TOKENIZER_FILES",
    "check_safetensors",
    "copy_resource",
    "hub_files",
    "is_legacy_weights",
    "label_names",
    "needs_remote_code",
    "read_json",
    "rewrite_decisions",
    "sha256_bytes",
    "sha256_file",
    "write_decisions",
    "write_json",
]
