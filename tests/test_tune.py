"""`hubheads tune`: exact thresholds from a dev set, written into a real exported repo, with reports.

Dev labels are generated from the tiny model's own scores (plus noise), and the expected optimum is found by brute
force over reference probabilities computed text by text, independently of the pipeline `tune` runs.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from tiny import (
    MULTI_LABELS,
    TYPE_LABELS,
    build_gated_bio,
    build_model,
    build_residual_type_fusion,
    build_tokenizer,
    probabilities,
    sample_texts,
    save_checkpoint,
)

from hubheads.export import export_model
from hubheads.offline_hub import install_in_offline_cache, run_stock_pipeline
from hubheads.tune import _binary_reports, read_rows, tune_model
from hubheads.tuning import METRICS, best_grid_threshold, decision_metrics
from hubheads_cli import main


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _brute_force_best(scores, labels, metric):
    """The best `metric` over every threshold that changes a decision (each distinct score, and above all)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    return max(decision_metrics(scores >= t, labels)[metric] for t in np.r_[np.unique(scores), 1.0 + 1e-9])


@pytest.fixture
def binary_repo(tmp_path):
    export_model(save_checkpoint(tmp_path / "ckpt"), tmp_path / "repo")
    texts = sample_texts(240, seed=1)
    scores = [row[1] for row in probabilities(build_model(), build_tokenizer(), texts)]
    rng = np.random.default_rng(0)
    langs = ["it"] * 110 + ["en"] * 115 + ["fr"] * 15
    # it is biased up, en down: each language has its own best threshold. fr has too few rows to be tuned.
    shift = {"it": 0.25, "en": -0.15, "fr": 0.0}
    labels = [int(rng.random() < np.clip(s + shift[lang], 0, 1)) for s, lang in zip(scores, langs)]
    labels[-15:] = [0] * 10 + [1] * 5
    rows = [{"text": t, "lang": lang, "label": y} for t, lang, y in zip(texts, langs, labels)]
    return tmp_path / "repo", _write_jsonl(tmp_path / "dev.jsonl", rows), np.array(scores), np.array(labels), langs


@pytest.mark.parametrize("metric", METRICS)
def test_binary_thresholds_equal_the_brute_force_optimum_and_beat_the_grid(binary_repo, metric):
    repo, data, scores, labels, langs = binary_repo
    result = tune_model(repo, data, metric=metric, force=True, progress=False)
    config = json.loads((repo / "config.json").read_text())
    written = {key: config[key] for key in ("default_threshold", "best_threshold_global") if key in config}
    assert written == {"default_threshold": 0.5, "best_threshold_global": result.thresholds.best_threshold_global}
    best = _brute_force_best(scores, labels, metric)
    at_written = decision_metrics(scores >= config["best_threshold_global"], labels)[metric]
    assert at_written == pytest.approx(best, abs=1e-12)
    assert best >= best_grid_threshold(scores, labels, metric)[1] - 1e-12
    reports = json.loads((repo / "reports.json").read_text())
    assert reports["best_global"]["value"] == pytest.approx(best, abs=1e-12)
    assert reports["best_global"]["value"] >= reports["grid"]["value"]
    by_lang = reports["by_lang_tuned"]
    assert set(by_lang) == {"it", "en"}  # fr: 15 rows, under the minimum of 20
    for lang, threshold in by_lang.items():
        rows = [i for i, x in enumerate(langs) if x == lang]
        expected = _brute_force_best(scores[rows], labels[rows], metric)
        assert decision_metrics(scores[rows] >= threshold, labels[rows])[metric] == pytest.approx(expected, abs=1e-12)
        grid = best_grid_threshold(scores[rows], labels[rows], metric)[1]
        assert expected >= grid - 1e-12
    if reports["by_lang_kept"]:
        assert config["thresholds_by_lang"] == by_lang
        assert reports["rules"]["best_by_lang"]["metrics"][metric] >= reports["best_global"]["value"] - 1e-12
    else:
        assert "thresholds_by_lang" not in config


def test_reports_and_postprocessing_carry_every_rule(binary_repo):
    repo, data, scores, labels, langs = binary_repo
    tune_model(repo, data, progress=False)
    reports = json.loads((repo / "reports.json").read_text())
    postprocessing = json.loads((repo / "postprocessing.json").read_text())
    config = json.loads((repo / "config.json").read_text())
    assert reports["kind"] == "binary" and reports["metric"] == "macro_f1" and reports["data"]["rows"] == 240
    assert set(reports["rules"]) == {"default", "best_global", "best_by_lang"}
    # The rule at the default threshold is the stock 0.5 decision, recomputed here.
    at_half = decision_metrics(scores >= 0.5, labels)
    assert reports["rules"]["default"]["metrics"] == pytest.approx(at_half)
    report = reports["rules"]["default"]["classification_report"]  # scikit-learn's, with the label names
    assert report["LABEL_1"]["support"] == int(labels.sum()) and "macro avg" in report
    assert report["macro avg"]["f1-score"] == pytest.approx(at_half["macro_f1"])
    assert set(reports["by_lang"]) == {"it", "en", "fr"}
    assert reports["by_lang"]["fr"]["tuned"] is False
    assert reports["by_lang"]["fr"]["threshold"] == config["best_threshold_global"]
    assert reports["by_lang"]["it"]["rows"] == 110
    for key in ("default_threshold", "best_threshold_global", "thresholds_by_lang"):
        assert postprocessing.get(key) == config.get(key)
    assert (
        config["custom_pipelines"]["text-classification"]["impl"]
        == "pipeline_hubheads.HubheadsTextClassificationPipeline"
    )


def test_per_language_thresholds_are_dropped_when_they_lower_the_whole_dev_score():
    # A generated case (found by search) where each language's own optimum lowers the pooled macro-F1.
    rng = np.random.default_rng(15)
    langs = ["a"] * 30 + ["b"] * 30
    gold = (rng.random(60) < np.where(np.arange(60) < 30, 0.2, 0.7)).astype(int)
    scores = np.clip(rng.normal(0.4 + 0.2 * gold, 0.2), 0, 1)
    thresholds, reports = _binary_reports(scores, gold, langs, ["no", "yes"], "macro_f1", 0.5, 20)
    assert set(reports["by_lang_tuned"]) == {"a", "b"} and reports["by_lang_kept"] is False
    assert reports["rules"]["best_by_lang"]["metrics"]["macro_f1"] < reports["best_global"]["value"]
    assert thresholds.thresholds_by_lang == {} and thresholds.best_threshold_global is not None


@pytest.mark.consumer
def test_a_consumer_gets_the_tuned_decisions(binary_repo, hf_home):
    repo, data, scores, labels, langs = binary_repo
    result = tune_model(repo, data, progress=False)
    install_in_offline_cache(repo, "org/tuned", cache_dir=hf_home / "hub")
    texts = [row["text"] for row in read_rows(data)]
    (decisions,) = run_stock_pipeline("org/tuned", hf_home, [{"inputs": texts, "kwargs": {"lang": langs}}])["results"]
    for decision, score, lang in zip(decisions, scores, langs):
        threshold = result.thresholds.resolve(lang)[0]
        assert decision["threshold"] == threshold
        assert decision["label"] == ("LABEL_1" if score >= threshold else "LABEL_0")


def test_tuning_twice_needs_force_and_replaces_old_languages(binary_repo):
    repo, data, *_ = binary_repo
    tune_model(repo, data, progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        tune_model(repo, data, progress=False)
    rows = [row for row in read_rows(data) if row["lang"] != "it"]
    only_en = _write_jsonl(repo.parent / "dev-en.jsonl", rows)
    tune_model(repo, only_en, force=True, progress=False)
    config = json.loads((repo / "config.json").read_text())
    assert "it" not in config.get("thresholds_by_lang", {})  # replaced, not merged with the previous tuning


def test_multi_label_thresholds_per_label_from_every_label_format(tmp_path):
    model = build_model(num_labels=len(MULTI_LABELS), id2label=dict(enumerate(MULTI_LABELS)))
    with torch.no_grad():
        model.classifier.weight.mul_(0.05)  # scores spread around 0.5, so every label has positives and negatives
    model.config.problem_type = "multi_label_classification"
    tokenizer = build_tokenizer()
    export_model(model, tmp_path / "repo", tokenizer=tokenizer)
    texts = sample_texts(150, seed=2)
    scores = np.array(probabilities(model, tokenizer, texts, multi_label=True))
    rng = np.random.default_rng(3)
    gold = (rng.random(scores.shape) < scores).astype(int)
    gold[:, -1] = 0
    gold[:3, -1] = 1  # vulgarity: 3 positives, under the minimum of 5, so it keeps the global threshold
    names = [[MULTI_LABELS[j] for j in np.flatnonzero(row)] for row in gold]
    _write_jsonl(tmp_path / "dev.jsonl", [{"text": t, "label": n} for t, n in zip(texts, names)])
    with open(tmp_path / "dev.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "tags"])
        writer.writerows([t, ";".join(n)] for t, n in zip(texts, names))
    with open(tmp_path / "flags.tsv", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["text", *MULTI_LABELS])
        writer.writerows([t, *row] for t, row in zip(texts, gold))
    results = [
        tune_model(tmp_path / "repo", tmp_path / "dev.jsonl", metric="f1", force=True, progress=False),
        tune_model(
            tmp_path / "repo", tmp_path / "dev.csv", label_column="tags", metric="f1", force=True, progress=False
        ),
        tune_model(tmp_path / "repo", tmp_path / "flags.tsv", metric="f1", force=True, progress=False),
    ]
    assert results[0].thresholds == results[1].thresholds == results[2].thresholds
    thresholds = results[0].thresholds
    assert set(thresholds.label_thresholds) == set(MULTI_LABELS[:-1])
    for j, label in enumerate(MULTI_LABELS[:-1]):
        best = _brute_force_best(scores[:, j], gold[:, j], "f1")
        at_tuned = decision_metrics(scores[:, j] >= thresholds.label_thresholds[label], gold[:, j])["f1"]
        assert at_tuned == pytest.approx(best, abs=1e-12)
        assert best >= best_grid_threshold(scores[:, j], gold[:, j], "f1")[1] - 1e-12
    pooled = _brute_force_best(scores.ravel(), gold.ravel(), "f1")
    assert decision_metrics(scores.ravel() >= thresholds.best_threshold_global, gold.ravel())["f1"] == pytest.approx(
        pooled, abs=1e-12
    )
    reports = results[0].reports
    assert reports["kind"] == "multi_label" and set(reports["rules"]) == {"default", "best_global", "per_label"}
    assert reports["per_label"]["vulgarity"]["tuned"] is False
    assert reports["rules"]["per_label"]["classification_report"]["sarcasm"]["support"] == int(gold[:, 3].sum())


def test_multi_task_tunes_the_trust_head_and_reports_the_type_head(tmp_path):
    model = build_residual_type_fusion()
    tokenizer = build_tokenizer()
    export_model(model, tmp_path / "repo", tokenizer=tokenizer)
    texts = sample_texts(120, seed=4)
    trust = np.array([row[1] for row in probabilities(model, tokenizer, texts)])
    rng = np.random.default_rng(5)
    labels = (rng.random(120) < trust).astype(int)
    types = [TYPE_LABELS[i % 3] for i in range(120)]
    rows = [{"text": t, "label": int(y), "type": ty} for t, y, ty in zip(texts, labels, types)]
    result = tune_model(tmp_path / "repo", _write_jsonl(tmp_path / "dev.jsonl", rows), progress=False)
    best = _brute_force_best(trust, labels, "macro_f1")
    assert decision_metrics(trust >= result.thresholds.best_threshold_global, labels)["macro_f1"] == pytest.approx(
        best, abs=1e-12
    )
    assert result.reports["kind"] == "multi_task" and result.reports["positive_label"] == "trusted"
    type_report = result.reports["tasks"]["type"]
    assert type_report["labels"] == TYPE_LABELS
    assert type_report["classification_report"]["news"]["support"] == 40


def test_gated_bio_scores_read_the_bio_column(tmp_path):
    model = build_gated_bio(use_bio=True, id2label={0: "literal", 1: "reclaimed"})
    export_model(model, tmp_path / "repo", tokenizer=build_tokenizer())
    texts = sample_texts(60, seed=6)
    bios = [None if i % 3 == 0 else " ".join(sample_texts(1, seed=i)) for i in range(60)]
    rows = [{"text": t, "bio": b, "label": i % 2} for i, (t, b) in enumerate(zip(texts, bios))]
    data = _write_jsonl(tmp_path / "dev.jsonl", rows)
    with_bio = tune_model(tmp_path / "repo", data, progress=False)
    _write_jsonl(tmp_path / "no-bio.jsonl", [{k: v for k, v in row.items() if k != "bio"} for row in rows])
    without_bio = tune_model(tmp_path / "repo", tmp_path / "no-bio.jsonl", force=True, progress=False)
    assert with_bio.reports["data"]["columns"]["bio"] == "bio"
    assert without_bio.reports["data"]["columns"]["bio"] is None
    # The scores differ, so the tuned rule does (at 0.5 a random model may decide the same either way).
    assert with_bio.reports["rules"]["best_global"] != without_bio.reports["rules"]["best_global"]


@pytest.mark.parametrize(
    "rows, kwargs, error, match",
    [
        (
            [{"text": "hello", "gold": 1}],
            {},
            ValueError,
            r"no column 'label' \(columns: \['gold', 'text'\]\).*--label",
        ),
        ([{"body": "hello", "label": 1}], {}, ValueError, "no column 'text'.*--text-column"),
        (
            [{"text": "hello", "label": "maybe"}],
            {},
            ValueError,
            r"row 1: `label` is 'maybe'; expected a class id 0..1",
        ),
        ([{"text": "hello", "label": 1}], {"lang_column": "language"}, ValueError, "no column 'language'"),
        ([{"text": "hello", "label": 1, "bio": "x"}], {"bio_column": "bio"}, ValueError, "not a model that reads"),
        ([{"text": "hello", "label": 1}, {"text": "world", "label": 1}], {}, ValueError, "no row of class 'LABEL_0'"),
        ([{"text": "hello", "label": 1}], {"metric": "auc"}, ValueError, "--metric must be one of"),
        ([{"text": "hello", "label": 1}], {"min_lang_examples": 0}, ValueError, "--min-lang-examples"),
    ],
)
def test_bad_dev_sets_and_options_name_what_to_fix(tmp_path, rows, kwargs, error, match):
    export_model(save_checkpoint(tmp_path / "ckpt"), tmp_path / "repo")
    before = (tmp_path / "repo" / "config.json").read_bytes()
    with pytest.raises(error, match=match):
        tune_model(tmp_path / "repo", _write_jsonl(tmp_path / "dev.jsonl", rows), progress=False, **kwargs)
    assert (tmp_path / "repo" / "config.json").read_bytes() == before  # nothing written
    assert not (tmp_path / "repo" / "reports.json").exists()


def test_multi_class_models_and_bad_files_are_refused(tmp_path):
    export_model(save_checkpoint(tmp_path / "ckpt", num_labels=3), tmp_path / "repo")
    data = _write_jsonl(tmp_path / "dev.jsonl", [{"text": "hello", "label": 0}])
    with pytest.raises(ValueError, match="binary or multi-label model.*3 classes"):
        tune_model(tmp_path / "repo", data, progress=False)
    (tmp_path / "dev.txt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"--data .*dev.txt: use a .jsonl"):
        read_rows(tmp_path / "dev.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{oops\n')
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        read_rows(tmp_path / "bad.jsonl")


def test_cli_tune_prints_the_rules_and_fails_in_one_line(binary_repo, capsys):
    repo, data, *_ = binary_repo
    assert main(["tune", str(repo), "--data", str(data), "--metric", "accuracy"]) == 0
    out = capsys.readouterr().out
    assert "dev accuracy best_global" in out and "0.05-grid" in out
    reports = json.loads((repo / "reports.json").read_text())
    low, high = reports["rules"]["best_global"]["intervals"]["accuracy"]
    assert f"dev accuracy best_global  {reports['best_global']['value']:.4f} [{low:.4f}, {high:.4f}]" in out
    estimate = reports["cross_validation"]["metrics"]["accuracy"]
    assert f"in-sample {estimate['in_sample']:.4f}; cross-validated (5 folds) {estimate['estimate']:.4f}" in out
    assert main(["tune", str(repo), "--data", str(data)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    # The same seed gives the same reports; --bootstrap 0 and --folds 0 leave the estimates out.
    assert main(["tune", str(repo), "--data", str(data), "--metric", "accuracy", "--force"]) == 0
    assert json.loads((repo / "reports.json").read_text()) == reports
    capsys.readouterr()
    assert main(["tune", str(repo), "--data", str(data), "--bootstrap", "0", "--folds", "0", "--force"]) == 0
    assert "cross-validated" not in capsys.readouterr().out
    reports = json.loads((repo / "reports.json").read_text())
    assert reports["cross_validation"] == {"skipped": "--folds 0"} and reports["bootstrap"]["resamples"] == 0
    assert main(["tune", str(repo), "--data", str(data), "--folds", "1", "--force"]) == 2
    assert "--folds must be 0 (no cross-validation) or at least 2" in capsys.readouterr().err


def test_a_spreadsheet_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path):
    (tmp_path / "dev.csv").write_bytes("\ufefftext,label\nhello,1\n".encode())
    assert read_rows(tmp_path / "dev.csv") == [{"text": "hello", "label": "1"}]
