"""Configuration of the residual type fusion multi-task classifier (content trust + content type)."""

from collections.abc import Sequence
from typing import Any, Optional

from transformers import PretrainedConfig

from .configuration_backbone import backbone_config_from
from .configuration_hubheads import (
    POOLING_MODES,
    DecisionThresholds,
    check_choice,
    check_class_weights,
    check_non_negative,
)

# Imported here too, though only configuration_backbone uses it: transformers 4.x and 5.0 copy only the direct relative
# imports of a remote-code file when they load a repo from a local folder (an Inference Endpoint, a downloaded repo).
from .configuration_new_gte import NewGteConfig  # noqa: F401

FUSION_MODES = ("residual", "none")
DEFAULT_TYPE_LABELS = tuple(f"type_{i}" for i in range(10))


class ResidualTypeFusionConfig(PretrainedConfig):
    """Configuration of [`ResidualTypeFusionForSequenceClassification`].

    The trust head is the model's primary head: it uses `num_labels` / `id2label` like any sequence classifier, and
    the hubheads threshold keys (`default_threshold`, `best_threshold_global`, `thresholds_by_lang`) decide it. The
    type head classifies the content type, and with `fusion="residual"` its predicted distribution feeds the trust
    head.

    Args:
        backbone_config (`PretrainedConfig` or `dict`, *optional*):
            The wrapped encoder (any `AutoModel`), as a config or a dict with `model_type`. Defaults to RoBERTa, the
            architecture of PhoBERT.
        type_label_names (`list[str]`, *optional*, defaults to 10 generic names `type_0` ... `type_9`):
            The classes of the type head.
        task_names (`list[str]`, *optional*, defaults to `("trust", "type")`):
            Names of the primary and the type head, as the pipeline reports them under `tasks`.
        fusion (`str`, *optional*, defaults to `"residual"`):
            `"residual"`: the trust head reads the pooled vector plus a learned projection of the type distribution;
            `"none"`: the trust head reads the pooled vector alone (an ablation).
        pooling (`str`, *optional*, defaults to `"cls"`):
            `"cls"` (first token) or `"mean"` (mean over real tokens).
        classifier_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the pooled vector.
        loss_weights (`list[float]`, *optional*, defaults to `(1.0, 1.0)`):
            Weights of the trust and type losses in the joint loss.
        class_weights (`dict[str, list[float]]`, *optional*):
            Per-class loss weights per head, keyed by task name, e.g. `{"trust": [1.0, 4.9]}` for a 2735 / 563 split.
        focal_loss (`bool`, *optional*, defaults to `False`):
            Use the focal loss with `focal_gamma` for both heads.
        focal_gamma (`float`, *optional*, defaults to 2.0):
            The focal loss exponent.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the heads' initial weights.
    """

    model_type = "residual_type_fusion"

    def __init__(
        self,
        backbone_config: Any = None,
        type_label_names: Optional[Sequence[str]] = None,
        task_names: Sequence[str] = ("trust", "type"),
        fusion: str = "residual",
        pooling: str = "cls",
        classifier_dropout: float = 0.1,
        loss_weights: Sequence[float] = (1.0, 1.0),
        class_weights: Optional[dict] = None,
        focal_loss: bool = False,
        focal_gamma: float = 2.0,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.backbone_config = backbone_config_from(backbone_config, default_model_type="roberta")
        type_label_names = list(DEFAULT_TYPE_LABELS if type_label_names is None else type_label_names)
        if len(type_label_names) < 2 or len(set(type_label_names)) != len(type_label_names):
            raise ValueError(f"`type_label_names` must be at least 2 distinct names, got {type_label_names!r}.")
        self.type_label_names = [str(name) for name in type_label_names]
        task_names = list(task_names)
        if len(task_names) != 2 or len(set(task_names)) != 2 or not all(isinstance(n, str) for n in task_names):
            raise ValueError(f"`task_names` must be two distinct names (trust head, type head), got {task_names!r}.")
        self.task_names = task_names
        self.fusion = check_choice(fusion, FUSION_MODES, "fusion")
        self.pooling = check_choice(pooling, POOLING_MODES, "pooling")
        self.classifier_dropout = check_non_negative(classifier_dropout, "classifier_dropout")
        if not isinstance(loss_weights, (list, tuple)) or len(loss_weights) != 2:
            raise ValueError(f"`loss_weights` must be two numbers (trust, type), got {loss_weights!r}.")
        self.loss_weights = [check_non_negative(w, f"loss_weights[{i}]") for i, w in enumerate(loss_weights)]
        self.focal_loss = bool(focal_loss)
        self.focal_gamma = check_non_negative(focal_gamma, "focal_gamma")
        self.initializer_range = check_non_negative(initializer_range, "initializer_range")
        super().__init__(**kwargs)
        class_weights = dict(class_weights or {})
        unknown = sorted(set(class_weights) - set(self.task_names))
        if unknown:
            raise ValueError(f"`class_weights` keys must be task names {self.task_names}, got {unknown}.")
        num_labels = int(self.num_labels or 2)
        sizes = {self.task_names[0]: num_labels, self.task_names[1]: len(self.type_label_names)}
        self.class_weights = {
            task: check_class_weights(weights, sizes[task], f"class_weights[{task!r}]")
            for task, weights in class_weights.items()
        }
        DecisionThresholds.from_config(self).check_applies_to(self.problem_type, num_labels)

    def task_heads(self) -> dict:
        """Each head's name → (the output field holding its logits, its label names); the primary head first."""
        id2label: dict = dict(self.id2label or {})
        trust_labels = [str(id2label[i]) for i in range(len(id2label))]
        return {
            self.task_names[0]: ("logits", trust_labels),
            self.task_names[1]: ("type_logits", self.type_label_names),
        }


__all__ = ["ResidualTypeFusionConfig"]
