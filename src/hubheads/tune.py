"""`hubheads tune MODEL_DIR --data dev.jsonl`: the exact decision thresholds of a model, from its dev set.

The model runs over the dev set through the hubheads pipeline (the same preprocessing consumers get: truncation,
language tokens, bios), and `hubheads.tuning` finds the exact optimum of the chosen metric over every cut point:

- binary models: one global threshold, and one per language with at least `min_lang_examples` dev rows of both
  classes (smaller groups fall back to the global one). The per-language thresholds are kept only when the decisions
  they make score at least as well on the whole dev set as the global threshold alone.
- multi-label models: one threshold per label with at least `MIN_LABEL_EXAMPLES` positive and negative dev rows, and
  a global one (pooled over every label) for the others.
- multi-task models (residual type fusion): the primary (trust) head as a binary model; the other heads are reported
  when the dev set has a column named after them (e.g. `type`).

The thresholds go into `MODEL_DIR/config.json` and `postprocessing.json`, and `reports.json` records the metrics of
each decision rule (at the default threshold, the best global one, the best per-language ones), a per-language table,
scikit-learn classification reports, and the best threshold of a 0.05 grid for comparison.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hubheads.datafiles import pick_columns, read_rows
from hubheads.errors import InvalidInputError, OutputExistsError, SourceNotFoundError
from hubheads.loading import load_pipeline
from hubheads.modeling.configuration_hubheads import FALLBACK_THRESHOLD, DecisionThresholds
from hubheads.precisions import SPEED_FILE, check_precision, precision_record, split_timings
from hubheads.repo_files import MULTI_LABEL, label_names, read_json, rewrite_decisions, sha256_file
from hubheads.reports import REPORTS_FILE, cross_validation_line, model_kind, with_interval
from hubheads.sources import check_trusted, runs_remote_code
from hubheads.tuning import (
    METRICS,
    MIN_LANG_EXAMPLES,
    best_grid_threshold,
    best_threshold,
    decision_metrics,
    metric_at,
    metric_curve,
    score_histogram,
    thresholds_by_lang,
)
from hubheads.uncertainty import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    FOLDS,
    SEED,
    Bootstrap,
    binary_metrics,
    interval,
    multi_class_metrics,
    multi_label_metrics,
    stratified_folds,
)
from hubheads.validators import check_whole_numbers

MIN_LABEL_EXAMPLES = 5
GRID_STEP = 0.05
TUNED_KEYS = ("best_threshold_global", "thresholds_by_lang", "label_thresholds")
HISTOGRAM_BINS = 40


@dataclass
class TuneResult:
    """What `tune_model` wrote.

    Args:
        thresholds (`DecisionThresholds`): the thresholds now in config.json.
        reports (`dict`): the content of reports.json.
        pipeline_declared (`bool`): whether config.json declares the hubheads pipeline.
        speeds (`dict`): each precision's measured speed (`precision_speeds.json`), empty when not measured.
    """

    thresholds: DecisionThresholds
    reports: dict[str, Any]
    pipeline_declared: bool
    speeds: dict[str, Any] = field(default_factory=dict)


class _Columns:
    """Reads the dev rows' fields, with errors that name the file, the row and the option to change."""

    def __init__(self, path: Path, rows: list[dict[str, Any]]):
        self.path, self.rows = path, rows
        self.available = sorted({key for row in rows for key in row})

    def has(self, column: str) -> bool:
        return column in self.available

    def require(self, column: str, option: str) -> None:
        if not self.has(column):
            raise InvalidInputError(
                f"--data {self.path} has no column {column!r} (columns: {self.available}); "
                f"name the right one with {option}."
            )

    def error(self, number: int, column: str, value: Any, expected: str) -> InvalidInputError:
        return InvalidInputError(f"--data {self.path}, row {number}: `{column}` is {value!r}; expected {expected}.")

    def texts_of(self, column: str) -> list[str]:
        self.require(column, "--text-column")
        for number, row in enumerate(self.rows, 1):
            if not isinstance(row.get(column), str):
                raise self.error(number, column, row.get(column), "a string")
        return [row[column] for row in self.rows]

    def optional_strings(self, column: str) -> list[str | None]:
        values = [row.get(column) for row in self.rows]
        for number, value in enumerate(values, 1):
            if value is not None and not isinstance(value, str):
                raise self.error(number, column, value, "a string or nothing")
        return [value.strip() or None if value is not None else None for value in values]

    def class_ids(self, column: str, names: Sequence[str], option: str) -> np.ndarray:
        """One class id per row, from an id (`1`, `"1"`, `true`) or a label name."""
        self.require(column, option)
        by_name = {name: i for i, name in enumerate(names)}
        ids = []
        for number, row in enumerate(self.rows, 1):
            value = row.get(column)
            if isinstance(value, str) and value.strip() in by_name:
                ids.append(by_name[value.strip()])
                continue
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if isinstance(value, (bool, int, float)) and float(value).is_integer() and 0 <= value < len(names):
                ids.append(int(value))
                continue
            raise self.error(number, column, value, f"a class id 0..{len(names) - 1} or one of {list(names)}")
        return np.asarray(ids, dtype=int)

    def label_sets(self, column: str, names: Sequence[str]) -> np.ndarray:
        """A (rows, labels) 0/1 matrix, from a list of names, a 0/1 list per label, a string of names separated by
        `;`, `|` or `,`, or (when `column` is missing) one 0/1 column per label."""
        if not self.has(column) and all(self.has(name) for name in names):
            return np.stack([self.class_ids(name, ["0", "1"], "--label-column") for name in names], axis=1)
        self.require(column, "--label-column")
        matrix = np.zeros((len(self.rows), len(names)), dtype=int)
        index = {name: i for i, name in enumerate(names)}
        for number, row in enumerate(self.rows, 1):
            value = row.get(column)
            if isinstance(value, str):
                separator = ";" if ";" in value else "|" if "|" in value else ","
                value = [part.strip() for part in value.split(separator) if part.strip()]
            if isinstance(value, list) and len(value) == len(names) and all(v in (0, 1) for v in value):
                matrix[number - 1] = [int(v) for v in value]
                continue
            if not isinstance(value, list) or any(not isinstance(v, str) or v not in index for v in value):
                raise self.error(
                    number, column, row.get(column), f"label names from {list(names)} (a list, or 'a;b'), or 0/1 flags"
                )
            matrix[number - 1, [index[v] for v in value]] = 1
        return matrix


def _classification_report(gold: np.ndarray, predicted: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import classification_report

    labels = list(range(len(names))) if gold.ndim == 1 else None
    return classification_report(
        gold, predicted, labels=labels, target_names=list(names), output_dict=True, zero_division=0
    )


@dataclass(frozen=True)
class Estimates:
    """How `tune` measures the uncertainty of its dev results (see `hubheads.uncertainty`).

    Args:
        bootstrap (`int`, *optional*, defaults to 1000): bootstrap resamples per interval; 0 reports no intervals.
        folds (`int`, *optional*, defaults to 5): cross-validation folds for the out-of-sample estimate of the tuned
            rule; 0 skips it.
        seed (`int`, *optional*, defaults to 0): the seed of the resamples and of the folds.
    """

    bootstrap: int = BOOTSTRAP_RESAMPLES
    folds: int = FOLDS
    seed: int = SEED

    def __post_init__(self) -> None:
        check_whole_numbers({"--bootstrap": self.bootstrap, "--seed": self.seed}, minimum=0)
        if not isinstance(self.folds, int) or isinstance(self.folds, bool) or self.folds == 1 or self.folds < 0:
            raise InvalidInputError(f"--folds must be 0 (no cross-validation) or at least 2, got {self.folds!r}.")

    def describe(self) -> dict[str, Any]:
        return {"resamples": self.bootstrap, "seed": self.seed, "confidence": CONFIDENCE, "method": "percentile"}


def _intervals(samples: Mapping[str, np.ndarray]) -> dict[str, list[float] | None]:
    return {name: interval(values) for name, values in samples.items()}


@dataclass
class _BinaryChoice:
    """The thresholds `tune` chooses for a binary decision: a global one, and per language when they pay."""

    global_threshold: float
    global_value: float
    by_lang: dict[str, float]
    kept: bool

    def cuts(self, langs: np.ndarray, candidate: bool = False) -> np.ndarray:
        """The threshold each row (by language code, `""` for none) is decided at; with `candidate=True`, as if the
        per-language thresholds were kept."""
        cuts = np.full(len(langs), self.global_threshold)
        for lang, threshold in self.by_lang.items() if self.kept or candidate else ():
            cuts[langs == lang] = threshold
        return cuts


def _choose_binary(
    scores: np.ndarray, gold: np.ndarray, langs: np.ndarray, metric: str, min_lang_examples: int
) -> _BinaryChoice:
    """The best global threshold, and the best per-language ones (`langs`: codes, `""` for none), kept only if the
    whole dev set gains too (each language optimised on its own can lower the pooled score)."""
    global_threshold, global_value = best_threshold(scores, gold, metric)
    tagged = langs != ""
    by_lang = thresholds_by_lang(scores[tagged], gold[tagged], langs[tagged], metric, min_lang_examples)
    choice = _BinaryChoice(global_threshold, global_value, by_lang, kept=False)
    if by_lang:
        pooled = decision_metrics(scores >= choice.cuts(langs, candidate=True), gold)[metric]
        choice.kept = pooled >= global_value - 1e-12
    return choice


def _lang_reason(
    rows: int, positives: int, lang: str, choice: _BinaryChoice, names: Sequence[str], reports: Mapping[str, Any]
) -> str:
    """Why a language is decided at its own threshold or at the global one, in words for the card and the demo."""
    if lang in choice.by_lang and choice.kept:
        return "own threshold"
    if lang in choice.by_lang:
        metric, pooled = reports["metric"], reports["rules"]["best_by_lang"]["metrics"][reports["metric"]]
        return (
            f"global: the per-language thresholds together lowered the whole dev set's {metric} "
            f"({pooled:.4f} < {choice.global_value:.4f})"
        )
    if rows < reports["min_lang_examples"]:
        return f"global: {rows} dev rows, fewer than {reports['min_lang_examples']}"
    return f"global: no dev row of class {names[1] if positives == 0 else names[0]!r}"


def _cross_validated(
    decide: Any, n: int, strata: Sequence[str] | np.ndarray, labels: Sequence[str], estimates: Estimates
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Out-of-fold decisions: `decide(train, held_out)` chooses thresholds on the rows `train` and returns the
    decisions of the rows `held_out`. Returns them (`None` when skipped) and what was done."""
    if not estimates.folds:
        return None, {"skipped": "--folds 0"}
    folds = min(estimates.folds, int(min(np.unique(np.asarray(labels, dtype=str), return_counts=True)[1])))
    if folds < 2:
        return None, {"skipped": "a class has fewer than 2 dev rows"}
    decisions: np.ndarray | None = None
    for held_out in stratified_folds(strata, labels, folds, estimates.seed):
        train = np.setdiff1d(np.arange(n), held_out)
        fold_decisions = decide(train, held_out)
        if decisions is None:
            decisions = np.zeros((n,) + fold_decisions.shape[1:], dtype=bool)
        decisions[held_out] = fold_decisions
    return decisions, {"folds": folds, "seed": estimates.seed}


def _estimate(in_sample: Mapping[str, float], observed: Mapping[str, np.ndarray], samples: Mapping[str, np.ndarray]):
    """The cross-validation entry of each metric: in-sample, cross-validated and its interval."""
    return {
        name: {"in_sample": float(in_sample[name]), "estimate": float(observed[name][0]), "interval": interval(values)}
        for name, values in samples.items()
    }


def _rule_reports(
    gold: np.ndarray, decisions: Mapping[str, np.ndarray], names: Sequence[str], estimates: Estimates, measure: Any
) -> tuple[np.ndarray, Bootstrap, dict[str, dict[str, Any]]]:
    """Stage 2 of both reports builders: each rule's metrics, 95% intervals and classification report, from one
    bootstrap over the rows' patterns (the gold labels, then each rule's decisions, as columns); returns the
    patterns, the bootstrap and the rules.

    `measure(boot, index, decided)` returns a rule's metrics and their resampled values; `index` counts the rules.
    """
    patterns = np.column_stack([gold, *decisions.values()]).astype(np.int8)
    boot = Bootstrap(patterns, estimates.bootstrap, estimates.seed)
    rules: dict[str, dict[str, Any]] = {}
    for index, (rule, decided) in enumerate(decisions.items()):
        metrics, samples = measure(boot, index, decided)
        rules[rule] = {
            "metrics": metrics,
            "intervals": _intervals(samples),
            "classification_report": _classification_report(gold, decided.astype(int), names),
        }
    return patterns, boot, rules


def _cross_validation_report(
    decide: Any,
    gold: np.ndarray,
    strata: Sequence[str] | np.ndarray,
    labels: Sequence[str],
    estimates: Estimates,
    deployed: tuple[str, Mapping[str, float]],
    stratified_by: list[str],
    measure: Any,
) -> dict[str, Any]:
    """Stage 4 of both reports builders: the deployed rule (`(name, in-sample metrics)`) cross-validated, with the
    95% interval of each metric; `measure(boot, observed)` reads the metrics off a bootstrap over (gold, out-of-fold
    decisions)."""
    out_of_fold, cross_validation = _cross_validated(decide, len(gold), strata, labels, estimates)
    if out_of_fold is not None:
        boot = Bootstrap(np.column_stack([gold, out_of_fold]).astype(np.int8), estimates.bootstrap, estimates.seed)
        observed = measure(boot, True)
        cross_validation.update(
            stratified_by=stratified_by,
            rule=deployed[0],
            metrics=_estimate(deployed[1], observed, measure(boot, False)),
        )
    return cross_validation


def _language_table(
    scores: np.ndarray,
    gold: np.ndarray,
    lang_array: np.ndarray,
    choice: _BinaryChoice,
    decisions: Mapping[str, np.ndarray],
    patterns: np.ndarray,
    names: Sequence[str],
    reports: Mapping[str, Any],
    estimates: Estimates,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Stage 3 of the binary reports: per language, its rows, threshold, each rule's metric with its interval and why
    it has its own threshold or not; and its metric curve."""
    metric = reports["metric"]
    table: dict[str, dict[str, Any]] = {}
    curves: dict[str, Any] = {}
    for index, lang in enumerate(sorted(set(lang_array.tolist()) - {""})):
        rows = np.flatnonzero(lang_array == lang)
        lang_boot = Bootstrap(patterns[rows], estimates.bootstrap, [estimates.seed, index + 1])
        table[lang] = {
            "rows": len(rows),
            "positives": int(gold[rows].sum()),
            "threshold": choice.by_lang[lang] if lang in choice.by_lang and choice.kept else choice.global_threshold,
            "tuned": lang in choice.by_lang and choice.kept,
            "metrics": {
                rule: float(decision_metrics(decided[rows], gold[rows])[metric]) for rule, decided in decisions.items()
            },
            "intervals": {
                rule: interval(binary_metrics(lang_boot, 0, column, [metric])[metric])
                for column, rule in enumerate(decisions, 1)
            },
        }
        table[lang]["reason"] = _lang_reason(len(rows), table[lang]["positives"], lang, choice, names, reports)
        curves[lang] = metric_curve(scores[rows], gold[rows], metric)
    return table, curves


def _binary_reports(
    scores: np.ndarray,
    gold: np.ndarray,
    langs: list[str | None],
    names: Sequence[str],
    metric: str,
    default: float,
    min_lang_examples: int,
    estimates: Estimates = Estimates(),
) -> tuple[DecisionThresholds, dict[str, Any]]:
    """Global and per-language thresholds of a binary decision (`score` = probability of label 1), and reports."""
    for name, count in ((names[0], int((gold == 0).sum())), (names[1], int(gold.sum()))):
        if count == 0:
            raise InvalidInputError(f"The dev set has no row of class {name!r}; tuning needs both classes.")
    lang_array = np.array([lang or "" for lang in langs], dtype=str)
    choice = _choose_binary(scores, gold, lang_array, metric, min_lang_examples)
    grid_threshold, grid_value = best_grid_threshold(scores, gold, metric, GRID_STEP)
    cuts = {"default": np.full(len(scores), default), "best_global": np.full(len(scores), choice.global_threshold)}
    if choice.by_lang:
        cuts["best_by_lang"] = choice.cuts(lang_array, candidate=True)
    decisions = {rule: scores >= cut for rule, cut in cuts.items()}
    patterns, boot, rules = _rule_reports(
        gold,
        decisions,
        names,
        estimates,
        lambda boot, index, decided: (decision_metrics(decided, gold), binary_metrics(boot, 0, index + 1, METRICS)),
    )
    thresholds = DecisionThresholds(
        default_threshold=default,
        best_threshold_global=choice.global_threshold,
        thresholds_by_lang=choice.by_lang if choice.kept else {},
    )
    reports: dict[str, Any] = {
        "positive_label": names[1],
        "metric": metric,
        "min_lang_examples": min_lang_examples,
        "thresholds": thresholds.to_dict(),
        "best_global": {"threshold": choice.global_threshold, "value": choice.global_value},
        "grid": {"step": GRID_STEP, "threshold": grid_threshold, "value": grid_value},
        "rules": rules,
        "by_lang_tuned": choice.by_lang,
        "by_lang_kept": choice.kept,
    }
    deployed = "best_by_lang" if choice.kept else "best_global"
    table, curves = _language_table(scores, gold, lang_array, choice, decisions, patterns, names, reports, estimates)

    def decide(train: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        fold = _choose_binary(scores[train], gold[train], lang_array[train], metric, min_lang_examples)
        return scores[held_out] >= fold.cuts(lang_array[held_out])

    strata = np.char.add(np.char.add(lang_array, "|"), gold.astype(str))
    cross_validation = _cross_validation_report(
        decide,
        gold,
        strata,
        gold.astype(str).tolist(),
        estimates,
        (deployed, rules[deployed]["metrics"]),
        ["language", "label"],
        lambda boot, observed: binary_metrics(boot, 0, 1, METRICS, observed=observed),
    )
    reports.update(
        by_lang=table,
        bootstrap=estimates.describe(),
        cross_validation=cross_validation,
        curves={"metric": metric, "pooled": metric_curve(scores, gold, metric), "by_lang": curves},
        score_histograms={
            "bins": HISTOGRAM_BINS,
            "panels": {
                f"P({names[1]})": {name: score_histogram(scores[gold == value]) for value, name in enumerate(names)}
            },
        },
    )
    return thresholds, reports


def _choose_labels(scores: np.ndarray, gold: np.ndarray, metric: str) -> tuple[float, float, dict[int, float]]:
    """The pooled global threshold, its value, and the labels (by column) with enough examples of both kinds to
    get their own threshold."""
    global_threshold, global_value = best_threshold(scores.ravel(), gold.ravel(), metric)
    own: dict[int, float] = {}
    for j in range(gold.shape[1]):
        positives = int(gold[:, j].sum())
        if min(positives, len(gold) - positives) >= MIN_LABEL_EXAMPLES:
            own[j] = best_threshold(scores[:, j], gold[:, j], metric)[0]
    return global_threshold, global_value, own


def _label_table(
    scores: np.ndarray,
    gold: np.ndarray,
    names: Sequence[str],
    cuts: Mapping[str, np.ndarray],
    own: Mapping[int, float],
    boot: Bootstrap,
    block: Mapping[str, slice],
    metric: str,
    default: float,
) -> dict[str, Any]:
    """Stage 3 of the multi-label reports: per label, its support, threshold, metric at the default and the tuned
    threshold with their intervals, and the best threshold of the grid."""
    per_label: dict[str, Any] = {}
    for j, name in enumerate(names):
        grid_threshold, grid_value = best_grid_threshold(scores[:, j], gold[:, j], metric, GRID_STEP)
        threshold = float(cuts["per_label"][j])
        per_label[name] = {
            "support": int(gold[:, j].sum()),
            "threshold": threshold,
            "tuned": j in own,
            "metrics": {
                "default": metric_at(scores[:, j], gold[:, j], default, metric),
                "tuned": metric_at(scores[:, j], gold[:, j], threshold, metric),
                "grid": grid_value,
            },
            "intervals": {
                shown: interval(binary_metrics(boot, j, block[rule].start + j, [metric])[metric])
                for shown, rule in (("default", "default"), ("tuned", "per_label"))
            },
            "grid_threshold": grid_threshold,
        }
    return per_label


def _label_figures_data(scores: np.ndarray, gold: np.ndarray, names: Sequence[str], metric: str) -> dict[str, Any]:
    """Stage 5 of the multi-label reports: what the figures draw, the metric curves and the score histograms."""
    return {
        "curves": {
            "metric": metric,
            "pooled": metric_curve(scores.ravel(), gold.ravel(), metric),
            "per_label": {name: metric_curve(scores[:, j], gold[:, j], metric) for j, name in enumerate(names)},
        },
        "score_histograms": {
            "bins": HISTOGRAM_BINS,
            "panels": {
                name: {
                    f"not {name}": score_histogram(scores[gold[:, j] == 0, j]),
                    name: score_histogram(scores[gold[:, j] == 1, j]),
                }
                for j, name in enumerate(names)
            },
        },
    }


def _multi_label_reports(
    scores: np.ndarray,
    gold: np.ndarray,
    names: Sequence[str],
    metric: str,
    default: float,
    estimates: Estimates = Estimates(),
) -> tuple[DecisionThresholds, dict[str, Any]]:
    """One threshold per label with enough examples of both kinds, a pooled global one for the rest, and reports."""
    if not gold.any():
        raise InvalidInputError("The dev set has no label set to 1 on any row; tuning needs positive examples.")
    global_threshold, global_value, own = _choose_labels(scores, gold, metric)
    label_thresholds = {names[j]: threshold for j, threshold in own.items()}
    cuts = {
        "default": np.full(len(names), default),
        "best_global": np.full(len(names), global_threshold),
        "per_label": np.array([own.get(j, global_threshold) for j in range(len(names))]),
    }
    labels = len(names)
    # Bootstrap columns: the gold label set, then each rule's decisions, a block of `labels` columns each.
    block = {rule: slice(labels * i, labels * (i + 1)) for i, rule in enumerate(cuts, 1)}

    def measure(boot: Bootstrap, index: int, decided: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        columns = (slice(0, labels), block[list(cuts)[index]])
        return _observed(_set_metrics(boot, *columns, observed=True)), _set_metrics(boot, *columns)

    _, boot, rules = _rule_reports(
        gold, {rule: scores >= cut for rule, cut in cuts.items()}, names, estimates, measure
    )
    per_label = _label_table(scores, gold, names, cuts, own, boot, block, metric, default)
    deployed = "per_label" if label_thresholds else "best_global"

    def decide(train: np.ndarray, held_out: np.ndarray) -> np.ndarray:
        fold_global, _, fold_own = _choose_labels(scores[train], gold[train], metric)
        fold_cuts = np.array([fold_own.get(j, fold_global) for j in range(labels)])
        return scores[held_out] >= fold_cuts

    # Stratified by each row's rarest label (or none): every label's positives spread over the folds.
    frequency = gold.sum(axis=0)
    strata = [
        names[int(min(np.flatnonzero(row), key=lambda j: frequency[j]))] if row.any() else "(none)" for row in gold
    ]
    cross_validation = _cross_validation_report(
        decide,
        gold,
        strata,
        _common_strata(strata, estimates.folds),
        estimates,
        (deployed, rules[deployed]["metrics"]),
        ["rarest label"],
        lambda boot, observed: _set_metrics(boot, slice(0, labels), slice(labels, 2 * labels), observed),
    )
    thresholds = DecisionThresholds(
        default_threshold=default, best_threshold_global=global_threshold, label_thresholds=label_thresholds
    )
    reports = {
        "metric": metric,
        "min_label_examples": MIN_LABEL_EXAMPLES,
        "thresholds": thresholds.to_dict(),
        "best_global": {"threshold": global_threshold, "value": global_value},
        "rules": rules,
        "per_label": per_label,
        "bootstrap": estimates.describe(),
        "cross_validation": cross_validation,
        **_label_figures_data(scores, gold, names, metric),
    }
    return thresholds, reports


def _set_metrics(boot: Bootstrap, gold: slice, decided: slice, observed: bool = False) -> dict[str, Any]:
    """The label-set metrics of `multi_label_metrics` (not its per-label F1) for the columns `gold` and `decided`."""
    metrics = multi_label_metrics(boot, gold, decided, observed=observed)
    metrics.pop("per_label_f1")
    return metrics


def _common_strata(strata: Sequence[str], folds: int) -> list[str]:
    """`strata`, with those of fewer than `folds` rows merged into the most common one."""
    values, counts = np.unique(np.asarray(strata, dtype=str), return_counts=True)
    common = values[counts.argmax()]
    small = set(values[counts < max(folds, 2)])
    return [common if stratum in small else stratum for stratum in strata]


def _observed(metrics: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Metrics computed on the dev rows themselves (`observed=True`: one value each) as plain floats."""
    return {name: float(np.ravel(values)[0]) for name, values in metrics.items()}


def _head_report(gold: np.ndarray, predicted: np.ndarray, names: Sequence[str], estimates: Estimates) -> dict:
    boot = Bootstrap(np.stack([gold, predicted], axis=1), estimates.bootstrap, estimates.seed)
    return {
        "labels": list(names),
        "metrics": _observed(multi_class_metrics(boot, len(names), observed=True)),
        "intervals": _intervals(multi_class_metrics(boot, len(names))),
        "classification_report": _classification_report(gold, predicted, names),
    }


def _task_reports(heads: Mapping[str, Any], dev: _Columns, outputs: list[Any], estimates: Estimates) -> dict:
    """The report of every head but the primary one of a multi-task model, when the dev set has its column."""
    reports = {}
    for task, (_, head_names) in list(heads.items())[1:]:
        if dev.has(task):
            head_gold = dev.class_ids(task, head_names, f"a `{task}` column")
            predicted = np.array([head_names.index(output["tasks"][task][0]["label"]) for output in outputs])
            reports[task] = _head_report(head_gold, predicted, head_names, estimates)
    return reports


def _score_rows(
    model_dir: Path,
    items: list[dict[str, Any]],
    run: dict[str, Any],
    remote_code: bool,
    precision: str,
) -> tuple[list[Any], Any]:
    """Run the hubheads pipeline over `items` at `precision` with every label's probability returned; return the
    outputs and the pipeline (its model at float32). `run`: `batch_size`, `device`, `progress`."""
    from tqdm.auto import tqdm

    from hubheads.precisions import quiet_precision_warnings, use_precision

    classifier = load_pipeline(model_dir, trust_remote_code=remote_code, device=run["device"], option="MODEL_DIR")
    float_model, batch_size = classifier.model, run["batch_size"]
    outputs: list[Any] = []
    chunk = max(batch_size * 8, 256)
    try:
        use_precision(classifier, precision)
        bar = tqdm(total=len(items), desc="scoring the dev set", unit="row", disable=not run["progress"])
        with bar, quiet_precision_warnings():  # re-tuning: the thresholds of before are being replaced
            for start in range(0, len(items), chunk):
                # threshold=0 and top_k=None: every label with its probability, in any model kind.
                outputs += classifier(items[start : start + chunk], threshold=0.0, top_k=None, batch_size=batch_size)
                bar.update(len(items[start : start + chunk]))
    finally:
        classifier.model = float_model
    return outputs, classifier


def _precision_report(classifier: Any, dev: _DevSet, thresholds: Any, metric: str, batch_size: int) -> dict:
    """What each precision does to the tuned decisions on the dev set (`hubheads.precisions`), with the metric of each
    precision's decisions."""
    from hubheads.precisions import measure_precisions
    from hubheads.tuning import decision_metrics

    def score(decisions: list[Any]) -> float:
        if dev.multi_label:
            chosen = np.array([[name in decision for name in dev.names] for decision in decisions])
            return decision_metrics(chosen.ravel(), np.asarray(dev.gold).astype(bool).ravel())[metric]
        primary = [decision[0] if isinstance(decision, tuple) else decision for decision in decisions]
        return decision_metrics([label == dev.names[1] for label in primary], dev.gold)[metric]

    classifier.thresholds = thresholds  # the decisions just tuned
    return measure_precisions(classifier, dev.items(), batch_size=batch_size, metric=score)


def _probabilities(ranked: list[dict[str, Any]], names: Sequence[str]) -> list[float]:
    score = {entry["label"]: entry["score"] for entry in ranked}
    return [score[name] for name in names]


def tune_model(
    model_dir: str | os.PathLike,
    data: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str = "label",
    lang_column: str | None = None,
    bio_column: str | None = None,
    metric: str = "macro_f1",
    min_lang_examples: int = MIN_LANG_EXAMPLES,
    batch_size: int = 32,
    device: Any = None,
    force: bool = False,
    progress: bool = True,
    trust_remote_code: bool = False,
    encoding: str = "utf-8",
    bootstrap: int = BOOTSTRAP_RESAMPLES,
    folds: int = FOLDS,
    seed: int = SEED,
    precisions: bool = True,
    precision: str = "float32",
) -> TuneResult:
    """Tune the decision thresholds of the model in `model_dir` on the labelled rows of `data`, and write them.

    Args:
        model_dir (`str` or `os.PathLike`):
            An exported repo (or a checkpoint folder with a tokenizer). Its config.json and postprocessing.json get
            the thresholds; reports.json the metrics.
        data (`str` or `os.PathLike`):
            The dev set: `.jsonl`, `.json`, `.csv`, `.tsv` or `.parquet` (`hubheads.datafiles`, as `score` reads).
        text_column (`str`, *optional*, defaults to `"text"`):
            The column of the texts.
        label_column (`str`, *optional*, defaults to `"label"`):
            The gold labels: a class id or label name; for multi-label, a list of names, a string of names separated
            by `;`, `|` or `,`, or 0/1 flags. A multi-label dev set may instead have one 0/1 column per label.
        lang_column (`str`, *optional*):
            The language codes (per-language thresholds). Defaults to `lang` when the data has that column.
        bio_column (`str`, *optional*):
            The authors' bios, for a model that reads them. Defaults to `bio` when the data has that column.
        metric (`str`, *optional*, defaults to `"macro_f1"`):
            What the thresholds maximise: one of `METRICS` (for multi-label, on each label's yes/no decisions).
        min_lang_examples (`int`, *optional*, defaults to 20):
            A language gets its own threshold only with at least this many dev rows, of both classes.
        batch_size (`int`, *optional*, defaults to 32):
            Pipeline batch size.
        device (*optional*):
            Passed to `pipeline(device=...)`, e.g. `"cuda:0"`.
        force (`bool`, *optional*, defaults to `False`):
            Replace thresholds tuned before (config.json's `best_threshold_global`, `thresholds_by_lang`,
            `label_thresholds`) and an existing reports.json.
        progress (`bool`, *optional*, defaults to `True`):
            Show a progress bar while scoring.
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Run a model whose config.json's `auto_map` points at code transformers does not ship (such as
            gte-multilingual-base's `Alibaba-NLP/new-impl`). Without it such a model is refused at once.
        encoding (`str`, *optional*, defaults to `"utf-8"`):
            The text encoding of `data` (a UTF-8 byte-order mark is skipped), e.g. `"latin-1"` or `"cp1252"`.
        bootstrap (`int`, *optional*, defaults to 1000):
            Bootstrap resamples behind the 95% interval of every reported metric; 0 reports no intervals.
        folds (`int`, *optional*, defaults to 5):
            Cross-validation folds (stratified by language and label) for the out-of-sample estimate of the tuned
            rule: thresholds chosen on k - 1 folds decide the held-out one. 0 skips it.
        seed (`int`, *optional*, defaults to 0):
            The seed of the bootstrap resamples and the folds: the same data gives the same reports.json.
        precisions (`bool`, *optional*, defaults to `True`):
            Also run the tuned decisions on the dev set at bfloat16 and dynamic int8, and record in reports.json
            (`precisions`) how many each changes against float32, its metric and its speed here
            (`hubheads.precisions`); the card shows it.
        precision (`str`, *optional*, defaults to `"float32"`):
            Tune the thresholds on the scores of the model at this precision (`"bfloat16"`, `"int8"`), for authors
            who serve it there. config.json records it (`tuned_precision`, with `precision_agreement`: what each
            precision measured changes), and the pipeline warns once when it runs at another one.

    Ties between equally good thresholds resolve as in [`hubheads.tuning.best_threshold`]: 0.5 if it is optimal,
    otherwise the middle of the optimal interval nearest to 0.5.
    """
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise SourceNotFoundError(
            f"MODEL_DIR {folder} has no config.json; pass an exported repo or checkpoint folder."
        )
    if metric not in METRICS:
        raise InvalidInputError(f"--metric must be one of {list(METRICS)}, got {metric!r}.")
    check_whole_numbers({"--min-lang-examples": min_lang_examples, "--batch-size": batch_size})
    check_precision(precision)
    estimates = Estimates(bootstrap=bootstrap, folds=folds, seed=seed)
    config = read_json(folder / "config.json")
    check_trusted(config, folder, trust_remote_code)
    previous = [key for key in TUNED_KEYS if config.get(key)] + (
        [REPORTS_FILE] if (folder / REPORTS_FILE).exists() else []
    )
    if previous and not force:
        raise OutputExistsError(
            f"MODEL_DIR {folder} was tuned before ({', '.join(previous)}); pass --force (force=True) to replace it."
        )
    columns = {"text": text_column, "label": label_column, "lang": lang_column, "bio": bio_column}
    dev = _read_dev_set(folder, config, Path(data), encoding, columns)
    run = {"batch_size": batch_size, "device": device, "progress": progress}
    outputs, classifier = _score_rows(folder, dev.items(), run, runs_remote_code(config), precision)
    model_config = classifier.model.config

    default = config.get("default_threshold")
    default = FALLBACK_THRESHOLD if default is None else float(default)
    task_heads = getattr(model_config, "task_heads", None)
    heads = task_heads() if callable(task_heads) else None
    if dev.multi_label:
        scores = np.array([_probabilities(ranked, dev.names) for ranked in outputs])
        thresholds, reports = _multi_label_reports(scores, dev.gold, dev.names, metric, default, estimates)
    else:
        primary = [output["tasks"][next(iter(heads))] for output in outputs] if heads else outputs
        scores = np.array([_probabilities(ranked, dev.names)[1] for ranked in primary])
        langs = dev.langs or [None] * len(dev.texts)
        thresholds, reports = _binary_reports(
            scores, dev.gold, langs, dev.names, metric, default, min_lang_examples, estimates
        )
    if heads:
        reports["tasks"] = _task_reports(heads, dev, outputs, estimates)
    speeds: dict[str, Any] = {}
    if precisions:
        reports["precisions"], speeds = split_timings(
            _precision_report(classifier, dev, thresholds, metric, batch_size)
        )

    reports = _with_header(reports, config, metric, Path(data), dev, min_lang_examples)
    reports["tuned_precision"] = precision
    extra = {REPORTS_FILE: reports, **({SPEED_FILE: speeds} if speeds else {})}
    declared = rewrite_decisions(folder, thresholds, extra, precision=precision_record(precision, reports))
    return TuneResult(thresholds=thresholds, reports=reports, pipeline_declared=declared, speeds=speeds)


def _with_header(
    reports: dict[str, Any], config: Mapping[str, Any], metric: str, data: Path, dev: _DevSet, min_lang_examples: int
) -> dict[str, Any]:
    """reports.json: what was tuned, on which data and with which settings, then `reports`."""
    from hubheads import __version__

    return {
        "hubheads_version": __version__,
        "kind": model_kind(config),
        "metric": metric,
        "data": {"file": data.name, "sha256": sha256_file(data), "rows": len(dev.texts), "columns": dev.column_names},
        "labels": dev.names,
        "min_lang_examples": min_lang_examples,
        "min_label_examples": MIN_LABEL_EXAMPLES,
        **reports,
    }


class _DevSet(_Columns):
    """The dev rows `tune` scores: texts, languages, bios and gold labels, read with the model's label names."""

    def __init__(self, path: Path, rows: list[dict[str, Any]], names: list[str], multi_label: bool, reads_bio: bool):
        super().__init__(path, rows)
        self.names, self.multi_label, self.reads_bio = names, multi_label, reads_bio
        self.texts: list[str] = []
        self.langs: list[str | None] = []
        self.bios: list[str | None] = []
        self.gold = np.zeros(0, dtype=int)
        self.column_names: dict[str, str | None] = {}

    def items(self) -> list[dict[str, Any]]:
        """The pipeline's inputs, one per row."""
        items: list[dict[str, Any]] = [{"text": text} for text in self.texts]
        for item, lang in zip(items, self.langs):
            item["lang"] = lang
        for item, bio in zip(items, self.bios):
            item["bio"] = bio
        return items


def _read_dev_set(folder: Path, config: Mapping[str, Any], data: Path, encoding: str, columns: dict) -> _DevSet:
    """Read the dev rows of `data` for the model in `folder`, with the columns named in `columns` (text, label, lang,
    bio; lang and bio are picked up when present and the model uses them)."""
    names = label_names(config)
    multi_label = config.get("problem_type") == MULTI_LABEL
    rows = read_rows(data, encoding)
    if not multi_label and len(names) != 2:
        if any(isinstance(row.get(columns["label"]), list) for row in rows):
            raise InvalidInputError(
                f"--data {data} gives several gold labels per row, but {folder}'s config.json has no "
                f"`problem_type: multi_label_classification`, so its {len(names)} classes are exclusive. If the model "
                "was trained multi-label (sigmoid per label), mark it so: `hubheads export SRC OUT --multi-label`, "
                "then tune OUT."
            )
        raise InvalidInputError(
            f"Decision thresholds need a binary or multi-label model; {folder} has {len(names)} classes "
            f"({names}). Its argmax decisions need no tuning."
        )
    dev = _DevSet(data, rows, names, multi_label, reads_bio=bool(config.get("use_bio")))
    dev.texts = dev.texts_of(columns["text"])
    lang_column, bio_column = pick_columns(dev.available, columns["lang"], columns["bio"], dev.reads_bio, folder)
    if lang_column:
        dev.langs = [lang.lower() if lang else None for lang in dev.optional_strings(lang_column)]
    dev.bios = dev.optional_strings(bio_column) if bio_column else []
    label_column = columns["label"]
    dev.gold = (
        dev.label_sets(label_column, names) if multi_label else dev.class_ids(label_column, names, "--label-column")
    )
    dev.column_names = {"text": columns["text"], "label": label_column, "lang": lang_column, "bio": bio_column}
    return dev


def summary(result: TuneResult) -> list[str]:
    """The lines `hubheads tune` prints: the thresholds, the dev metrics of each decision rule with their 95%
    intervals, and the cross-validated estimate of the tuned one."""
    reports = result.reports
    metric = reports["metric"]
    rounded = {
        key: {name: round(value, 4) for name, value in value.items()} if isinstance(value, dict) else round(value, 4)
        for key, value in result.thresholds.to_dict().items()
    }
    lines = [f"  thresholds: {json.dumps(rounded, sort_keys=True)} (to 4 decimals; config.json has them in full)"]
    if reports.get("tuned_precision", "float32") != "float32":
        lines.append(f"  tuned on the model's scores at {reports['tuned_precision']}")
    multi_label = reports["kind"] == "multi_label"
    for rule, values in reports["rules"].items():
        intervals = values.get("intervals") or {}
        shown = values["metrics"] if multi_label else [metric]
        cells = ", ".join(f"{name} {with_interval(values['metrics'][name], intervals.get(name))}" for name in shown)
        lines.append(f"  {rule:<12} {cells}" if multi_label else f"  dev {metric} {rule:<12} {cells.split(' ', 1)[1]}")
    if reports["kind"] != "multi_label":
        grid = reports["grid"]
        lines.append(f"  (best 0.05-grid threshold {grid['threshold']:.2f}: {metric} {grid['value']:.4f})")
        if reports["by_lang_tuned"] and not reports["by_lang_kept"]:
            lines.append("  per-language thresholds lowered the whole dev set's score; only the global one is kept")
    estimate = cross_validation_line(reports)
    if estimate:
        lines.append(f"  {estimate}")
    if reports.get("precisions"):
        from hubheads.precisions import precision_lines

        lines += precision_lines(reports["precisions"], metric, result.speeds)
    return lines


__all__ = [
    "MIN_LABEL_EXAMPLES",
    "Estimates",
    "TuneResult",
    "read_rows",
    "summary",
    "tune_model",
]
