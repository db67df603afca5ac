"""The hubheads architectures and their registration with the transformers Auto classes.

`register_architectures()` runs when `hubheads` is imported. It is idempotent, and it raises when another class
already holds one of our model types, instead of silently replacing it. After it, `AutoConfig` and
`AutoModelForSequenceClassification.from_pretrained(folder)` load our repos without `trust_remote_code`, with the
package's classes (locally registered classes win over a repo's `auto_map`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class Architecture:
    """Where one architecture lives in `hubheads.modeling` (and so in an exported repo)."""

    model_type: str
    config_module: str
    config_class: str
    model_module: str
    model_class: str
    #: The bare encoder class (`AutoModel`), for an architecture that is also a backbone.
    base_model_class: str | None = None
    #: Whether every repo of this architecture needs the hubheads pipeline (multi-task heads, bios); an encoder's
    #: plain classifier needs it only for what any classifier needs it for (thresholds, multi-label sets).
    needs_pipeline: bool = True

    def auto_map(self) -> dict[str, str]:
        """The config.json `auto_map` that points transformers at the repo's copies of the files."""
        auto_map = {
            "AutoConfig": f"{self.config_module}.{self.config_class}",
            "AutoModelForSequenceClassification": f"{self.model_module}.{self.model_class}",
        }
        if self.base_model_class:
            auto_map["AutoModel"] = f"{self.model_module}.{self.base_model_class}"
        return auto_map

    def classes(self) -> tuple[type, type]:
        config_class = getattr(import_module(f"hubheads.modeling.{self.config_module}"), self.config_class)
        model_class = getattr(import_module(f"hubheads.modeling.{self.model_module}"), self.model_class)
        return config_class, model_class

    def base_class(self) -> type | None:
        if not self.base_model_class:
            return None
        return getattr(import_module(f"hubheads.modeling.{self.model_module}"), self.base_model_class)


ARCHITECTURES = {
    arch.model_type: arch
    for arch in (
        Architecture(
            "residual_type_fusion",
            "configuration_residual_type_fusion",
            "ResidualTypeFusionConfig",
            "modeling_residual_type_fusion",
            "ResidualTypeFusionForSequenceClassification",
        ),
        Architecture(
            "gated_bio_classifier",
            "configuration_gated_bio",
            "GatedBioConfig",
            "modeling_gated_bio",
            "GatedBioForSequenceClassification",
        ),
        # gte-multilingual-base's "new" encoder, which hubheads exports with its own implementation (see
        # modeling/configuration_new_gte.py): the original code does not run on transformers 5.
        Architecture(
            "new_gte",
            "configuration_new_gte",
            "NewGteConfig",
            "modeling_new_gte",
            "NewGteForSequenceClassification",
            base_model_class="NewGteModel",
            needs_pipeline=False,
        ),
    )
}


def register_architectures() -> None:
    """Register every hubheads architecture with `AutoConfig` and `AutoModelForSequenceClassification` (and an
    encoder with `AutoModel`).

    Calling it again is a no-op; a model type already registered to a different class is a `ValueError`.
    """
    from transformers import (
        CONFIG_MAPPING,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
        MODEL_MAPPING,
        AutoConfig,
        AutoModel,
        AutoModelForSequenceClassification,
    )

    for arch in ARCHITECTURES.values():
        config_class, model_class = arch.classes()
        if arch.model_type in CONFIG_MAPPING:
            existing = CONFIG_MAPPING[arch.model_type]
            if existing is not config_class:
                raise ValueError(
                    f"model_type {arch.model_type!r} is already registered to {existing.__module__}."
                    f"{existing.__name__}; hubheads cannot register its {arch.config_class} under the same name."
                )
        else:
            AutoConfig.register(arch.model_type, config_class)
        if config_class in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
            mapped = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[config_class]
            if mapped is not model_class:
                raise ValueError(f"{arch.config_class} is already mapped to {mapped!r} for sequence classification.")
        else:
            AutoModelForSequenceClassification.register(config_class, model_class)
        base_class = arch.base_class()
        if base_class is not None:
            if config_class in MODEL_MAPPING:
                if MODEL_MAPPING[config_class] is not base_class:
                    raise ValueError(f"{arch.config_class} is already mapped to {MODEL_MAPPING[config_class]!r}.")
            else:
                AutoModel.register(config_class, base_class)


__all__ = ["ARCHITECTURES", "Architecture", "register_architectures"]
