"""Checkpoints as the Hub really has them: remote-code models, pickle-only bases, GTE's "new" format.

- **Where a checkpoint is.** [`hubheads.resolve.resolve_checkpoint`] turns a folder or a Hub repo id (at any
  revision, `refs/pr/N` included; offline, from the local cache) into a local folder.
- **Remote code.** A config.json whose `auto_map` names classes transformers does not ship (gte-multilingual-base's
  `"Alibaba-NLP/new-impl--modeling.NewForSequenceClassification"`) runs that code when loaded. [`check_trusted`]
  refuses such a checkpoint at once, with one line naming the code's repo, unless the caller passed
  `trust_remote_code=True` (`--trust-remote-code`), exactly as transformers does, but never with a prompt.
- **Pickles.** A base whose weights exist only as pickles (`pytorch_model.bin`, as on `vinai/phobert-base`'s main) is
  loaded only with `allow_pickle=True`; transformers then reads it with `torch.load(weights_only=True)`, and whatever
  hubheads writes afterwards is safetensors.
- **gte-multilingual-base without its code repo.** Its fine-tunes store `model_type: "new"` and load through
  `Alibaba-NLP/new-impl`, whose non-persistent buffers transformers 5 leaves uninitialised: that code crashes or gives
  NaN on every 5.x release. [`new_gte_config`] rewrites such a config.json for hubheads' own implementation of the
  architecture (`modeling/modeling_new_gte.py`, the same weights under the same names), which runs on every release
  hubheads supports; `export` does it by default. From transformers 5.18.0 on there is also transformers' native
  `gte` ([`gte_config`]; the weight renames are transformers' own conversion mapping).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hubheads.errors import InvalidInputError, MissingDependencyError, modeling_checks
from hubheads.modeling.configuration_backbone import NEWER_ENCODERS
from hubheads.repo_files import check_safetensors, read_json
from hubheads.resolve import cached_snapshot, resolve_checkpoint

NEW_FORMAT = "new"
MIN_GTE_TRANSFORMERS = NEWER_ENCODERS["gte"]  # one copy: the modeling files check it too
#: Bookkeeping keys of a config.json that describe the file, not the model.
FILE_KEYS = ("model_type", "auto_map", "architectures", "transformers_version", "torch_dtype", "dtype")


def class_references(config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where in config.json, "module.Class" or "org/repo--module.Class") for every class `custom_pipelines` and
    `auto_map` name (neither being a mapping names none: `verify` reports that)."""
    references: list[tuple[str, Any]] = []
    pipelines, auto_map = config.get("custom_pipelines"), config.get("auto_map")
    for task, entry in (pipelines if isinstance(pipelines, Mapping) else {}).items():
        references.append(
            (f"custom_pipelines[{task!r}].impl", entry.get("impl") if isinstance(entry, Mapping) else entry)
        )
    for auto_class, value in (auto_map if isinstance(auto_map, Mapping) else {}).items():
        for reference in value if isinstance(value, list) else [value]:
            if reference is not None:  # tokenizers list [slow, fast], either may be None
                references.append((f"auto_map[{auto_class!r}]", reference))
    return references


def code_repos(config: Mapping[str, Any]) -> list[str]:
    """The other repos whose code config.json points at (`"org/code--module.Class"`), in order."""
    references = [reference for _, reference in class_references(config)]
    return list(dict.fromkeys(ref.split("--")[0] for ref in references if isinstance(ref, str) and "--" in ref))


def code_pin(config: Mapping[str, Any]) -> str | None:
    """The `code_revision="..."` argument that pins the other repo's code, or `None` when no argument can.

    transformers fetches every code file of a load at `code_revision` when it is given, this repo's own files
    (such as the hubheads pipeline) as well as the other repo's. So it pins the other repo only when config.json
    names no code of its own, and only one other repo.
    """
    repos = code_repos(config)
    own = [ref for _, ref in class_references(config) if isinstance(ref, str) and "--" not in ref]
    if len(repos) != 1 or own:
        return None
    return f'code_revision="{code_revision(repos[0])}"'


def pin_advice(config: Mapping[str, Any], code_repo: str) -> str:
    """What a consumer can do about `code_repo`, the other repo whose code config.json points at: the pinned call when
    `code_pin` has one, else why transformers cannot pin it and the ways out."""
    pin = code_pin(config)
    if pin:
        return f"Review it and pin it: pipeline(..., trust_remote_code=True, revision=<this repo's commit>, {pin})."
    native = (
        "; or, for a gte-multilingual-base fine-tune, export it without --keep-remote-code: hubheads' own "
        "implementation of the architecture then runs instead, on every transformers release, with no other repo"
        if config.get("model_type") == NEW_FORMAT
        else ""
    )
    return (
        f"transformers cannot pin it here: `code_revision=` fetches every code file of a load at that one revision, "
        f"this repo's own files too, so consumers always get {code_repo} at its newest commit. Review that code; to "
        f"pin it, copy its files into this repo and point `auto_map` at them{native}."
    )


def code_revision(code_repo: str) -> str:
    """The commit to pin `code_repo` with (`code_revision=`): the one in the local cache, else a placeholder."""
    snapshot = cached_snapshot(code_repo)
    return snapshot.name if snapshot else f"<commit of {code_repo}>"


def runs_remote_code(config: Mapping[str, Any]) -> bool:
    """Whether loading a checkpoint with this config.json runs code from a repo: it has an `auto_map` and transformers
    (with the hubheads architectures registered) does not know its `model_type`."""
    from transformers import CONFIG_MAPPING  # the hubheads architectures are registered: `import hubheads` did it

    return bool(config.get("auto_map")) and config.get("model_type") not in CONFIG_MAPPING


def has_native_gte() -> bool:
    """Whether the installed transformers ships the `gte` architecture (5.18.0 and later)."""
    from transformers import CONFIG_MAPPING

    return "gte" in CONFIG_MAPPING


def check_native_gte(what: str) -> None:
    """Raise an `ImportError` naming the minimum transformers version unless it ships `gte`."""
    if not has_native_gte():
        import transformers

        raise MissingDependencyError(
            f"{what} needs transformers >= {MIN_GTE_TRANSFORMERS}, which ships the native `gte` architecture; this "
            f"environment has transformers {transformers.__version__}. Upgrade: pip install -U 'transformers>="
            f"{MIN_GTE_TRANSFORMERS}'."
        )


def check_trusted(config: Mapping[str, Any], source: Any, trust_remote_code: bool) -> None:
    """Refuse, in one line, a checkpoint that would run remote code unless `trust_remote_code` is set.

    Also refuses a native `gte` checkpoint under a transformers that lacks `gte`, naming the minimum version.
    """
    if config.get("model_type") == "gte":
        check_native_gte(f"{source} (model type `gte`)")
    if trust_remote_code or not runs_remote_code(config):
        return
    repos = code_repos(config)
    where = ", ".join(repos) if repos else f"{source} itself"
    native = (
        " Or export it with hubheads' own implementation of the architecture, which runs no code of that repo and "
        "works on transformers 5 (where the original code does not): `hubheads export SRC OUT`, without "
        "--keep-remote-code."
        if config.get("model_type") == NEW_FORMAT
        else ""
    )
    raise InvalidInputError(
        f"{source} runs remote code from {where} (model type {config.get('model_type')!r}, config.json `auto_map`); "
        f"read that code, then pass --trust-remote-code (trust_remote_code=True).{native}"
    )


def new_gte_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config.json of a "new"-format checkpoint (gte-multilingual-base and its fine-tunes) rewritten for
    hubheads' own implementation of the architecture (`model_type: "new_gte"`, `auto_map` into the repo's own copy
    of `modeling_new_gte.py`).

    Every other key is kept (sizes, dropout, labels, the hubheads threshold keys). A fixed-NTK `rope_scaling` is folded
    into `rope_theta` as the original code computes it; a config that selects a code path the implementation does not
    have (no rotary positions, unpacked qkv, RMS norm, log-n attention scaling) is a `ValueError` naming the key.
    """
    from hubheads.architectures import ARCHITECTURES
    from hubheads.modeling.configuration_new_gte import NEW_FORMAT_PATHS, NewGteConfig

    if config.get("model_type") != NEW_FORMAT:
        raise InvalidInputError(f"model_type must be {NEW_FORMAT!r} to convert, got {config.get('model_type')!r}.")
    values = {key: value for key, value in config.items() if key not in FILE_KEYS}
    with modeling_checks():  # a config.json of the user's
        checked = NewGteConfig(**values)
    for key in ("rope_scaling", *NEW_FORMAT_PATHS):
        values.pop(key, None)
    arch = ARCHITECTURES[NewGteConfig.model_type]
    return {
        **values,
        "rope_theta": checked.rope_theta,
        "model_type": arch.model_type,
        "architectures": [arch.model_class],
        "auto_map": arch.auto_map(),
    }


def gte_config(config: Mapping[str, Any]) -> Any:
    """The `GteConfig` (transformers' native `gte`, 5.18.0 and later) of a "new"-format config.json, with the keys
    and checks of `new_gte_config`."""
    check_native_gte('Converting a "new"-format (gte-multilingual-base) checkpoint')
    from transformers import AutoConfig

    values = {key: value for key, value in new_gte_config(config).items() if key not in FILE_KEYS}
    values["rope_parameters"] = {"rope_type": "default", "rope_theta": values.pop("rope_theta")}
    return AutoConfig.for_model("gte", **values)


def _load_complete(folder: Path, auto_class: Any, config: Any, target: str) -> Any:
    """`auto_class.from_pretrained(folder, config=config)`, refusing a partial load: every weight of the model must
    come from the checkpoint (and, for a sequence classifier, every weight of the checkpoint must be used)."""
    model, info = auto_class.from_pretrained(folder, config=config, output_loading_info=True)
    missing = sorted(info.get("missing_keys") or [])
    mismatched = sorted(str(item) for item in info.get("mismatched_keys") or [])
    unexpected = sorted(info.get("unexpected_keys") or []) if "Sequence" in auto_class.__name__ else []
    if missing or mismatched or unexpected:
        raise InvalidInputError(
            f"{folder} did not convert completely to {target}: missing {missing or 'none'}, mismatched "
            f"{mismatched or 'none'}, unused {unexpected or 'none'}. It is not a gte-multilingual-base-style "
            "checkpoint; run it through its remote code (--keep-remote-code --trust-remote-code) instead."
        )
    return model


def load_native_gte(folder: Path, auto_class: Any) -> Any:
    """Load the "new"-format checkpoint in `folder` with transformers' native `gte` (`auto_class`, e.g.
    `AutoModelForSequenceClassification`), refusing a partial load."""
    return _load_complete(folder, auto_class, gte_config(read_json(folder / "config.json")), "native `gte`")


def load_new_gte(folder: Path, auto_class: Any) -> Any:
    """Load the "new"-format checkpoint in `folder` with hubheads' implementation of the architecture (`auto_class`:
    `AutoModel` or `AutoModelForSequenceClassification`, the hubheads architectures being registered), refusing a
    partial load. No code of the checkpoint's own code repo runs."""
    import hubheads  # noqa: F401  (registers `new_gte`)
    from hubheads.modeling.configuration_new_gte import NewGteConfig

    values = {key: value for key, value in new_gte_config(read_json(folder / "config.json")).items()}
    config = NewGteConfig(**{key: value for key, value in values.items() if key not in FILE_KEYS})
    return _load_complete(folder, auto_class, config, "hubheads' `new_gte`")


def load_encoder(
    source: str | os.PathLike,
    *,
    revision: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> Any:
    """The pretrained encoder (`AutoModel`) of a base checkpoint, for the hubheads architectures' `from_backbone`.

    Args:
        source (`str` or `os.PathLike`): a folder, or a Hub repo id.
        revision (`str`, *optional*): a branch, tag, commit or pull request ref (`"refs/pr/3"`) of a repo id.
        allow_pickle (`bool`, *optional*, defaults to `False`): accept pickle-only weights (`pytorch_model.bin`); they
            are read with `torch.load(weights_only=True)`. Without it, such a base is refused, naming both ways out.
        trust_remote_code (`bool`, *optional*, defaults to `False`): accepted for symmetry with transformers, but a
            remote-code encoder cannot be rebuilt from `backbone_config` on a consumer's machine, so it is refused
            either way; "new"-format GTE checkpoints load with hubheads' own implementation (`new_gte`) instead.

    Raises:
        `InvalidInputError` (a `ValueError`): pickle-only weights without `allow_pickle` (`check_safetensors`), or a
            remote-code encoder that is not GTE.
    """
    from transformers import AutoModel

    folder = resolve_checkpoint(source, revision, option="backbone")
    config = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    if config.get("model_type") == NEW_FORMAT:
        return load_new_gte(folder, AutoModel)
    if runs_remote_code(config):
        raise InvalidInputError(
            f"The backbone {source} is remote code from {', '.join(code_repos(config)) or source} (model type "
            f"{config.get('model_type')!r}), which a consumer's transformers cannot rebuild from the saved "
            "`backbone_config`; use an encoder that transformers ships (BERT, RoBERTa, XLM-R, DistilBERT, GTE, ...)."
        )
    safetensors = check_safetensors(folder, f"The backbone {source}", revision=revision, allow_pickle=allow_pickle)
    return AutoModel.from_pretrained(folder, use_safetensors=safetensors)


__all__ = [
    "MIN_GTE_TRANSFORMERS",
    "cached_snapshot",
    "check_native_gte",
    "check_trusted",
    "class_references",
    "code_pin",
    "code_repos",
    "code_revision",
    "gte_config",
    "has_native_gte",
    "load_encoder",
    "load_native_gte",
    "load_new_gte",
    "new_gte_config",
    "pin_advice",
    "resolve_checkpoint",
    "runs_remote_code",
]
