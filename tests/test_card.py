"""`hubheads card`: README.md from hub_templates/, re-parsed with huggingface_hub's ModelCard, on real tuned repos."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from tiny import (
    MULTI_LABELS,
    TYPE_LABELS,
    build_model,
    build_residual_type_fusion,
    build_tokenizer,
    probabilities,
    sample_texts,
    save_checkpoint,
)

from hubheads.card import CardOptions, read_hyperparameters, render_card, write_card
from hubheads.export import export_model
from hubheads.offline_hub import install_in_offline_cache, run_consumer_process
from hubheads.tune import tune_model
from hubheads_cli import main

SECTIONS = ("## Usage", "## Decision thresholds", "## Dev results", "## Classification reports", "## Limitations")


def _tuned_binary(tmp_path):
    export_model(save_checkpoint(tmp_path / "ckpt"), tmp_path / "repo")
    texts = sample_texts(160, seed=7)
    scores = [row[1] for row in probabilities(build_model(), build_tokenizer(), texts)]
    rng = np.random.default_rng(1)
    langs = ["it", "en"] * 75 + ["es"] * 10
    rows = [
        {"text": t, "lang": lang, "label": int(rng.random() < s + (0.2 if lang == "it" else 0))}
        for t, s, lang in zip(texts, scores, langs)
    ]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    tune_model(tmp_path / "repo", tmp_path / "dev.jsonl", progress=False)
    return tmp_path / "repo"


def _python_blocks(content: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", content, flags=re.S)


def test_a_tuned_card_reparses_with_model_index_and_every_section(tmp_path):
    repo = _tuned_binary(tmp_path)
    options = CardOptions(repo_id="org/tiny", revision="0123abc", license="apache-2.0", hyperparameters={"lr": 2e-5})
    path = write_card(repo, options)
    content = path.read_text()
    reports = json.loads((repo / "reports.json").read_text())
    data = ModelCard(content).data
    assert data.pipeline_tag == "text-classification" and data.library_name == "transformers"
    assert data.license == "apache-2.0" and data.language == ["en", "es", "it"]
    assert {"hubheads", "custom_code"} <= set(data.tags)
    assert data.to_dict()["model-index"][0]["name"] == "tiny"
    deployed = "best_by_lang" if reports["by_lang_kept"] else "best_global"
    by_name = {result.metric_name: result for result in data.eval_results}
    macro = by_name[
        f"Macro F1 ({'best per-language thresholds' if reports['by_lang_kept'] else 'best global threshold'})"
    ]
    assert macro.metric_type == "f1" and macro.metric_config == "macro" and macro.dataset_split == "dev"
    assert macro.metric_value == round(reports["rules"][deployed]["metrics"]["macro_f1"], 4)
    untuned = by_name["Macro F1 (default threshold)"].metric_value
    assert untuned == round(reports["rules"]["default"]["metrics"]["macro_f1"], 4)
    for section in SECTIONS + ("### Per language", "## Training hyperparameters", "## Model configuration"):
        assert section in content, section
    remote, pip = _python_blocks(content)
    assert 'model="org/tiny", trust_remote_code=True, revision="0123abc"' in remote
    assert "pipeline_class=HubheadsTextClassificationPipeline" in pip and "trust_remote_code" not in pip
    assert "| `lr` | `2e-05` |" in content
    assert "| es | 10 |" in content and "no (global)" in content  # es is under the 20-row minimum
    assert f"| `best_threshold_global` | {reports['thresholds']['best_threshold_global']:.4f} |" in content


@pytest.mark.consumer
def test_the_cards_usage_code_runs_against_the_repo(tmp_path, hf_home):
    repo = _tuned_binary(tmp_path)
    commit = install_in_offline_cache(repo, "org/tiny", cache_dir=hf_home / "hub")
    content = str(render_card(repo, CardOptions(repo_id="org/tiny", revision=commit)))
    *setup, call = _python_blocks(content)[0].strip().splitlines()
    # The card's code as a consumer pastes it, hubheads blocked; the last line's result printed.
    script = "\n".join(['import sys; sys.modules["hubheads"] = None', *setup, f"print({call.split('  #')[0]})"])
    completed = run_consumer_process(["-c", script], hf_home, timeout=300)
    assert "'threshold':" in completed.stdout


def _tuned_tags(tmp_path, rows: int, seed: int):
    """A tuned multi-label repo (tmp_path / "tags") of the tiny model, on `rows` generated dev rows."""
    model = build_model(num_labels=len(MULTI_LABELS), id2label=dict(enumerate(MULTI_LABELS)))
    with torch.no_grad():
        model.classifier.weight.mul_(0.05)
    model.config.problem_type = "multi_label_classification"
    export_model(model, tmp_path / "tags", tokenizer=build_tokenizer())
    texts = sample_texts(rows, seed=seed)
    dev = [{"text": t, "label": [MULTI_LABELS[i % 5], MULTI_LABELS[(i * 3) % 5]]} for i, t in enumerate(texts)]
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps(row) + "\n" for row in dev))
    tune_model(tmp_path / "tags", tmp_path / "tags.jsonl", metric="f1", progress=False)
    return tmp_path / "tags"


def test_multi_label_and_multi_task_cards(tmp_path):
    texts = sample_texts(80, seed=8)
    content = str(render_card(_tuned_tags(tmp_path, 80, seed=8)))
    data = ModelCard(content).data
    assert "multi-label" in data.tags
    assert {r.metric_name for r in data.eval_results} >= {
        "Micro F1 (best per-label thresholds)",
        "Subset accuracy (default threshold)",
    }
    assert "### Per label" in content and "`label_thresholds[sarcasm]`" in content
    assert 'model="<org>/tags"' in content  # no --repo-id: a visible placeholder, not a made-up name

    multi_task = build_residual_type_fusion()
    export_model(multi_task, tmp_path / "mt", tokenizer=build_tokenizer())
    rows = [{"text": t, "label": i % 2, "type": TYPE_LABELS[i % 3]} for i, t in enumerate(texts)]
    (tmp_path / "mt.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    tune_model(tmp_path / "mt", tmp_path / "mt.jsonl", progress=False)
    content = str(render_card(tmp_path / "mt"))
    results = ModelCard(content).data.eval_results
    type_results = {r.metric_name: r.metric_type for r in results if "type head" in r.metric_name}
    assert type_results == {"Accuracy (type head)": "accuracy", "Macro F1 (type head)": "f1"}
    assert "### The `type` head" in content and "| news |" in content


def test_an_untuned_plain_repo_gets_an_honest_card(tmp_path):
    export_model(save_checkpoint(tmp_path / "ckpt"), tmp_path / "repo")
    content = str(render_card(tmp_path / "repo", CardOptions(repo_id="org/plain")))
    data = ModelCard(content).data
    assert data.eval_results is None and "model-index" not in content
    assert "custom_code" not in data.tags
    remote = _python_blocks(content)[0]
    assert "trust_remote_code" not in remote  # a plain repo needs no remote code
    assert "## Dev results" not in content and "## Decision thresholds" not in content
    assert "not tuned with `hubheads tune`" in content and "Not given" in content


def test_hyperparameter_files_and_bad_options(tmp_path):
    (tmp_path / "h.yaml").write_text("learning_rate: 2.0e-5\nfocal_gamma: 2.5\nflags: [USE_BIO, R_DROP]\n")
    (tmp_path / "h.json").write_text('{"learning_rate": 2e-05, "focal_gamma": 2.5, "flags": ["USE_BIO", "R_DROP"]}')
    assert read_hyperparameters(tmp_path / "h.yaml") == read_hyperparameters(tmp_path / "h.json")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="one mapping"):
        read_hyperparameters(tmp_path / "list.yaml")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_hyperparameters(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="--repo-id must look like 'org/name'"):
        CardOptions(repo_id="just-a-name")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        render_card(tmp_path)


AUTHOR_README = """---
license: apache-2.0
language: [en]
tags: [incivility, distilbert]
model-index:
- name: incivility-distilbert
  results:
  - task: {type: text-classification}
    dataset: {name: author test set, type: custom}
    metrics:
    - {type: f1, value: 0.61, name: Author's own F1}
---

# Incivility classifier

Written by the author: trained on 10,000 news comments. Cite our paper.

## Limitations (author)

Not for moderation decisions without review.
"""


def test_card_keeps_the_authors_readme_and_refreshes_only_its_section(tmp_path, capsys):
    repo = _tuned_binary(tmp_path)
    (repo / "README.md").write_text(AUTHOR_README)
    (tmp_path / "h.json").write_text('{"epochs": 3}')
    assert main(["card", str(repo), "--repo-id", "org/x", "--hyperparams", str(tmp_path / "h.json")]) == 0
    first = (repo / "README.md").read_text()
    author_body = AUTHOR_README.split("---\n", 2)[2]
    assert author_body.strip() in first, "every line the author wrote is kept, in order"
    assert first.count("<!-- hubheads:start -->") == 1 and "| `epochs` | `3` |" in first
    card = ModelCard(first)
    assert card.data.license == "apache-2.0" and card.data.language == ["en"], "the author's keys are kept"
    assert card.data.tags[:2] == ["incivility", "distilbert"] and "hubheads" in card.data.tags
    names = [result.metric_name for result in card.data.eval_results]
    assert "Author's own F1" in names and any("(default threshold)" in name for name in names)

    # Again, with other options: the section is replaced (not appended twice), the author's text still intact.
    assert main(["card", str(repo), "--repo-id", "org/x", "--license", "mit"]) == 0
    second = (repo / "README.md").read_text()
    assert second.count("<!-- hubheads:start -->") == 1 and "| `epochs` | `3` |" not in second
    assert author_body.strip() in second
    assert ModelCard(second).data.license == "apache-2.0", "the author's license wins over --license"
    assert [r.metric_name for r in ModelCard(second).data.eval_results] == names, "model-index merged, not duplicated"

    # --force replaces the README wholesale with a fresh card.
    assert main(["card", str(repo), "--repo-id", "org/x", "--license", "mit", "--force"]) == 0
    fresh = (repo / "README.md").read_text()
    assert "Written by the author" not in fresh and ModelCard(fresh).data.license == "mit"


def _images(content: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", content)


def test_the_card_shows_its_figures_intervals_and_cross_validated_estimate(tmp_path):
    from PIL import Image

    from hubheads.figures import FIGURES

    repo = _tuned_binary(tmp_path)
    content = write_card(repo, CardOptions(repo_id="org/tiny")).read_text()
    reports = json.loads((repo / "reports.json").read_text())
    assert _images(content) == list(FIGURES)
    for name in FIGURES:
        path = repo / name
        assert path.stat().st_size < 100_000, (name, path.stat().st_size)
        with Image.open(path) as image:  # a real PNG that decodes, on an opaque white background
            image.load()
            assert image.format == "PNG" and image.size[0] >= 600
            assert image.convert("RGB").getpixel((2, 2)) == (255, 255, 255)
    # Each metric of the results table with its interval, as reports.json has them.
    deployed = "best_by_lang" if reports["by_lang_kept"] else "best_global"
    value, (low, high) = (reports["rules"][deployed][key]["macro_f1"] for key in ("metrics", "intervals"))
    assert f"| {value:.3f} [{low:.3f}, {high:.3f}] |" in content
    assert low <= value <= high
    estimate = reports["cross_validation"]["metrics"]["macro_f1"]
    assert (
        f"in-sample macro_f1 {estimate['in_sample']:.3f}; cross-validated {estimate['estimate']:.3f} "
        f"[{estimate['interval'][0]:.3f}, {estimate['interval'][1]:.3f}]"
    ) in content
    assert "no (global): 10 dev rows, fewer than 20" in content  # es: why it keeps the global threshold
    # Re-carding with the same reports draws the same bytes (no timestamps); tests/test_push.py pushes them.
    before = {name: (repo / name).read_bytes() for name in FIGURES}
    write_card(repo, CardOptions(repo_id="org/tiny"))
    assert {name: (repo / name).read_bytes() for name in FIGURES} == before


def test_multi_label_figures_have_a_panel_per_label_and_old_reports_still_render(tmp_path):
    from hubheads.figures import render_figure

    content = write_card(_tuned_tags(tmp_path, 120, seed=9)).read_text()
    reports = json.loads((tmp_path / "tags" / "reports.json").read_text())
    assert set(reports["curves"]["per_label"]) == set(reports["score_histograms"]["panels"]) == set(MULTI_LABELS)
    assert _images(content) == ["threshold_curves.png", "score_distributions.png"]
    label = MULTI_LABELS[0]
    row = reports["per_label"][label]
    low, high = row["intervals"]["tuned"]
    assert f"{row['metrics']['tuned']:.3f} [{low:.3f}, {high:.3f}]" in content
    # One panel per label: more labels, a taller figure.
    two = {
        **reports,
        "score_histograms": {"bins": 40, "panels": dict(list(reports["score_histograms"]["panels"].items())[:2])},
    }
    assert len(render_figure("score_distributions.png", two)) < len(render_figure("score_distributions.png", reports))

    # A reports.json written before tune recorded intervals, curves and folds: the card renders without them.
    for key in ("curves", "score_histograms", "cross_validation", "bootstrap"):
        reports.pop(key)
    for rule in reports["rules"].values():
        rule.pop("intervals")
    (tmp_path / "tags" / "reports.json").write_text(json.dumps(reports))
    for name in ("threshold_curves.png", "score_distributions.png"):
        (tmp_path / "tags" / name).unlink()
    content = write_card(tmp_path / "tags", force=True).read_text()
    assert _images(content) == [] and not (tmp_path / "tags" / "threshold_curves.png").exists()
    assert "results are optimistic" in content and " [0." not in content.split("## Dev results")[1].split("###")[0]


def test_matplotlib_stays_out_of_the_consumers_path(tmp_path):
    repo = _tuned_binary(tmp_path)
    script = f"""
import sys
from transformers import pipeline
from hubheads import HubheadsTextClassificationPipeline
clf = pipeline("text-classification", model={str(repo)!r}, pipeline_class=HubheadsTextClassificationPipeline)
clf(["a post"], lang=["it"])
import hubheads.card, hubheads.score, hubheads.tune
print(sorted(name for name in sys.modules if name.split(".")[0] == "matplotlib"))
"""
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[]"
