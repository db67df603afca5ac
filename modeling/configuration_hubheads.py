"""The hubheads threshold contract: decision thresholds read from any `transformers` config.

A config (DistilBERT, BERT, XLM-R or one of the hubheads architectures) may carry these extra keys:

- `default_threshold` (`float`, *optional*, defaults to 0.5): the untuned decision threshold.
- `best_threshold_global` (`float`, *optional*): the threshold tuned on the whole dev set.
- `thresholds_by_lang` (`dict[str, float]`, *optional*): thresholds tuned per language code.
- `label_thresholds` (`dict[str, float]`, *optional*): per-label thresholds of a multi-label model.

Every value must be a real number in [0, 1]. [`DecisionThresholds.from_config`] validates them and raises a
`ValueError` naming the key otherwise, so a typo never silently falls back to 0.5.

`hubheads tune` also records how far the thresholds hold at other precisions ([`PrecisionRecord`]):

- `tuned_precision` (`str`, *optional*, defaults to `"float32"`): the precision whose scores the thresholds were tuned
  on: `"float32"`, `"bfloat16"` or `"int8"` (dynamic).
- `precision_agreement` (`dict[str, dict]`, *optional*): per precision, `{"decisions_differ": d, "rows": n}`: the
  author's dev decisions that precision changed against float32, at these thresholds.

It also holds the validation helpers the hubheads configs share.

This file is copied verbatim into exported Hub repos: it imports only the standard library and transformers.
"""

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

THRESHOLD_KEYS = ("default_threshold", "best_threshold_global", "thresholds_by_lang", "label_thresholds")
THRESHOLD_MODES = ("auto", "default", "global", "by_lang")
PRECISION_KEYS = ("tuned_precision", "precision_agreement")
#: The precisions `hubheads tune` measures: float32 (the reference), bfloat16 weights, dynamic int8.
MEASURED_PRECISIONS = ("float32", "bfloat16", "int8")
FALLBACK_THRESHOLD = 0.5
POOLING_MODES = ("cls", "mean")


def validate_threshold(value: Any, key: str) -> float:
    """Return `value` as a float if it is a real number in [0, 1]; raise a `ValueError` naming `key` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{key}` must be a number between 0 and 1, got {value!r} of type {type(value).__name__}. "
            "Fix the value in config.json (or the argument you passed)."
        )
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"`{key}` must be a number between 0 and 1, got {value!r}. Fix the value in config.json (or the argument "
            "you passed)."
        )
    return value


def _validate_mapping(value: Any, key: str, lowercase_keys: bool) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f'`{key}` must be a mapping from names to thresholds (e.g. {{"it": 0.7}}), '
            f"got {value!r} of type {type(value).__name__}."
        )
    result: dict[str, float] = {}
    for name, threshold in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"`{key}` keys must be non-empty strings, got {name!r}.")
        norm = name.lower() if lowercase_keys else name
        checked = validate_threshold(threshold, f"{key}[{name!r}]")
        if norm in result and result[norm] != checked:
            raise ValueError(f"`{key}` gives two different thresholds for {norm!r} (keys differ only in case).")
        result[norm] = checked
    return result


@dataclass(frozen=True)
class DecisionThresholds:
    """Validated decision thresholds of one model.

    Args:
        default_threshold (`float`, *optional*):
            The untuned threshold; decisions fall back to 0.5 when it is not set.
        best_threshold_global (`float`, *optional*):
            The threshold tuned on the whole dev set.
        thresholds_by_lang (`dict[str, float]`, *optional*):
            Thresholds per language code; codes are matched case-insensitively.
        label_thresholds (`dict[str, float]`, *optional*):
            Per-label thresholds of a multi-label model, keyed by label name.
    """

    default_threshold: Optional[float] = None
    best_threshold_global: Optional[float] = None
    thresholds_by_lang: dict[str, float] = field(default_factory=dict)
    label_thresholds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], label_names: Optional[Any] = None) -> "DecisionThresholds":
        """Validate the threshold keys of `values` (a config dict or `postprocessing.json`); other keys are ignored.

        `label_names`, when given, are the model's labels: `label_thresholds` may only name those.
        """
        default = values.get("default_threshold")
        best = values.get("best_threshold_global")
        by_lang = values.get("thresholds_by_lang")
        by_label = values.get("label_thresholds")
        thresholds = cls(
            default_threshold=None if default is None else validate_threshold(default, "default_threshold"),
            best_threshold_global=None if best is None else validate_threshold(best, "best_threshold_global"),
            thresholds_by_lang={} if by_lang is None else _validate_mapping(by_lang, "thresholds_by_lang", True),
            label_thresholds={} if by_label is None else _validate_mapping(by_label, "label_thresholds", False),
        )
        if label_names is not None:
            unknown = sorted(set(thresholds.label_thresholds) - {str(name) for name in label_names})
            if unknown:
                raise ValueError(
                    f"`label_thresholds` names labels the model does not have: {unknown}. "
                    f"Known labels: {sorted(str(name) for name in label_names)}."
                )
        return thresholds

    @classmethod
    def from_config(cls, config: Any) -> "DecisionThresholds":
        """Read and validate the threshold keys of a `PretrainedConfig` (any model type)."""
        values = {key: getattr(config, key, None) for key in THRESHOLD_KEYS}
        id2label = getattr(config, "id2label", None) or {}
        return cls.from_dict(values, label_names=list(id2label.values()) if values["label_thresholds"] else None)

    @property
    def configured(self) -> bool:
        """Whether any threshold key is set (a model with none behaves exactly like the stock pipeline)."""
        return bool(
            self.default_threshold is not None
            or self.best_threshold_global is not None
            or self.thresholds_by_lang
            or self.label_thresholds
        )

    def to_dict(self) -> dict[str, Any]:
        """The keys that are set, in the form config.json and postprocessing.json store them."""
        values: dict[str, Any] = {}
        if self.default_threshold is not None:
            values["default_threshold"] = self.default_threshold
        if self.best_threshold_global is not None:
            values["best_threshold_global"] = self.best_threshold_global
        if self.thresholds_by_lang:
            values["thresholds_by_lang"] = dict(self.thresholds_by_lang)
        if self.label_thresholds:
            values["label_thresholds"] = dict(self.label_thresholds)
        return values

    def check_applies_to(
        self, problem_type: Optional[str], num_labels: int, source: str = "the threshold keys from config.json"
    ) -> None:
        """Raise a `ValueError` unless these thresholds can decide for a model of this kind.

        Thresholds decide binary single-label models (label 1 against label 0) and multi-label models (each label on
        its own); `label_thresholds` only the latter.
        """
        multi_label = problem_type == "multi_label_classification"
        if self.label_thresholds and not multi_label:
            raise ValueError(
                "`label_thresholds` applies to multi-label models; set `problem_type` to "
                "'multi_label_classification' in config.json or remove `label_thresholds`."
            )
        if self.configured and not multi_label and num_labels != 2:
            raise ValueError(
                f"Decision thresholds need a binary model (num_labels=2) or a multi-label one; this model has "
                f"num_labels={num_labels}. Remove {source}."
            )

    def resolve(self, lang: Optional[str] = None, mode: str = "auto") -> tuple[float, str]:
        """The decision threshold for an input in language `lang`, and which key it came from.

        Modes:
            - `"auto"`: `thresholds_by_lang[lang]` if known, else `best_threshold_global`, else `default_threshold`,
              else 0.5.
            - `"default"`: `default_threshold`, else 0.5 (the untuned decisions).
            - `"global"`: `best_threshold_global`; a `ValueError` if the model has none.
            - `"by_lang"`: like `"auto"`, but a `ValueError` if the model has no `thresholds_by_lang` or `lang` is
              missing.
        """
        if mode not in THRESHOLD_MODES:
            raise ValueError(f"`threshold_mode` must be one of {list(THRESHOLD_MODES)}, got {mode!r}.")
        if mode == "global" and self.best_threshold_global is None:
            raise ValueError("`threshold_mode='global'` needs `best_threshold_global` in the model config.")
        if mode == "by_lang":
            if not self.thresholds_by_lang:
                raise ValueError("`threshold_mode='by_lang'` needs `thresholds_by_lang` in the model config.")
            if lang is None:
                raise ValueError("`threshold_mode='by_lang'` needs a language: pass `lang=` or a `lang` key.")
        if mode in ("auto", "by_lang") and lang is not None and lang.lower() in self.thresholds_by_lang:
            return self.thresholds_by_lang[lang.lower()], "thresholds_by_lang"
        if mode in ("auto", "by_lang", "global") and self.best_threshold_global is not None:
            return self.best_threshold_global, "best_threshold_global"
        if self.default_threshold is not None:
            return self.default_threshold, "default_threshold"
        return FALLBACK_THRESHOLD, "fallback"

    def resolve_label(self, label: str, lang: Optional[str] = None, mode: str = "auto") -> float:
        """The threshold of one label of a multi-label model: `label_thresholds[label]`, else as `resolve`."""
        if mode != "default" and label in self.label_thresholds:
            return self.label_thresholds[label]
        return self.resolve(lang, mode)[0]


def check_choice(value: Any, choices: tuple, key: str) -> Any:
    """Return `value` if it is one of `choices`; raise a `ValueError` naming `key` otherwise."""
    if value not in choices:
        raise ValueError(f"`{key}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_non_negative(value: Any, key: str) -> float:
    """Return `value` as a float if it is a real number >= 0; raise a `ValueError` naming `key` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"`{key}` must be a number >= 0, got {value!r}.")
    return float(value)


def check_class_weights(value: Any, num_classes: int, key: str) -> Optional[list]:
    """`None`, or a list of `num_classes` non-negative weights, as floats."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != num_classes:
        raise ValueError(f"`{key}` must be a list of {num_classes} weights (one per class), got {value!r}.")
    return [check_non_negative(weight, f"{key}[{i}]") for i, weight in enumerate(value)]


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{key}` must be a whole number >= 0, got {value!r}. Fix the value in config.json.")
    return value


@dataclass(frozen=True)
class PrecisionRecord:
    """The precision the thresholds were tuned at, and what each other precision did to the tuned decisions on the
    author's dev set (`hubheads tune` writes it; the pipeline warns once when it runs at another precision).

    Args:
        tuned_precision (`str`, *optional*, defaults to `"float32"`):
            One of `MEASURED_PRECISIONS`.
        agreement (`dict[str, tuple[int, int]]`, *optional*):
            Per precision, (dev decisions that differ from float32's, dev rows).
    """

    tuned_precision: str = "float32"
    agreement: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PrecisionRecord":
        """Validate the `PRECISION_KEYS` of `values` (a config dict); a `ValueError` naming the key otherwise."""
        tuned = values.get("tuned_precision")
        tuned = "float32" if tuned is None else check_choice(tuned, MEASURED_PRECISIONS, "tuned_precision")
        raw = values.get("precision_agreement") or {}
        if not isinstance(raw, Mapping):
            raise ValueError(
                '`precision_agreement` must map precisions to {"decisions_differ": d, "rows": n}, got '
                f"{raw!r}. Fix it in config.json, or tune again."
            )
        agreement = {}
        for precision, entry in raw.items():
            key = f"precision_agreement[{precision!r}]"
            check_choice(precision, MEASURED_PRECISIONS, f"precision_agreement key {precision!r}")
            if not isinstance(entry, Mapping):
                raise ValueError(f'`{key}` must be {{"decisions_differ": d, "rows": n}}, got {entry!r}.')
            differ = _count(entry.get("decisions_differ"), f"{key}['decisions_differ']")
            rows = _count(entry.get("rows"), f"{key}['rows']")
            if differ > rows:
                raise ValueError(f"`{key}` says {differ} of {rows} decisions differ; fix it in config.json.")
            agreement[precision] = (differ, rows)
        return cls(tuned_precision=tuned, agreement=agreement)

    def to_dict(self) -> dict[str, Any]:
        """The keys as config.json stores them."""
        return {
            "tuned_precision": self.tuned_precision,
            "precision_agreement": {
                precision: {"decisions_differ": differ, "rows": rows}
                for precision, (differ, rows) in self.agreement.items()
            },
        }

    def mismatch_warning(self, running: str) -> Optional[str]:
        """What a consumer running the model at `running` should know, or `None` at the tuned precision."""
        if running == self.tuned_precision:
            return None
        said = f"The thresholds of this model were tuned at {self.tuned_precision}; it runs at {running}"
        # The agreement is counted against float32, and counts the same either way round.
        other = running if self.tuned_precision == "float32" else self.tuned_precision
        if "float32" in (running, self.tuned_precision) and other in self.agreement:
            differ, rows = self.agreement[other]
            return (
                f"{said}. On the author's dev set, {other} and float32 disagree on {differ} of {rows} tuned decisions "
                "(the model card's 'Faster precisions' table)."
            )
        return (
            f"{said}, which its author did not measure: a score near its threshold may cross it. Run it at "
            f"{self.tuned_precision} for the decisions the author tuned."
        )


__all__ = [
    "DecisionThresholds",
    "MEASURED_PRECISIONS",
    "PRECISION_KEYS",
    "PrecisionRecord",
    "POOLING_MODES",
    "THRESHOLD_KEYS",
    "THRESHOLD_MODES",
    "check_choice",
    "check_class_weights",
    "check_non_negative",
    "validate_threshold",
]
