"""The exact threshold search equals a brute-force optimum and never loses to a 0.05 grid."""

import numpy as np
import pytest

from hubheads.tuning import METRICS, best_threshold, metric_at, thresholds_by_lang


def _brute_force(scores, labels, metric, threshold):
    predicted = scores >= threshold
    tp = float(np.sum(predicted & (labels == 1)))
    fp = float(np.sum(predicted & (labels == 0)))
    fn = float(np.sum(~predicted & (labels == 1)))
    tn = float(np.sum(~predicted & (labels == 0)))
    f1_pos = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    f1_neg = 2 * tn / (2 * tn + fn + fp) if tn + fn + fp else 0.0
    recall_pos = tp / (tp + fn) if tp + fn else 0.0
    recall_neg = tn / (tn + fp) if tn + fp else 0.0
    return {
        "macro_f1": (f1_pos + f1_neg) / 2,
        "f1": f1_pos,
        "accuracy": (tp + tn) / len(labels),
        "balanced_accuracy": (recall_pos + recall_neg) / 2,
    }[metric]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("seed", range(6))
def test_exact_search_equals_brute_force_and_beats_the_grid(metric, seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(300) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1).round(3)  # rounding makes ties
    threshold, value = best_threshold(scores, labels, metric)
    candidates = np.r_[np.unique(scores), 1.0]
    brute = max(_brute_force(scores, labels, metric, t) for t in candidates)
    assert value == pytest.approx(brute, abs=1e-12)
    assert _brute_force(scores, labels, metric, threshold) == pytest.approx(value, abs=1e-12)
    grid = max(_brute_force(scores, labels, metric, t) for t in np.arange(0, 1.0001, 0.05))
    assert value >= grid - 1e-12
    assert metric_at(scores, labels, threshold, metric) == pytest.approx(value, abs=1e-12)
    assert metric_at(scores, labels, 0.5, metric) == pytest.approx(_brute_force(scores, labels, metric, 0.5))


def test_ties_go_to_the_cut_closest_to_half():
    # Perfectly separable: every cut between 0.2 and 0.8 is optimal.
    threshold, value = best_threshold([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert value == 1.0 and threshold == 0.5
    assert best_threshold([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == (0.25, 1.0)  # middle of (0.2, 0.3]
    assert best_threshold([0.6, 0.7, 0.8, 0.9], [0, 0, 1, 1]) == (0.75, 1.0)


def test_per_language_thresholds_skip_small_groups():
    rng = np.random.default_rng(0)
    langs = ["it"] * 60 + ["en"] * 60 + ["fr"] * 5
    labels = list((rng.random(125) < 0.5).astype(int))
    scores = [
        float(np.clip(0.6 * y + rng.normal(0.2 if lang == "it" else 0.1, 0.15), 0, 1))
        for y, lang in zip(labels, langs)
    ]
    result = thresholds_by_lang(scores, labels, langs)
    assert set(result) == {"en", "it"}
    for lang in ("en", "it"):
        rows = [i for i, x in enumerate(langs) if x == lang]
        assert result[lang] == best_threshold([scores[i] for i in rows], [labels[i] for i in rows])[0]


@pytest.mark.parametrize(
    "scores, labels, match", [([], [], "non-empty"), ([0.5], [2], "0 or 1"), ([0.1, 0.2], [1], "same length")]
)
def test_bad_input(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        best_threshold(scores, labels)


def test_scores_of_exactly_one_keep_the_threshold_in_range():
    threshold, value = best_threshold([1.0, 1.0, 0.2], [0, 0, 1], metric="accuracy")
    assert 0.0 <= threshold <= 1.0
    assert value == pytest.approx(_brute_force(np.array([1.0, 1.0, 0.2]), np.array([0, 0, 1]), "accuracy", threshold))
