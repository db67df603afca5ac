"""How far the dev results of `hubheads tune` can be trusted: bootstrap intervals and a cross-validated estimate.

**Bootstrap intervals.** Every metric `tune` reports is a sum over dev rows turned into a ratio: confusion cells,
per-row F1 scores, exact-match counts. Resampling the n rows with replacement only changes how often each distinct
row *pattern* (the gold label or labels, and the decisions of every rule) is drawn, and those counts follow a
multinomial law. `Bootstrap` therefore draws the counts of the distinct patterns directly: exact, and
O(resamples x patterns) instead of O(resamples x rows). A binary dev set has at most 16 patterns (the gold label and
three rules' decisions), so a million rows cost what a hundred do. `scipy.stats.bootstrap` and
`sklearn.utils.resample` resample the rows themselves (10^9 draws for 1M rows and 1000 resamples), which is why
this part is written here. The intervals are percentile intervals of the resampled metric.

**Cross-validation.** `tune` chooses the thresholds on the dev set it then scores them on, which flatters them.
`stratified_folds` (scikit-learn's `StratifiedKFold`, stratified by language and label) splits the dev set in k
folds; `tune` repeats its whole choice on k - 1 of them and applies it to the held-out one, so every row gets a
decision from thresholds that never saw it. Those out-of-fold decisions estimate what the tuned rule scores on new
data from the same distribution (the model itself is fixed: it never saw the dev set).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from hubheads.errors import InvalidInputError
from hubheads.tuning import f1_from_counts, metric_from_counts
from hubheads_cli.defaults import BOOTSTRAP_RESAMPLES, FOLDS, SEED  # noqa: F401  (shown by `hubheads tune --help`)

CONFIDENCE = 0.95


class Bootstrap:
    """Bootstrap resamples of a set of rows, as the number of times each distinct row pattern is drawn.

    Args:
        patterns (`np.ndarray` of shape `(rows, columns)`):
            One row per dev row: everything a metric reads of it (gold labels, decisions), as integers.
        resamples (`int`): how many resamples to draw.
        seed (`int` or sequence of `int`): the random seed (`numpy.random.default_rng`).

    `total(values)` sums a per-pattern value over the rows of every resample; `observed_total(values)` over the rows
    themselves, so a metric written once gives both the point estimate and its resampled values.
    """

    def __init__(self, patterns: np.ndarray, resamples: int, seed: int | Sequence[int] = SEED):
        patterns = np.asarray(patterns, dtype=np.int64)
        patterns = patterns.reshape(len(patterns), -1)
        if len(patterns) == 0:
            raise InvalidInputError("Bootstrap needs at least one row.")
        self.patterns, observed = _distinct_rows(patterns)
        self.rows = len(patterns)
        self.observed = observed.astype(float)
        rng = np.random.default_rng(seed)
        self.counts = rng.multinomial(self.rows, observed / self.rows, size=resamples).astype(float)

    def column(self, index: int | slice) -> np.ndarray:
        """Column(s) `index` of the distinct patterns."""
        return self.patterns[:, index]

    def total(self, values: np.ndarray) -> np.ndarray:
        """Per resample, the sum over its rows of `values` (one value, or one row of values, per pattern)."""
        return self.counts @ np.asarray(values, dtype=float)

    def observed_total(self, values: np.ndarray) -> np.ndarray:
        """The sum over the original rows of `values`, shaped like one resample of `total`."""
        return self.observed[None, :] @ np.asarray(values, dtype=float)


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of an integer matrix and how often each occurs. Each row is read as one number in mixed
    radix when that fits in 63 bits (a 1-D `np.unique`, much faster than `np.unique(axis=0)` on a million rows)."""
    low = rows.min(axis=0)
    radix = rows.max(axis=0) - low + 1
    if float(np.prod(radix.astype(float))) >= 2.0**62:
        return np.unique(rows, axis=0, return_counts=True)
    weights = np.cumprod(np.r_[1, radix[:-1]]).astype(np.int64)
    _, first, counts = np.unique((rows - low) @ weights, return_index=True, return_counts=True)
    return rows[first], counts


def interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> list[float] | None:
    """The percentile interval of resampled metric values (`None` without resamples)."""
    samples = np.asarray(samples, dtype=float)
    if samples.size == 0:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def binary_metrics(boot: Bootstrap, gold: int, predicted: int, metrics: Sequence[str], observed: bool = False):
    """Each of `metrics` for the binary decisions in pattern column `predicted` against column `gold`, per
    resample (or, with `observed=True`, on the rows themselves): `{metric: array}`."""
    total = boot.observed_total if observed else boot.total
    y, p = boot.column(gold).astype(bool), boot.column(predicted).astype(bool)
    tp, fp, fn, tn = (total((a & b).astype(float)) for a, b in ((p, y), (p, ~y), (~p, y), (~p, ~y)))
    return {metric: metric_from_counts(tp, fp, fn, tn, metric) for metric in metrics}


def multi_label_metrics(boot: Bootstrap, gold: slice, predicted: slice, observed: bool = False):
    """Micro, macro and samples F1, subset accuracy and each label's F1 for the label sets in pattern columns
    `predicted` against `gold`, with scikit-learn's definitions (`zero_division=0`): `{metric: array}`, and
    `per_label_f1` of shape `(resamples, labels)`."""
    total = boot.observed_total if observed else boot.total
    y, p = boot.column(gold).astype(bool), boot.column(predicted).astype(bool)
    tp, fp, fn = total((y & p).astype(float)), total((~y & p).astype(float)), total((y & ~p).astype(float))
    per_label = f1_from_counts(tp, fp, fn)
    hits, sizes = (y & p).sum(axis=1), y.sum(axis=1) + p.sum(axis=1)
    row_f1 = np.divide(2 * hits, sizes, out=np.zeros(len(hits)), where=sizes > 0)
    return {
        "micro_f1": f1_from_counts(tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)),
        "macro_f1": per_label.mean(axis=-1),
        "samples_f1": total(row_f1) / boot.rows,
        "subset_accuracy": total((y == p).all(axis=1).astype(float)) / boot.rows,
        "per_label_f1": per_label,
    }


def multi_class_metrics(boot: Bootstrap, classes: int, observed: bool = False):
    """Accuracy and macro F1 over `classes` classes of the argmax decisions in pattern column 1 against column 0."""
    total = boot.observed_total if observed else boot.total
    y, p = boot.column(0), boot.column(1)
    correct = total((y == p).astype(float))
    tp = np.stack([total(((y == c) & (p == c)).astype(float)) for c in range(classes)], axis=-1)
    fp = np.stack([total(((y != c) & (p == c)).astype(float)) for c in range(classes)], axis=-1)
    fn = np.stack([total(((y == c) & (p != c)).astype(float)) for c in range(classes)], axis=-1)
    return {"accuracy": correct / boot.rows, "macro_f1": f1_from_counts(tp, fp, fn).mean(axis=-1)}


def stratified_folds(
    strata: Sequence[str] | np.ndarray, labels: Sequence[str] | np.ndarray, folds: int, seed: int = SEED
) -> list[np.ndarray]:
    """The held-out row indices of each of `folds` folds, stratified by `strata` (e.g. language and label); a
    stratum with fewer rows than folds is stratified by its `labels` value alone.

    Raises:
        `ValueError`: a label has fewer rows than `folds`.
    """
    from sklearn.model_selection import StratifiedKFold

    strata_array, label_array = np.asarray(strata, dtype=str), np.asarray(labels, dtype=str)
    values, counts = np.unique(label_array, return_counts=True)
    if counts.min() < folds:
        raise InvalidInputError(
            f"{folds} folds need {folds} rows of each label; {values[counts.argmin()]!r} has {counts.min()}"
        )
    names, sizes = np.unique(strata_array, return_counts=True)
    small = set(names[sizes < folds].tolist())
    merged = np.where(np.isin(strata_array, list(small)), np.char.add("label=", label_array), strata_array)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a merged stratum may still hold fewer rows than folds
        return [held_out for _, held_out in splitter.split(np.zeros(len(merged)), merged)]


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "Bootstrap",
    "CONFIDENCE",
    "FOLDS",
    "SEED",
    "binary_metrics",
    "interval",
    "multi_class_metrics",
    "multi_label_metrics",
    "stratified_folds",
]
