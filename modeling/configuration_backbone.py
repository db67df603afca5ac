"""The encoder a hubheads architecture wraps, as its config stores it (`backbone_config`).

This file is copied verbatim into exported Hub repos: it imports only the standard library and transformers.
"""

from collections.abc import Mapping
from typing import Any

from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig

from .configuration_new_gte import NewGteConfig

#: Encoders that some supported transformers releases lack, and the first release that ships each.
NEWER_ENCODERS = {"gte": "5.18.0"}


def backbone_config_from(value: Any, default_model_type: str) -> PretrainedConfig:
    """The wrapped encoder's config from a config object, a dict with `model_type` (as config.json stores it) or
    `None` (a default `default_model_type` config)."""
    if value is None:
        return AutoConfig.for_model(default_model_type)
    if isinstance(value, PretrainedConfig):
        return value
    if isinstance(value, Mapping):
        if "model_type" not in value:
            raise ValueError("`backbone_config` given as a dict needs a `model_type` key (e.g. 'bert', 'roberta').")
        values = dict(value)
        model_type = values.pop("model_type")
        if model_type == NewGteConfig.model_type:  # hubheads' own encoder: no transformers release registers it
            return NewGteConfig(**values)
        if model_type in NEWER_ENCODERS and model_type not in CONFIG_MAPPING:
            raise ValueError(
                f"`backbone_config` is a {model_type!r} encoder, which transformers ships from version "
                f"{NEWER_ENCODERS[model_type]} on; upgrade transformers (pip install -U "
                f"'transformers>={NEWER_ENCODERS[model_type]}') to load this model."
            )
        return AutoConfig.for_model(model_type, **values)
    raise TypeError(
        f"`backbone_config` must be a PretrainedConfig or a dict with `model_type`, got {type(value).__name__}."
    )


__all__ = ["NEWER_ENCODERS", "backbone_config_from"]
