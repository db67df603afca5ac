"""The consumer's experience, end to end and offline.

Export, lay the folder out as the Hub cache, and in a fresh process with `hubheads` blocked run the stock
`pipeline("text-classification", model="org/name", trust_remote_code=True)`, under the newest transformers and (from
`make test`) under transformers 4.57.6 in an environment where hubheads is not even installed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny
from transformers import AutoModelForSequenceClassification

from hubheads import export_model, install_in_offline_cache, run_stock_pipeline

pytestmark = pytest.mark.consumer

TEXTS = tiny.sample_texts(12, seed=7)
LANGS = ["it", "en", "es"] * 4


def _publish(folder: Path, repo_id: str, hf_home: Path) -> str:
    return install_in_offline_cache(folder, repo_id, cache_dir=hf_home / "hub")


def _between(values: list, rank: int) -> float:
    """A threshold halfway between the `rank`-th and the next-lower score: clear of float noise, splits the scores."""
    ordered = sorted(values)
    return (ordered[rank - 1] + ordered[rank]) / 2


def _same_decisions(got: list, want: list) -> None:
    """Equal labels and extra keys; scores equal up to the float noise of padding inputs into one batch."""
    strip = [{k: v for k, v in r.items() if k != "score"} for r in got]
    assert strip == [{k: v for k, v in r.items() if k != "score"} for r in want]
    assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)


def test_per_language_decisions_equal_a_hand_computation(tmp_path, hf_home, consumer_python):
    checkpoint = tiny.save_checkpoint(tmp_path / "ckpt", kind="xlm-roberta")
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    probs = tiny.probabilities(model, tiny.build_tokenizer(), TEXTS)
    p1_by_lang: dict = {}
    for (_, p1), lang in zip(probs, LANGS):
        p1_by_lang.setdefault(lang, []).append(p1)
    by_lang = {lang: _between(p1_by_lang[lang], 2) for lang in ("it", "en")}
    best_global = _between(p1_by_lang["es"], 1)
    export_model(checkpoint, tmp_path / "repo", threshold=best_global, lang_thresholds=by_lang)
    _publish(tmp_path / "repo", "org/reclaim-tiny", hf_home)

    calls = [
        {"inputs": TEXTS, "kwargs": {"lang": LANGS}},
        {"inputs": [{"text": t, "lang": lang} for t, lang in zip(TEXTS, LANGS)], "kwargs": {"batch_size": 5}},
        {"inputs": TEXTS[0], "kwargs": {"lang": "it"}},
        {"inputs": TEXTS, "kwargs": {"lang": LANGS, "threshold_mode": "default"}},
        {"inputs": TEXTS, "kwargs": {"threshold": 0.5}},
    ]
    out = run_stock_pipeline("org/reclaim-tiny", hf_home, calls, python=consumer_python)
    assert out["pipeline_class"] == "HubheadsTextClassificationPipeline"
    assert out["pipeline_module"].startswith("transformers_modules."), "the repo's copy must be the code that ran"
    aligned, from_dicts, single, untuned, fixed = out["results"]

    expected = []
    for (p0, p1), lang in zip(probs, LANGS):
        cutoff = by_lang.get(lang, best_global)
        expected.append(("LABEL_1", p1, cutoff) if p1 >= cutoff else ("LABEL_0", p0, cutoff))
    assert [(r["label"], r["threshold"], r["lang"]) for r in aligned] == [
        (e[0], e[2], lang) for e, lang in zip(expected, LANGS)
    ]
    assert [r["score"] for r in aligned] == pytest.approx([e[1] for e in expected], abs=1e-5)
    _same_decisions(from_dicts, aligned)
    assert single == [aligned[0]]
    assert [r["label"] for r in untuned] == ["LABEL_1" if p1 >= 0.5 else "LABEL_0" for _, p1 in probs]
    assert [r["label"] for r in fixed] == [r["label"] for r in untuned]
    assert [r["label"] for r in aligned] != [r["label"] for r in untuned], "the thresholds must change decisions"


def test_multi_label_sets_are_exact(tmp_path, hf_home, consumer_python):
    checkpoint = tiny.save_checkpoint(
        tmp_path / "ckpt",
        num_labels=len(tiny.MULTI_LABELS),
        id2label=dict(enumerate(tiny.MULTI_LABELS)),
        label2id={label: i for i, label in enumerate(tiny.MULTI_LABELS)},
    )
    label_thresholds = {"sarcasm": 0.3, "vulgarity": 0.8}
    export_model(
        checkpoint, tmp_path / "repo", multi_label=True, default_threshold=0.6, label_thresholds=label_thresholds
    )
    _publish(tmp_path / "repo", "org/incivility-tiny", hf_home)
    calls = [{"inputs": TEXTS}, {"inputs": TEXTS[3]}, {"inputs": TEXTS, "kwargs": {"top_k": 1}}]
    sets, single, capped = run_stock_pipeline("org/incivility-tiny", hf_home, calls, python=consumer_python)["results"]

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "repo").eval()
    for result, row in zip(sets, tiny.probabilities(model, tiny.build_tokenizer(), TEXTS, multi_label=True)):
        expected = sorted(
            ((label, p) for label, p in zip(tiny.MULTI_LABELS, row) if p >= label_thresholds.get(label, 0.6)),
            key=lambda item: -item[1],
        )
        assert [r["label"] for r in result] == [label for label, _ in expected]
        assert [r["score"] for r in result] == pytest.approx([p for _, p in expected], abs=1e-5)
    assert max(len(r) for r in sets) >= 2 and min(len(r) for r in sets) < len(tiny.MULTI_LABELS)
    assert single == sets[3]
    assert capped == [r[:1] for r in sets]


def test_without_trust_remote_code_transformers_refuses_and_pip_users_pass_the_class(tmp_path, hf_home):
    """The two documented calls: remote code refused without the flag; the installed class needs no remote code."""
    checkpoint = tiny.save_checkpoint(tmp_path / "ckpt")
    export_model(checkpoint, tmp_path / "repo", threshold=0.6, lang_thresholds={"it": 0.4})
    _publish(tmp_path / "repo", "org/tuned", hf_home)
    script = """
import json, sys
from transformers import pipeline
from hubheads import HubheadsTextClassificationPipeline
try:
    pipeline("text-classification", model="org/tuned")
    refused = False
except ValueError as error:
    refused = "trust_remote_code" in str(error)
clf = pipeline("text-classification", model="org/tuned", pipeline_class=HubheadsTextClassificationPipeline)
print(json.dumps({"refused": refused, "module": type(clf).__module__, "results": clf(sys.argv[1:], lang="it")}))
"""
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", script, *TEXTS[:4]], capture_output=True, text=True, env=env, check=True
    )
    pip_path = json.loads(completed.stdout)
    assert pip_path["refused"]
    assert pip_path["module"] == "hubheads.modeling.pipeline_hubheads"
    remote = run_stock_pipeline("org/tuned", hf_home, [{"inputs": TEXTS[:4], "kwargs": {"lang": "it"}}])
    assert pip_path["results"] == remote["results"][0]
