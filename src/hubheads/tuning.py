"""Exact decision-threshold search for binary classifiers.

A threshold `t` predicts 1 when `score >= t`. Only the observed scores are distinct cut points, so scanning them
(plus one cut above every score) finds the exact optimum of any confusion-matrix metric, which a 0.05 grid can only
approach. All cut points are scored at once from cumulative counts: O(n log n) for the sort.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np

from hubheads.errors import InvalidInputError
from hubheads_cli.defaults import METRICS, MIN_LANG_EXAMPLES  # noqa: F401  (shown by `hubheads tune --help`)

# Scores or labels: any sequence of numbers, or a numpy array.
ArrayLike = Union[Sequence[float], np.ndarray]


def _safe_div(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0)


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 from confusion counts, 0 where there is neither a positive nor a prediction (scikit-learn's
    `zero_division=0`): the one F1 of `tune`, its bootstrap intervals and its cross-validation."""
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def metric_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray, metric: str) -> np.ndarray:
    """`metric` from confusion counts (arrays: one value per decision rule, cut point or resample)."""
    if metric not in METRICS:
        raise InvalidInputError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if metric == "accuracy":
        return (tp + tn) / (tp + fp + fn + tn)
    if metric == "balanced_accuracy":
        return (_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp)) / 2
    f1_positive = f1_from_counts(tp, fp, fn)
    return f1_positive if metric == "f1" else (f1_positive + f1_from_counts(tn, fn, fp)) / 2


def metric_at_cuts(scores: np.ndarray, labels: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct cut point (descending) and the metric when predicting 1 for `score >= cut`."""
    if metric not in METRICS:
        raise InvalidInputError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Positions where the score changes: a cut at sorted_scores[i] predicts 1 for rows 0..i.
    last_of_run = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(scores) - 1]
    tp = np.cumsum(sorted_labels)[last_of_run].astype(float)
    fp = (last_of_run + 1) - tp
    positives, negatives = float(labels.sum()), float(len(labels) - labels.sum())
    # One more cut above every score: predict 0 everywhere.
    cuts = np.r_[np.nextafter(sorted_scores[0], np.inf), sorted_scores[last_of_run]]
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    return cuts, metric_from_counts(tp, fp, positives - tp, negatives - fp, metric)


def metric_curve(scores: ArrayLike, labels: ArrayLike, metric: str = "macro_f1", max_points: int = 500) -> dict:
    """`metric` as a function of the threshold, for a figure: `{"thresholds": [...], "values": [...], "exact": bool}`.

    The thresholds are the exact cut points, ascending from 0 (predict 1 everywhere) to 1; `values[i]`
    holds for every threshold in `(thresholds[i - 1], thresholds[i]]` (a step plot with `drawstyle="steps-pre"`).
    Above `max_points` cut points the curve keeps evenly spaced ones and the best one (`"exact": False`).
    """
    cuts, values = metric_at_cuts(np.asarray(scores, dtype=float), np.asarray(labels, dtype=int), metric)
    cuts, values = np.r_[0.0, np.minimum(cuts[::-1], 1.0)], np.r_[values[-1], values[::-1]]
    if cuts[-1] < 1.0:  # above every score: predict 0 everywhere, up to 1
        cuts, values = np.r_[cuts, 1.0], np.r_[values, values[-1]]
    exact = len(cuts) <= max_points
    if not exact:
        kept = np.unique(np.r_[np.linspace(0, len(cuts) - 1, max_points).round().astype(int), np.argmax(values)])
        cuts, values = cuts[kept], values[kept]
    return {"thresholds": cuts.tolist(), "values": np.round(values, 6).tolist(), "exact": exact}


def score_histogram(scores: ArrayLike, bins: int = 40) -> list[int]:
    """How many `scores` fall in each of `bins` equal bins over [0, 1] (the last one closed)."""
    counts, _ = np.histogram(np.clip(np.asarray(scores, dtype=float), 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    return counts.tolist()


def decision_metrics(predicted: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Every metric of `METRICS` for binary decisions `predicted` against `labels`."""
    p, y = np.asarray(predicted, dtype=bool), np.asarray(labels, dtype=bool)
    if p.shape != y.shape or p.size == 0:
        raise InvalidInputError("predictions and labels must be non-empty and of the same length")
    tp, fp, fn, tn = (np.array([float(np.sum(a & b))]) for a, b in ((p, y), (p, ~y), (~p, y), (~p, ~y)))
    return {metric: float(metric_from_counts(tp, fp, fn, tn, metric)[0]) for metric in METRICS}


def best_threshold(scores: Iterable[float], labels: Iterable[int], metric: str = "macro_f1") -> tuple[float, float]:
    """The threshold with the best `metric` on (scores, labels), and that metric's value.

    Every threshold between two neighbouring scores makes the same predictions. Among the optimal intervals, the
    returned threshold is 0.5 when an optimal interval contains it, otherwise the middle of the optimal interval
    nearest to 0.5 (the lower one on a tie): the least surprising choice, with a margin on both sides.
    """
    scores_array = np.asarray(scores if isinstance(scores, np.ndarray) else list(scores), dtype=float)
    labels_array = np.asarray(labels if isinstance(labels, np.ndarray) else list(labels), dtype=int)
    if scores_array.shape != labels_array.shape or scores_array.size == 0:
        raise InvalidInputError("scores and labels must be non-empty and of the same length")
    if not set(np.unique(labels_array)) <= {0, 1}:
        raise InvalidInputError("labels must be 0 or 1")
    cuts, values = metric_at_cuts(scores_array, labels_array, metric)
    # Cut i predicts like every threshold in (low[i], high[i]]: cut 0 (above every score) like (max score, 1],
    # the lowest cut like [0, lowest score].
    lows = np.r_[cuts[1:], 0.0]
    highs = np.r_[1.0, cuts[1:]]
    # Predicting 0 everywhere needs a threshold above 1 when a score is 1: that interval is then empty.
    valid = (highs > lows) | (np.arange(len(cuts)) == len(cuts) - 1)
    best_value = values[valid].max()
    candidates = [
        0.5 if lows[i] < 0.5 <= highs[i] else float((lows[i] + highs[i]) / 2)
        for i in np.flatnonzero(valid & np.isclose(values, best_value, rtol=0, atol=1e-12))
    ]
    threshold = min(candidates, key=lambda t: (abs(t - 0.5), t))
    return threshold, float(best_value)


def metric_at(scores: ArrayLike, labels: ArrayLike, threshold: float, metric: str = "macro_f1") -> float:
    """`metric` when predicting 1 for `score >= threshold`."""
    cuts, values = metric_at_cuts(np.asarray(scores, dtype=float), np.asarray(labels, dtype=int), metric)
    # The cut in effect is the lowest cut point still >= threshold.
    eligible = np.flatnonzero(cuts >= threshold)
    return float(values[eligible[-1]]) if eligible.size else float(values[0])


def best_grid_threshold(
    scores: ArrayLike, labels: ArrayLike, metric: str = "macro_f1", step: float = 0.05
) -> tuple[float, float]:
    """The best threshold on a grid of `step` (0, 0.05, ..., 1) and its metric: the hand-made search that
    `best_threshold` replaces, kept to report how much the exact search gains."""
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    values = [metric_at(scores, labels, float(t), metric) for t in grid]
    best = int(np.argmax(values))
    return float(grid[best]), float(values[best])


def thresholds_by_lang(
    scores: ArrayLike,
    labels: ArrayLike,
    langs: Sequence[str] | np.ndarray,
    metric: str = "macro_f1",
    min_examples: int = MIN_LANG_EXAMPLES,
) -> dict[str, float]:
    """The best threshold per language, for languages with at least `min_examples` rows of both classes mixed in;
    smaller groups are left out, so they fall back to the global threshold."""
    scores_array, labels_array = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    langs_array = np.asarray(langs, dtype=str)
    result = {}
    for lang in np.unique(langs_array).tolist():
        rows = langs_array == lang
        positives, count = int(labels_array[rows].sum()), int(rows.sum())
        if count >= min_examples and 0 < positives < count:
            result[lang] = best_threshold(scores_array[rows], labels_array[rows], metric)[0]
    return result
