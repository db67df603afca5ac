"""`hubheads import-weights`: bring weights saved by an author's own PyTorch class into a real architecture.

Public multi-task checkpoints are often saved by a class the author wrote (`ResidualTypeFusionPhoBERT(nn.Module)`):
config.json without `model_type`, keys such as `roberta.*`, `trust_head.*`, `type_head.*`. transformers cannot load
them, and copying them into an export would ship an unusable repo. [`import_weights`] renames the keys with an explicit
prefix mapping, loads them strictly into the architecture a config names (a transformers one or a hubheads one) and
writes a `save_pretrained` folder, which `hubheads export` then takes. A partial load is refused: every weight of the
model must come from the file and every tensor of the file must be used or explicitly dropped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubheads.atomic import replacing_folder
from hubheads.errors import InvalidInputError, OutputExistsError, SourceNotFoundError
from hubheads.repo_files import PICKLE_SUFFIXES, read_json


@dataclass
class ImportReport:
    """What `import_weights` wrote.

    Args:
        out_dir (`Path`): the folder written.
        model_class (`str`): the class the weights were loaded into.
        loaded (`int`): the number of tensors loaded.
        dropped (`list[str]`): keys of the file left out with `drop`.
    """

    out_dir: Path
    model_class: str
    loaded: int
    dropped: list[str] = field(default_factory=list)


def read_state_dict(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, Any]:
    """The tensors of a `*.safetensors` file, or of a pickle (`*.bin`, `*.pt`) with `allow_pickle=True`, read with
    `torch.load(weights_only=True)` (plain tensors and containers only; no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"WEIGHTS {path} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if not allow_pickle:
        raise InvalidInputError(
            f"WEIGHTS {path} is a pickle, and loading a pickle can run code. Convert it to safetensors where you "
            "trust it, or pass --allow-pickle (allow_pickle=True): it is then read with torch.load(weights_only=True)."
        )
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint that wraps the weights
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise InvalidInputError(f"WEIGHTS {path} does not hold a state dict (a mapping of names to tensors).")
    return dict(state)


def rename_keys(
    state: Mapping[str, Any], key_map: Mapping[str, str], drop: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """`state` with each key's first matching `key_map` prefix replaced, and the keys starting with a `drop` prefix
    removed; returns the renamed state and the dropped keys."""
    renamed: dict[str, Any] = {}
    dropped = []
    for key, value in state.items():
        if any(key.startswith(prefix) for prefix in drop):
            dropped.append(key)
            continue
        new_key = next((new + key[len(old) :] for old, new in key_map.items() if key.startswith(old)), key)
        if new_key in renamed:
            raise InvalidInputError(f"--map sends two keys of the file to {new_key!r}; make the prefixes distinct.")
        renamed[new_key] = value
    return renamed, sorted(dropped)


def import_weights(
    weights: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: str | os.PathLike | Mapping[str, Any],
    key_map: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    tokenizer: str | os.PathLike | None = None,
    allow_pickle: bool = False,
    force: bool = False,
) -> ImportReport:
    """Load the state dict in `weights` into the architecture of `config` and save it to `out_dir`.

    Args:
        weights (`str` or `os.PathLike`): the state dict, `*.safetensors` (or a pickle with `allow_pickle=True`).
        out_dir (`str` or `os.PathLike`): the folder to write (new or empty, unless `force=True`).
        config (`str`, `os.PathLike` or `dict`): the target config.json (or its content), with a `model_type`
            transformers or hubheads knows, e.g. `residual_type_fusion` with its `backbone_config`.
        key_map (`dict[str, str]`, *optional*): key prefix renames, e.g. `{"roberta.": "encoder."}`; the first
            matching prefix wins (dicts keep their order).
        drop (`list[str]`, *optional*): key prefixes of the file to leave out (e.g. a training-only head).
        tokenizer (`str` or `os.PathLike`, *optional*): a folder whose tokenizer files are copied into `out_dir`.
        allow_pickle (`bool`, *optional*, defaults to `False`): read a pickle state dict.
        force (`bool`, *optional*, defaults to `False`): replace a non-empty `out_dir`.

    Raises:
        `ValueError`: missing, unexpected or mis-shaped keys (all listed), a config without `model_type`, a pickle
            without `allow_pickle`.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification  # hubheads' architectures: registered

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"OUT {out} is not empty; pass --force (force=True) to replace it.")
    values = dict(config) if isinstance(config, Mapping) else read_json(Path(config))
    if not values.get("model_type"):
        raise InvalidInputError(
            "--config has no `model_type`; give the config of the architecture to load into, e.g. "
            '{"model_type": "residual_type_fusion", "backbone_config": {...}, "type_label_names": [...]}.'
        )
    values = {key: value for key, value in values.items() if key not in ("auto_map", "architectures")}
    model_config = AutoConfig.for_model(values.pop("model_type"), **values)
    model = AutoModelForSequenceClassification.from_config(model_config)
    state, dropped = rename_keys(read_state_dict(weights, allow_pickle=allow_pickle), key_map or {}, drop)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in set(state) & set(expected)
        if tuple(state[key].shape) != tuple(expected[key].shape)
    )
    if missing or unexpected or mismatched:
        problems = [
            f"{what} ({len(keys)}): {', '.join(keys[:8])}{', ...' if len(keys) > 8 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
            if keys
        ]
        raise InvalidInputError(
            f"The weights of {weights} do not fill {type(model).__name__} exactly, so nothing was written: "
            f"{'; '.join(problems)}. Rename prefixes with --map OLD=NEW, leave keys out with --drop PREFIX, or fix "
            "--config (sizes, label counts)."
        )
    model.load_state_dict(state, strict=True)
    with replacing_folder(out) as staging:  # as export writes: OUT is the previous folder or the new one, whole
        model.save_pretrained(staging)
        if tokenizer is not None:
            for name in sorted(os.listdir(tokenizer)):  # tokenizer.json, vocab.txt, bpe.codes: not config or weights
                path = Path(tokenizer) / name
                code_or_weights = name.endswith((".py", ".safetensors", *PICKLE_SUFFIXES))
                if path.is_file() and name != "config.json" and not code_or_weights:
                    shutil.copy2(path, staging / name)
    return ImportReport(out_dir=out, model_class=type(model).__name__, loaded=len(state), dropped=dropped)


__all__ = ["ImportReport", "import_weights", "read_state_dict", "rename_keys"]
