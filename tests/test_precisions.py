"""Faster precisions that keep the tuned decisions: `tune` measures, on the dev set, what bfloat16 and dynamic int8 do
to the decisions against float32 (hubheads.precisions), the card shows it with the consumer's call, and the
consumer's bfloat16 call runs the repo on every transformers release."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tiny
import torch
from conftest import transformers_version

from hubheads import export_model, install_in_offline_cache, run_stock_pipelines
from hubheads.card import CardOptions, render_card
from hubheads.loading import load_pipeline
from hubheads.precisions import at_precision
from hubheads.tune import tune_model
from hubheads.tuning import decision_metrics

TEXTS = tiny.sample_texts(120, seed=8)
LANGS = ["it", "en", "es"] * 40


def _spread_model():
    """A binary model whose probabilities spread over (0, 1), so a precision can move a decision."""
    model = tiny.build_model("xlm-roberta", seed=3)
    with torch.no_grad():
        model.classifier.out_proj.weight.mul_(0.02)
    return model


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("precisions")
    model = _spread_model()
    export_model(model, tmp / "repo", tokenizer=tiny.build_tokenizer())
    p1 = [row[1] for row in tiny.probabilities(model, tiny.build_tokenizer(), TEXTS)]
    middle = float(np.median(p1))
    rows = [
        {"text": t, "label": int(p >= middle) if i % 4 else int(p < middle), "lang": lang}
        for i, (t, p, lang) in enumerate(zip(TEXTS, p1, LANGS))
    ]
    (tmp / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    tune_model(tmp / "repo", tmp / "dev.jsonl", progress=False, bootstrap=0, folds=0)
    return tmp / "repo"


def test_tune_records_what_each_precision_does_to_the_tuned_decisions(tuned):
    reports = json.loads((tuned / "reports.json").read_text())
    measured = reports["precisions"]
    assert {"cpu", "float32", "bfloat16", "int8"} <= set(measured)
    assert measured["float32"]["decisions_differ"] == 0 and measured["float32"]["max_abs_score_diff"] == 0
    rows = [json.loads(line) for line in (tuned.parent / "dev.jsonl").read_text().splitlines()]
    items = [{"text": row["text"], "lang": row["lang"]} for row in rows]
    gold = [row["label"] for row in rows]
    classifier = load_pipeline(tuned)  # the tuned thresholds, from config.json
    reference = classifier(items, batch_size=32)  # as tune ran it: dynamic int8 scales activations per batch
    for precision in ("bfloat16", "int8"):
        classifier.model = at_precision(load_pipeline(tuned).model, precision)
        outputs = classifier(items, batch_size=32)
        differ = sum(a["label"] != b["label"] for a, b in zip(outputs, reference))
        moved = max(abs(a["score"] - b["score"]) for a, b in zip(outputs, reference))
        entry = measured[precision]
        assert entry["rows"] == len(rows) and entry["decisions_differ"] == differ, precision
        assert entry["max_abs_score_diff"] == pytest.approx(moved, abs=1e-6) and moved > 0, precision
        predicted = [output["label"] == "LABEL_1" for output in outputs]
        assert entry["metric"] == pytest.approx(decision_metrics(predicted, gold)[reports["metric"]]), precision
        assert "speed_vs_float32" not in entry, "reports.json stays reproducible: speeds live in their own file"
    speeds = json.loads((tuned / "precision_speeds.json").read_text())
    assert all(speeds[precision]["speed_vs_float32"] > 0 for precision in ("float32", "bfloat16", "int8"))


def test_the_card_shows_each_precision_with_the_consumers_call(tuned):
    card = str(render_card(tuned, CardOptions(repo_id="org/fast")))
    section = card.split("## Faster precisions")[1].split("\n## ")[0]
    assert "trust_remote_code=True, dtype=torch.bfloat16)` |" in section
    assert "quantize_dynamic(clf.model, {torch.nn.Linear}, dtype=torch.qint8)" in section
    assert "AVX512-BF16/AMX" in section and section.count("\n| ") == 4  # the header and three precisions


def test_tune_skips_the_precisions_on_request(tuned, tmp_path):
    export_model(_spread_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    result = tune_model(
        tmp_path / "repo", tuned.parent / "dev.jsonl", progress=False, bootstrap=0, folds=0, precisions=False
    )
    assert "precisions" not in result.reports
    assert "## Faster precisions" not in str(render_card(tmp_path / "repo"))


def _precision_warnings(output: dict) -> list[str]:
    return [line for line in output["warnings"] if line.startswith("PrecisionWarning: ")]


@pytest.mark.consumer
def test_the_bfloat16_and_int8_calls_run_on_every_release_and_warn_once(tuned, tmp_path, consumer_python):
    hf_home = tmp_path / "hf_home"
    install_in_offline_cache(tuned, "org/fast", cache_dir=hf_home / "hub")
    major, minor = (int(part) for part in transformers_version(consumer_python).split(".")[:2])
    argument = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"  # what the card says
    calls = [{"inputs": TEXTS[:24], "kwargs": {"lang": LANGS[:24]}}, {"inputs": TEXTS[24:30]}]
    float32, bfloat16, int8 = run_stock_pipelines(
        hf_home,
        [
            {"repo_id": "org/fast", "calls": calls},
            {"repo_id": "org/fast", "calls": calls, "pipeline_kwargs": {argument: "bfloat16"}},
            {"repo_id": "org/fast", "calls": calls, "quantize": "int8"},
        ],
        python=consumer_python,
    )
    agreement = json.loads((tuned / "config.json").read_text())["precision_agreement"]
    assert _precision_warnings(float32) == []
    for precision, output in (("bfloat16", bfloat16), ("int8", int8)):
        a, b = float32["results"][0], output["results"][0]
        assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) > 0, f"the second call ran in {precision}"
        assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 0.05
        assert all(isinstance(y["score"], float) for y in b)
        counts = agreement[precision]
        (warning,) = _precision_warnings(output)  # two calls, one warning
        assert f"tuned at float32; it runs at {precision}" in warning
        assert f"disagree on {counts['decisions_differ']} of {counts['rows']} tuned decisions" in warning


#: Every kind of repo, with a call that uses what it configures.
KINDS = {
    "multi-label": (tiny.build_multi_label, {"inputs": TEXTS[:12]}),
    "multi-task": (tiny.build_residual_type_fusion, {"inputs": TEXTS[:12]}),
    "gated-bio": (tiny.build_gated_bio, {"inputs": TEXTS[:12], "kwargs": {"bio": ["a bio", None, "another"] * 4}}),
}


@pytest.mark.consumer
def test_every_kind_runs_at_bfloat16_through_the_stock_call(tmp_path, consumer_python):
    hf_home = tmp_path / "hf_home"
    major, minor = (int(part) for part in transformers_version(consumer_python).split(".")[:2])
    argument = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    requests = []
    for kind, (build, call) in KINDS.items():
        export_model(build(), tmp_path / kind, tokenizer=tiny.build_tokenizer())
        install_in_offline_cache(tmp_path / kind, f"org/{kind}", cache_dir=hf_home / "hub")
        for kwargs in ({}, {argument: "bfloat16"}):
            requests.append({"repo_id": f"org/{kind}", "calls": [call], "pipeline_kwargs": kwargs})
    outputs = run_stock_pipelines(hf_home, requests, python=consumer_python)
    for kind, float32, bfloat16 in zip(KINDS, outputs[::2], outputs[1::2]):
        assert (float32["dtype"], bfloat16["dtype"]) == ("float32", "bfloat16"), kind
        assert bfloat16["pipeline_class"] == "HubheadsTextClassificationPipeline", kind
        a, b = float32["results"][0], bfloat16["results"][0]
        assert len(a) == len(b) == 12 and type(a[0]) is type(b[0]), kind
        assert _numbers(b) == pytest.approx(_numbers(a), abs=0.05), kind  # the same outputs, to bfloat16's precision
        assert all(isinstance(number, float) for number in _numbers(b)), "probabilities as Python floats"


def _numbers(outputs: list) -> list[float]:
    """Every score in a kind's outputs (a label's, each of a multi-label set's, each head's)."""
    if isinstance(outputs, dict):
        return [number for value in outputs.values() for number in _numbers(value)]
    if isinstance(outputs, list):
        return [number for item in outputs for number in _numbers(item)]
    return [outputs] if isinstance(outputs, float) else []


def test_the_pipeline_warns_once_per_precision_it_was_not_tuned_at(tuned, tmp_path):
    from hubheads.modeling.pipeline_hubheads import PrecisionWarning

    classifier = load_pipeline(tuned)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classifier(TEXTS[:4])
        float_model = classifier.model
        for precision in ("bfloat16", "bfloat16", "int8", "bfloat16"):
            classifier.model = at_precision(float_model, precision)
            classifier(TEXTS[:4])
            classifier(TEXTS[4:8])
    said = [str(w.message) for w in caught if w.category is PrecisionWarning]
    assert len(said) == 2 and "runs at bfloat16" in said[0] and "runs at int8" in said[1], said
    # A model that configures nothing follows the stock pipeline: no warning.
    export_model(_spread_model(), tmp_path / "plain", tokenizer=tiny.build_tokenizer())
    plain = load_pipeline(tmp_path / "plain")
    plain.model = at_precision(plain.model, "bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        plain(TEXTS[:4])


def test_tune_at_a_precision_tunes_on_its_scores_and_records_it(tuned, tmp_path):
    from hubheads.precisions import use_precision
    from hubheads.tuning import best_threshold

    export_model(_spread_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    dev = tuned.parent / "dev.jsonl"
    result = tune_model(tmp_path / "repo", dev, progress=False, bootstrap=0, folds=0, precision="bfloat16")
    rows = [json.loads(line) for line in dev.read_text().splitlines()]
    at_bf16 = use_precision(load_pipeline(tmp_path / "repo"), "bfloat16")
    ranked = at_bf16([row["text"] for row in rows], threshold=0.0, top_k=None, batch_size=32)
    scores = [next(entry["score"] for entry in entry_list if entry["label"] == "LABEL_1") for entry_list in ranked]
    want, _ = best_threshold(scores, [row["label"] for row in rows], result.reports["metric"])
    assert result.thresholds.best_threshold_global == pytest.approx(want)
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["tuned_precision"] == "bfloat16" == result.reports["tuned_precision"]
    for precision in ("bfloat16", "int8"):
        entry = result.reports["precisions"][precision]
        assert config["precision_agreement"][precision] == {
            "decisions_differ": entry["decisions_differ"],
            "rows": entry["rows"],
        }
    assert json.loads((tuned / "config.json").read_text())["tuned_precision"] == "float32"
    card = str(render_card(tmp_path / "repo", CardOptions(repo_id="org/fast")))
    assert "thresholds tuned at bfloat16" in card


@pytest.mark.parametrize(
    "values, match",
    [
        ({"tuned_precision": "fp8"}, "`tuned_precision` must be one of"),
        ({"precision_agreement": {"bfloat16": {"decisions_differ": 5, "rows": 3}}}, "says 5 of 3 decisions"),
        ({"precision_agreement": {"bfloat16": {"decisions_differ": -1, "rows": 3}}}, "must be a whole number"),
        ({"precision_agreement": {"fp8": {"decisions_differ": 0, "rows": 3}}}, "precision_agreement key 'fp8'"),
        ({"precision_agreement": [1, 2]}, "`precision_agreement` must map precisions"),
    ],
)
def test_a_bad_precision_record_is_refused_naming_the_key(tuned, tmp_path, values, match):
    shutil.copytree(tuned, tmp_path / "repo")
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    (tmp_path / "repo" / "config.json").write_text(json.dumps({**config, **values}))
    with pytest.raises(ValueError, match=match):
        load_pipeline(tmp_path / "repo")


def test_new_thresholds_drop_the_precision_record_of_the_old_ones(tuned, tmp_path):
    export_model(tuned, tmp_path / "same")
    assert json.loads((tmp_path / "same" / "config.json").read_text())["tuned_precision"] == "float32"
    # The same thresholds written another way (upper-case codes, as a config edited by hand has them) keep it too.
    config = json.loads((tuned / "config.json").read_text())
    config["thresholds_by_lang"] = {code.upper(): value for code, value in config["thresholds_by_lang"].items()}
    shutil.copytree(tuned, tmp_path / "by-hand")
    (tmp_path / "by-hand" / "config.json").write_text(json.dumps(config))
    export_model(tmp_path / "by-hand", tmp_path / "same-again")
    assert json.loads((tmp_path / "same-again" / "config.json").read_text())["tuned_precision"] == "float32"
    export_model(tuned, tmp_path / "retuned", threshold=0.42)
    config = json.loads((tmp_path / "retuned" / "config.json").read_text())
    assert config["best_threshold_global"] == 0.42
    assert "tuned_precision" not in config and "precision_agreement" not in config


def test_score_at_a_precision_writes_the_pipelines_decisions_at_it(tuned, tmp_path):
    from hubheads.precisions import use_precision
    from hubheads.score import ScoreOptions, score_file

    out = tmp_path / "decisions.jsonl"
    score_file(
        tuned,
        tuned.parent / "dev.jsonl",
        out,
        options=ScoreOptions(precision="bfloat16", keep=("lang",)),
        progress=False,
    )
    written = [json.loads(line) for line in out.read_text().splitlines()]
    rows = [json.loads(line) for line in (tuned.parent / "dev.jsonl").read_text().splitlines()]
    classifier = use_precision(load_pipeline(tuned), "bfloat16")
    want = classifier([{"text": row["text"], "lang": row["lang"]} for row in rows], batch_size=32)
    assert [row["label"] for row in written] == [w["label"] for w in want]
    assert [row["score"] for row in written] == pytest.approx([w["score"] for w in want], abs=1e-6)
    with pytest.raises(ValueError, match="--precision must be one of"):
        use_precision(load_pipeline(tuned), "float8")


_HANDLER_SCRIPT = r"""
import importlib.util, json, sys
path = sys.argv[1]
sys.modules["hubheads"] = None
spec = importlib.util.spec_from_file_location("handler", f"{path}/handler.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
try:
    handler = module.EndpointHandler(path)
except ValueError as error:
    print(json.dumps({"error": str(error)}))
else:
    answer = handler({"inputs": json.loads(sys.argv[2]), "parameters": {"lang": "it"}})
    print(json.dumps({"dtype": str(next(handler.pipeline.model.parameters()).dtype), "answer": answer}))
"""


@pytest.mark.parametrize("precision, dtype", [("float32", "torch.float32"), ("bfloat16", "torch.bfloat16")])
def test_the_endpoint_handler_runs_at_the_precision_its_environment_names(tuned, tmp_path, precision, dtype):
    from hubheads.offline_hub import offline_environment

    env = {**offline_environment(tmp_path / "hf_home"), "HUBHEADS_PRECISION": precision}
    texts = json.dumps(TEXTS[:6])
    run = subprocess.run(
        [sys.executable, "-c", _HANDLER_SCRIPT, str(tuned), texts], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["dtype"] == dtype and len(result["answer"]) == 6
    env["HUBHEADS_PRECISION"] = "fp8"
    run = subprocess.run(
        [sys.executable, "-c", _HANDLER_SCRIPT, str(tuned), texts], capture_output=True, text=True, env=env
    )
    assert "HUBHEADS_PRECISION must be float32, bfloat16 or int8" in json.loads(run.stdout.splitlines()[-1])["error"]
