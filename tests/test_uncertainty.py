"""Bootstrap intervals and the cross-validated estimate of `hubheads tune`, on generated data whose truth is known.

The coverage test draws many dev sets from a population whose macro-F1 at a threshold is computed exactly from the
normal distribution, and counts how often the reported 95% interval holds it. The cross-validation tests use scores
that carry no information (the "optimum" is noise, so in-sample tuning only flatters) and scores that do.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import accuracy_score, f1_score

from hubheads.tune import Estimates, _binary_reports, _multi_label_reports
from hubheads.tuning import METRICS, decision_metrics, metric_at, metric_curve
from hubheads.uncertainty import (
    Bootstrap,
    binary_metrics,
    interval,
    multi_class_metrics,
    multi_label_metrics,
    stratified_folds,
)

POSITIVE_RATE, MEANS, SPREAD = 0.3, (0.35, 0.62), 0.15


def _population_macro_f1(threshold: float) -> float:
    """The macro-F1 of `score >= threshold` on the whole population of `_draw`, from the normal CDF."""
    above = [norm.sf(threshold, loc=mean, scale=SPREAD) for mean in MEANS]  # P(score >= t | class)
    tp, fn = POSITIVE_RATE * above[1], POSITIVE_RATE * (1 - above[1])
    fp, tn = (1 - POSITIVE_RATE) * above[0], (1 - POSITIVE_RATE) * (1 - above[0])
    return (2 * tp / (2 * tp + fp + fn) + 2 * tn / (2 * tn + fn + fp)) / 2


def _draw(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    gold = (rng.random(rows) < POSITIVE_RATE).astype(int)
    return rng.normal(np.take(MEANS, gold), SPREAD), gold


def test_the_bootstrap_reproduces_scikit_learns_metrics_on_the_observed_rows():
    rng = np.random.default_rng(3)
    gold, predicted = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    boot = Bootstrap(np.stack([gold, predicted], axis=1), resamples=10)
    observed = binary_metrics(boot, 0, 1, METRICS, observed=True)
    assert {name: float(values[0]) for name, values in observed.items()} == pytest.approx(
        decision_metrics(predicted, gold), abs=1e-12
    )

    gold_sets, predicted_sets = rng.integers(0, 2, (400, 4)), rng.integers(0, 2, (400, 4))
    gold_sets[:20], predicted_sets[:10] = 0, 0  # empty label sets, on both sides
    boot = Bootstrap(np.concatenate([gold_sets, predicted_sets], axis=1), resamples=10)
    values = multi_label_metrics(boot, slice(0, 4), slice(4, 8), observed=True)
    for average in ("micro", "macro", "samples"):
        expected = f1_score(gold_sets, predicted_sets, average=average, zero_division=0)
        assert values[f"{average}_f1"][0] == pytest.approx(expected, abs=1e-12)
    assert values["subset_accuracy"][0] == pytest.approx(accuracy_score(gold_sets, predicted_sets), abs=1e-12)
    per_label = f1_score(gold_sets, predicted_sets, average=None, zero_division=0)
    assert values["per_label_f1"][0] == pytest.approx(per_label, abs=1e-12)

    classes, guesses = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # class 3 never predicted
    values = multi_class_metrics(Bootstrap(np.stack([classes, guesses], axis=1), resamples=10), 4, observed=True)
    assert values["accuracy"][0] == pytest.approx(accuracy_score(classes, guesses), abs=1e-12)
    expected = f1_score(classes, guesses, average="macro", labels=range(4), zero_division=0)
    assert values["macro_f1"][0] == pytest.approx(expected, abs=1e-12)


def test_resampled_counts_are_multinomial_draws_of_the_rows():
    rng = np.random.default_rng(4)
    rows = rng.integers(0, 2, (1000, 3))
    boot = Bootstrap(rows, resamples=4000, seed=1)
    assert (boot.counts.sum(axis=1) == 1000).all()  # every resample has as many rows as the data
    share = boot.observed / boot.rows
    assert boot.counts.mean(axis=0) / 1000 == pytest.approx(share, abs=0.01)
    # A pattern drawn with probability p appears n * p * (1 - p) times in variance, as in row resampling.
    assert boot.counts.var(axis=0) == pytest.approx(1000 * share * (1 - share), rel=0.15)
    again = Bootstrap(rows, resamples=4000, seed=1)
    assert (again.counts == boot.counts).all()
    assert interval(np.array([])) is None


def test_intervals_cover_the_population_value_at_the_nominal_rate():
    # The population's best threshold (its macro-F1 optimum) and the default 0.5, both known exactly.
    grid = np.linspace(0.3, 0.7, 4001)
    optimum = grid[np.argmax([_population_macro_f1(t) for t in grid])]
    rng = np.random.default_rng(5)
    trials, covered = 200, {"default": 0, "optimum": 0}
    for trial in range(trials):
        scores, gold = _draw(400, rng)
        _, reports = _binary_reports(
            scores, gold, [None] * 400, ["no", "yes"], "macro_f1", 0.5, 20, Estimates(folds=0, seed=trial)
        )
        low, high = reports["rules"]["default"]["intervals"]["macro_f1"]
        covered["default"] += low <= _population_macro_f1(0.5) <= high
        boot = Bootstrap(np.stack([gold, scores >= optimum], axis=1), 1000, seed=trial)
        low, high = interval(binary_metrics(boot, 0, 1, ["macro_f1"])["macro_f1"])
        covered["optimum"] += low <= _population_macro_f1(optimum) <= high
    for rule, count in covered.items():
        assert 0.90 <= count / trials <= 0.99, (rule, count)


@pytest.mark.parametrize("seed", range(4))
def test_the_cross_validated_estimate_is_below_the_in_sample_score_when_the_optimum_is_noise(seed):
    rng = np.random.default_rng(seed)
    langs = ["en"] * 150 + ["it"] * 150
    gold = (rng.random(300) < 0.4).astype(int)
    scores = rng.random(300)  # no information: any tuned threshold fits noise
    _, reports = _binary_reports(scores, gold, langs, ["no", "yes"], "macro_f1", 0.5, 20, Estimates(seed=seed))
    cross_validation = reports["cross_validation"]
    assert cross_validation["folds"] == 5 and cross_validation["stratified_by"] == ["language", "label"]
    estimate = cross_validation["metrics"]["macro_f1"]
    deployed = "best_by_lang" if reports["by_lang_kept"] else "best_global"
    assert estimate["in_sample"] == reports["rules"][deployed]["metrics"]["macro_f1"]
    assert estimate["estimate"] < estimate["in_sample"]
    assert estimate["interval"][0] <= estimate["estimate"] <= estimate["interval"][1]

    tags = (rng.random((300, 3)) < 0.3).astype(int)
    _, reports = _multi_label_reports(rng.random((300, 3)), tags, ["a", "b", "c"], "f1", 0.5, Estimates(seed=seed))
    estimate = reports["cross_validation"]["metrics"]["macro_f1"]
    assert estimate["estimate"] < estimate["in_sample"]


def test_with_a_real_signal_the_cross_validated_estimate_is_close_to_the_in_sample_score():
    scores, gold = _draw(3000, np.random.default_rng(6))
    _, reports = _binary_reports(scores, gold, [None] * 3000, ["no", "yes"], "macro_f1", 0.5, 20, Estimates())
    estimate = reports["cross_validation"]["metrics"]["macro_f1"]
    assert estimate["interval"][0] <= estimate["in_sample"] <= estimate["interval"][1]
    assert abs(estimate["estimate"] - _population_macro_f1(reports["best_global"]["threshold"])) < 0.03


def test_folds_partition_the_rows_and_keep_each_language_and_label_balanced():
    rng = np.random.default_rng(7)
    langs = rng.choice(["en", "it", "es", "xx"], p=[0.5, 0.3, 0.195, 0.005], size=1000)
    gold = (rng.random(1000) < 0.25).astype(int)
    strata = [f"{lang}|{label}" for lang, label in zip(langs, gold)]
    folds = stratified_folds(strata, gold.astype(str), 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(1000))
    for stratum in set(strata):
        members = {i for i, s in enumerate(strata) if s == stratum}
        if len(members) >= 5:  # "xx" rows are too few: they are stratified by label alone
            per_fold = [len(members & set(fold.tolist())) for fold in folds]
            assert max(per_fold) - min(per_fold) <= 1, (stratum, per_fold)
    with pytest.raises(ValueError, match="5 folds need 5 rows of each label"):
        stratified_folds(["a"] * 10, ["0"] * 7 + ["1"] * 3, 5)


def test_a_class_with_fewer_rows_than_folds_gets_fewer_folds_and_no_folds_can_be_asked():
    rng = np.random.default_rng(8)
    gold = np.array([1, 1, 1] + [0] * 57)
    scores = rng.random(60)
    _, reports = _binary_reports(scores, gold, [None] * 60, ["no", "yes"], "f1", 0.5, 20, Estimates())
    assert reports["cross_validation"]["folds"] == 3
    _, reports = _binary_reports(scores, gold, [None] * 60, ["no", "yes"], "f1", 0.5, 20, Estimates(folds=0))
    assert reports["cross_validation"] == {"skipped": "--folds 0"}
    _, reports = _binary_reports(scores, gold, [None] * 60, ["no", "yes"], "f1", 0.5, 20, Estimates(bootstrap=0))
    assert reports["rules"]["default"]["intervals"]["f1"] is None
    for bad, message in (({"folds": 1}, "--folds"), ({"bootstrap": -1}, "--bootstrap"), ({"seed": 1.5}, "--seed")):
        with pytest.raises(ValueError, match=message):
            Estimates(**bad)


def test_the_recorded_curves_are_the_metric_at_each_threshold():
    rng = np.random.default_rng(9)
    scores, gold = rng.random(200), (rng.random(200) < 0.5).astype(int)
    curve = metric_curve(scores, gold, "f1")
    assert curve["exact"] and curve["thresholds"][0] == 0.0 and curve["thresholds"][-1] == 1.0
    assert len(curve["thresholds"]) == 203  # 0, each distinct score, just above the highest, and 1
    for threshold, value in zip(curve["thresholds"], curve["values"]):
        assert value == pytest.approx(metric_at(scores, gold, threshold, "f1"), abs=1e-6)
    many, many_gold = rng.random(5000), (rng.random(5000) < 0.5).astype(int)
    thinned, exact = (
        metric_curve(many, many_gold, "f1", max_points=100),
        metric_curve(many, many_gold, "f1", max_points=10**6),
    )
    assert not thinned["exact"] and len(thinned["thresholds"]) <= 101
    assert set(thinned["thresholds"]) <= set(exact["thresholds"])
    assert max(thinned["values"]) == max(exact["values"])  # the best cut point is always kept
