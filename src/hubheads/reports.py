"""reports.json: what `hubheads tune` records about a repo's decisions, and the one place that knows its shape.

`tune` writes it (beside the thresholds, with `repo_files.rewrite_decisions`); `card`, `figures` and `demo` read it
with `read_reports`, which checks every key they use. This module owns the vocabulary they share: the kinds of model
(`model_kind`, `KINDS`), the decision rules (`RULE_NAMES`, `deployed_rule`), the metrics' names in cards and
`model-index` (`METRIC_TYPES`, `metric_name`), and how a metric and its interval are shown (`with_interval`). It
imports no command module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hubheads.errors import InvalidInputError
from hubheads.repo_files import MULTI_LABEL, label_names, read_json

REPORTS_FILE = "reports.json"
#: The kinds of model, one name each: two exclusive classes (`binary`, the ones thresholds apply to), more than two
#: (`multi_class`, argmax decisions), one yes/no decision per label (`multi_label`), and several heads with a binary
#: primary one (`multi_task`, the residual type fusion architecture). reports.json holds one of the tunable ones.
KINDS = ("binary", "multi_class", "multi_label", "multi_task")
TUNABLE_KINDS = ("binary", "multi_label", "multi_task")
MULTI_TASK_MODEL_TYPES = ("residual_type_fusion",)


def model_kind(config: Mapping[str, Any]) -> str:
    """The kind (one of `KINDS`) of the model whose config.json is `config`."""
    if config.get("problem_type") == MULTI_LABEL:
        return "multi_label"
    if config.get("model_type") in MULTI_TASK_MODEL_TYPES:
        return "multi_task"
    return "binary" if len(label_names(config)) == 2 else "multi_class"


# How each hubheads metric is named in `model-index` (type, config) and in the card.
METRIC_TYPES = {
    "macro_f1": ("f1", "macro", "Macro F1"),
    "f1": ("f1", "binary", "F1"),
    "accuracy": ("accuracy", None, "Accuracy"),
    "balanced_accuracy": ("balanced_accuracy", None, "Balanced accuracy"),
    "micro_f1": ("f1", "micro", "Micro F1"),
    "samples_f1": ("f1", "samples", "Samples F1"),
    "subset_accuracy": ("accuracy", "subset", "Subset accuracy"),
}
RULE_NAMES = {
    "default": "default threshold",
    "best_global": "best global threshold",
    "best_by_lang": "best per-language thresholds",
    "per_label": "best per-label thresholds",
}


def metric_name(metric: str, in_sentence: bool = False) -> str:
    """How a card and its figures name a hubheads metric (`"macro_f1"` → `"Macro F1"`); `in_sentence` for the middle
    of a sentence (`"macro F1"`, `"balanced accuracy"`, `"F1"`)."""
    name = METRIC_TYPES[metric][2]
    first, _, rest = name.partition(" ")
    return f"{first.lower()} {rest}".strip() if in_sentence and not first.isupper() else name


def deployed_rule(reports: Mapping[str, Any]) -> str:
    """The rule of `reports["rules"]` whose decisions the tuned repo makes (the pipeline's `threshold_mode="auto"`)."""
    if reports["kind"] == "multi_label":
        return "per_label" if reports["thresholds"].get("label_thresholds") else "best_global"
    return "best_by_lang" if reports["by_lang_kept"] else "best_global"


def with_interval(value: float, bounds: Sequence[float] | None, digits: int = 4) -> str:
    """A metric with its 95% interval, when it has one: `0.9347 [0.9029, 0.9623]`."""
    shown = f"{value:.{digits}f}"
    return shown + (f" [{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]" if bounds else "")


def cross_validated_estimate(reports: Mapping[str, Any]) -> tuple[str, dict[str, Any], int] | None:
    """The metric the cross-validated estimate is shown for (the tuned metric, else macro-F1: a multi-label model's
    `f1` is per label), its entry (`in_sample`, `estimate`, `interval`) and the folds; `None` without one."""
    cross_validation = reports.get("cross_validation") or {}
    estimates = cross_validation.get("metrics") or {}
    metric = reports["metric"] if reports["metric"] in estimates else "macro_f1"
    if metric not in estimates:
        return None
    return metric, estimates[metric], cross_validation["folds"]


def cross_validation_line(reports: Mapping[str, Any]) -> str | None:
    """The cross-validated estimate of the deployed rule next to its in-sample score, or `None` without one."""
    estimate = cross_validated_estimate(reports)
    if estimate is None:
        return None
    metric, values, folds = estimate
    return (
        f"{metric} of the tuned thresholds: in-sample {values['in_sample']:.4f}; cross-validated "
        f"({folds} folds) {with_interval(values['estimate'], values['interval'])}"
    )


def required_keys(reports: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The paths of `reports.json` the card reads, given what the file says it holds."""
    paths = [("kind",), ("metric",), ("data", "rows"), ("data", "file"), ("rules", "default")]
    paths += [("by_lang_kept",)] if reports.get("kind") != "multi_label" else [("thresholds",)]
    for rule in reports.get("rules") or {}:
        paths += [("rules", rule, "metrics"), ("rules", rule, "classification_report")]
    if "grid" in reports:
        paths += [("best_global", "threshold"), ("best_global", "value"), ("grid", "threshold"), ("grid", "value")]
    for lang in reports.get("by_lang") or {}:
        paths += [("min_lang_examples",)] + [("by_lang", lang, key) for key in ("rows", "positives", "threshold")]
        paths += [("by_lang", lang, "tuned"), ("by_lang", lang, "metrics")]
    for label in reports.get("per_label") or {}:
        paths += [("min_label_examples",)] + [("per_label", label, key) for key in ("support", "threshold", "tuned")]
        paths += [("per_label", label, "metrics", "default"), ("per_label", label, "metrics", "tuned")]
    for task in reports.get("tasks") or {}:
        paths += [("tasks", task, "metrics"), ("tasks", task, "classification_report")]
    return list(dict.fromkeys(paths))


def read_reports(folder: Path) -> dict[str, Any]:
    """`folder`'s reports.json (`{}` when there is none), checked for every key the card reads.

    Raises:
        `ValueError`: the file is not JSON, or lacks keys (cut short, edited, or written by another version of
            `hubheads tune`), naming them and the command that rewrites it.
    """
    path = folder / REPORTS_FILE
    if not path.is_file():
        return {}
    rewrite = f"run `hubheads tune {folder} --data DEV_FILE --force` to write it again"
    try:
        reports = read_json(path)
    except ValueError as error:
        raise InvalidInputError(f"{error} It is written by `hubheads tune`: {rewrite}.") from None
    missing = []
    for keys in required_keys(reports):
        value: Any = reports
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            missing.append("".join(f"[{key!r}]" for key in keys))
    unknown = sorted(set(reports.get("rules") or {}) - set(RULE_NAMES))
    if reports.get("kind") is not None and reports["kind"] not in TUNABLE_KINDS:
        unknown.append(f"the kind {reports['kind']!r}")
    if missing or unknown:
        what = (f"lacks {', '.join(missing[:6])}{' and more' if len(missing) > 6 else ''}" if missing else "") + (
            f"{'; ' if missing else ''}has what this version does not know: {', '.join(unknown)}" if unknown else ""
        )
        raise InvalidInputError(
            f"{path} {what} (it was cut short, edited, or written by another version of `hubheads tune`); {rewrite}."
        )
    return reports


__all__ = [
    "KINDS",
    "METRIC_TYPES",
    "REPORTS_FILE",
    "RULE_NAMES",
    "cross_validated_estimate",
    "cross_validation_line",
    "deployed_rule",
    "metric_name",
    "model_kind",
    "read_reports",
    "required_keys",
    "with_interval",
]
