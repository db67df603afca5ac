"""`hubheads demo` end to end on the real MiniLM backbone, with a tiny step budget: the story it prints holds.

The demo runs twice into different folders; the module's tests read the first run's output and files, and compare
the two runs' printed figures. Expected values come from the run's own reports.json and from the dev decisions
recomputed here with the pip-installed pipeline, never from constants.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from hubheads.card import SECTION_END, SECTION_START
from hubheads.demo import AUTHOR_README, MULTI_LABELS, REPO_PUBLISHED, THREADS
from hubheads.reports import deployed_rule, metric_name
from hubheads_cli import main

HUBHEADS = str(Path(sys.executable).parent / "hubheads")
STEPS = 4
MODELS = ("supportive-minilm", "post-tags-minilm", "trust-type-minilm", "reclaim-bio-minilm")
# The consumer's section of each model in step 6 starts with its pipeline line.
CONSUMER_LINES = {
    "supportive-minilm": "clf = pipeline(",
    "post-tags-minilm": "tags = pipeline(",
    "trust-type-minilm": "mt = pipeline(",
    "reclaim-bio-minilm": "rb = pipeline(",
}


def _run_demo(out: Path) -> str:
    completed = subprocess.run(
        [HUBHEADS, "demo", "--out", str(out), "--train-steps", str(STEPS)], capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[tuple[Path, str]]:
    """Two demo runs (folder, stdout), in different folders."""
    folders = [tmp_path_factory.mktemp(f"run{i}") / "demo" for i in (1, 2)]
    return [(out, _run_demo(out)) for out in folders]


@pytest.fixture(scope="module")
def run(runs) -> tuple[Path, str]:
    return runs[0]


def _reports(out: Path, name: str) -> dict:
    return json.loads((out / f"repos/{name}/reports.json").read_text())


def _dev(out: Path, name: str) -> list[dict]:
    file = {"supportive-minilm": "dev_posts", "post-tags-minilm": "dev_post_tags"}.get(name)
    file = file or {"trust-type-minilm": "dev_trust_type", "reclaim-bio-minilm": "dev_post_bio"}[name]
    return [json.loads(line) for line in (out / f"data/{file}.jsonl").read_text(encoding="utf-8").splitlines()]


def _section(stdout: str, start: str, end: str) -> str:
    return stdout[stdout.index(start) : stdout.index(end, stdout.index(start))]


def _consumer_sections(stdout: str) -> dict[str, str]:
    """Step 6's lines of each model."""
    step = _section(stdout, "[6/8]", "[7/8]")
    starts = sorted((step.index(line), name) for name, line in CONSUMER_LINES.items())
    ends = [position for position, _ in starts[1:]] + [len(step)]
    return {name: step[position:end] for (position, name), end in zip(starts, ends)}


def _tuning_sections(stdout: str) -> dict[str, str]:
    """Step 5's lines of each repo."""
    step = _section(stdout, "[5/8]", "[6/8]")
    starts = sorted((step.index(f"hubheads-demo/{name} @"), name) for name in MODELS)
    ends = [position for position, _ in starts[1:]] + [len(step)]
    return {name: step[position:end] for (position, name), end in zip(starts, ends)}


@pytest.mark.slow
def test_demo_writes_tuned_carded_verified_repos(run):
    out, stdout = run
    binary = json.loads((out / "repos/supportive-minilm/config.json").read_text())
    assert binary["default_threshold"] == 0.5 and 0 <= binary["best_threshold_global"] <= 1
    # Per-language thresholds are written only when they do not lower the whole dev set's score (see tune).
    binary_reports = _reports(out, "supportive-minilm")
    assert set(binary_reports["by_lang"]) == {"en", "es", "it"}
    assert binary.get("thresholds_by_lang", {}) == (
        binary_reports["by_lang_tuned"] if binary_reports["by_lang_kept"] else {}
    )
    assert "pipeline_hubheads.HubheadsTextClassificationPipeline" in json.dumps(binary["custom_pipelines"])
    tags = json.loads((out / "repos/post-tags-minilm/config.json").read_text())
    assert tags["problem_type"] == "multi_label_classification"
    assert set(tags["label_thresholds"]) <= set(MULTI_LABELS)
    multi_task = json.loads((out / "repos/trust-type-minilm/config.json").read_text())
    assert multi_task["model_type"] == "residual_type_fusion" and "AutoConfig" in multi_task["auto_map"]
    assert multi_task["type_label_names"] == ["news", "opinion", "advert", "question"]
    assert 0 <= multi_task["best_threshold_global"] <= 1
    gated = json.loads((out / "repos/reclaim-bio-minilm/config.json").read_text())
    assert gated["model_type"] == "gated_bio_classifier" and gated["use_lang_token"] and gated["text_normalize"]
    tokenizer = json.loads((out / "repos/reclaim-bio-minilm/tokenizer.json").read_text())
    assert {"<en>", "<it>", "<es>"} <= {token["content"] for token in tokenizer["added_tokens"]}
    for name in MODELS:
        assert (out / f"hf_home/hub/models--hubheads-demo--{name}/refs/main").is_file()
        # The author's loop: tune wrote reports.json, card the README (re-parsed with model-index), verify passed.
        assert _reports(out, name)["data"]["file"].startswith("dev_")
        card = ModelCard((out / f"repos/{name}/README.md").read_text()).data
        assert card.eval_results and card.base_model == "sentence-transformers/all-MiniLM-L6-v2"
        assert (
            f"`train_steps` | `{STEPS * (3 if name == 'trust-type-minilm' else 1)}`"
            in (out / f"repos/{name}/README.md").read_text()
        )
    assert stdout.count("verify 8 checks ok") == 4
    assert "code from transformers_modules.hubheads_hyphen_demo" in stdout
    # Each card shows its figures (drawn into the repo) and the cross-validated estimate of the tuned rule.
    for name in MODELS:
        readme = (out / f"repos/{name}/README.md").read_text()
        for figure in ("threshold_curves.png", "score_distributions.png"):
            assert f"]({figure})" in readme and (out / f"repos/{name}/{figure}").stat().st_size > 0, (name, figure)
        assert "cross-validated" in readme.split("## Limitations")[1], name
    assert stdout.count("card figures: threshold_curves.png, score_distributions.png") == 5  # and supportive-replies
    assert stdout.count("of the tuned thresholds: in-sample") == 5  # and step 8's `hubheads tune`


@pytest.mark.slow
def test_the_tuned_rule_scores_at_least_as_well_as_0_5(run):
    """On dev, for each model, on the metric its thresholds optimise: in reports.json and in the consumer's figures,
    which equal the author's."""
    out, stdout = run
    consumer = _consumer_sections(stdout)
    for name in MODELS:
        reports = _reports(out, name)
        metric, rules = reports["metric"], reports["rules"]
        deployed = deployed_rule(reports)
        if reports["kind"] == "multi_label":
            for label, row in reports["per_label"].items():
                assert row["metrics"]["tuned"] >= row["metrics"]["default"] - 1e-12 or not row["tuned"], label
            # The pooled threshold maximises F1 over every (post, label) decision: the micro-F1.
            assert rules["best_global"]["metrics"]["micro_f1"] >= rules["default"]["metrics"]["micro_f1"] - 1e-12
            shown, before, after = metric_name("micro_f1", in_sentence=True), "default", deployed
        else:
            assert rules[deployed]["metrics"][metric] >= rules["default"]["metrics"][metric] - 1e-12, name
            shown, before, after = metric_name(metric, in_sentence=True), "default", deployed
        printed = [float(value) for value in re.findall(rf"dev {shown} (\d\.\d+)", consumer[name])][:2]
        key = "micro_f1" if reports["kind"] == "multi_label" else metric
        assert printed == [round(rules[rule]["metrics"][key], 3) for rule in (before, after)], name
        assert printed[1] >= printed[0]


def _recompute(out: Path, name: str) -> tuple[list[int], list[int], list[int]]:
    """Gold, at-0.5 and tuned dev decisions of a repo, from the pip-installed pipeline (one entry per row, or per
    (row, label) of the multi-label model)."""
    import torch

    from hubheads.score import load_pipeline

    rows = _dev(out, name)
    clf = load_pipeline(out / f"repos/{name}")
    texts = [row["text"] for row in rows]
    kwargs: dict = {"lang": [row["lang"] for row in rows]} if "lang" in rows[0] else {}
    if name == "reclaim-bio-minilm":
        kwargs["bio"] = [row["bio"] for row in rows]
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # the thread count the demo tuned with
    try:
        untuned, tuned = (clf(texts, threshold_mode=mode, **kwargs) for mode in ("default", "auto"))
    finally:
        torch.set_num_threads(threads)
    if name == "post-tags-minilm":
        chosen = [[{entry["label"] for entry in result} for result in output] for output in (untuned, tuned)]
        gold = [int(label in row["labels"]) for row in rows for label in MULTI_LABELS]
        before, after = ([int(label in labels) for labels in output for label in MULTI_LABELS] for output in chosen)
        return gold, before, after
    positive = clf.model.config.id2label[1]
    before, after = ([int(result["label"] == positive) for result in output] for output in (untuned, tuned))
    return [row["label"] for row in rows], before, after


@pytest.mark.slow
def test_fixed_and_broken_counts_match_the_examples_and_the_reports(run):
    out, stdout = run
    consumer = _consumer_sections(stdout)
    for name in MODELS:
        section = consumer[name]
        fixed, broken, total = map(int, re.search(r"fixed (\d+) and broke (\d+) of the (\d+)", section).groups())
        gold, before, after = _recompute(out, name)
        changed = [i for i in range(len(gold)) if before[i] != after[i]]
        assert total == len(gold)
        assert (fixed, broken) == (
            sum(after[i] == gold[i] for i in changed),
            sum(before[i] == gold[i] for i in changed),
        ), name
        # Every example printed is what its tag says: fixed ones right only with the thresholds, broken ones wrong.
        examples = re.findall(r"^ +(fixed|broke) +(.*)$", section, flags=re.MULTILINE)
        assert len([tag for tag, _ in examples if tag == "fixed"]) <= fixed
        assert len([tag for tag, _ in examples if tag == "broke"]) <= broken
        assert bool(examples) == bool(changed)
        for tag, line in examples:
            columns = line.split()
            gold_shown, before_shown, after_shown = columns[1:4] if name == "post-tags-minilm" else columns[:3]
            assert before_shown != after_shown, line
            assert (after_shown if tag == "fixed" else before_shown) == gold_shown, line
        # The accuracy tune reported moved by exactly the net count (the multi-label rules report no accuracy).
        reports = _reports(out, name)
        if reports["kind"] != "multi_label":
            accuracy = {
                rule: reports["rules"][rule]["metrics"]["accuracy"] for rule in ("default", deployed_rule(reports))
            }
            moved = (accuracy[deployed_rule(reports)] - accuracy["default"]) * len(gold)
            assert fixed - broken == round(moved), name


@pytest.mark.slow
def test_per_language_thresholds_are_printed_with_their_reason(run):
    out, stdout = run
    tuning = _tuning_sections(stdout)
    for name in ("supportive-minilm", "reclaim-bio-minilm"):
        reports = _reports(out, name)
        for lang, row in reports["by_lang"].items():
            line = re.search(rf"^ +{lang} +(\d+) +(\d+) +(\d\.\d+) .*$", tuning[name], flags=re.MULTILINE)
            assert line, (name, lang)
            assert [int(line.group(1)), int(line.group(2))] == [row["rows"], row["positives"]]
            assert float(line.group(3)) == round(row["threshold"], 3)
            assert line.group(0).endswith("own threshold") == row["tuned"], line.group(0)
            if not row["tuned"] and lang not in reports["by_lang_tuned"]:
                too_few = row["rows"] < reports["min_lang_examples"]
                assert (f"fewer than {reports['min_lang_examples']}" in line.group(0)) == too_few
                assert ("no dev row of class" in line.group(0)) == (not too_few)
        dropped = bool(reports["by_lang_tuned"]) and not reports["by_lang_kept"]
        assert ("dropped: the per-language thresholds" in tuning[name]) == dropped


@pytest.mark.slow
def test_score_and_existing_repo_steps_write_their_files(run):
    out, stdout = run
    decisions = [
        json.loads(line) for line in (out / "decisions/supportive-minilm.jsonl").read_text("utf-8").splitlines()
    ]
    dev = _dev(out, "supportive-minilm")
    assert [row["text"] for row in decisions] == [row["text"] for row in dev]
    assert {"pred_label", "pred_score", "pred_threshold"} <= set(decisions[0])
    assert f"{len(dev)} of its {len(dev)} decisions equal the consumer's" in stdout
    # The existing repo: published as a plain checkpoint with its author's README, exported from the offline cache
    # by its Hub id, tuned, carded with the author's text kept and the hubheads section between the markers.
    published = out / "published/supportive-replies"
    assert (published / "README.md").read_text() == AUTHOR_README
    assert "custom_pipelines" not in json.loads((published / "config.json").read_text())
    assert (out / "hf_home/hub/models--demo-author--supportive-replies/refs/main").is_file()
    repo = out / "repos/supportive-replies"
    config = json.loads((repo / "config.json").read_text())
    assert "custom_pipelines" in config and config["best_threshold_global"] == pytest.approx(
        _reports(out, "supportive-minilm")["thresholds"]["best_threshold_global"]
    )
    readme = (repo / "README.md").read_text()
    for line in ModelCard(AUTHOR_README).text.splitlines():
        assert line in readme.splitlines()
    assert readme.index(SECTION_START) < readme.index(SECTION_END)
    card = ModelCard(readme).data
    assert card.license == "mit" and card.eval_results
    assert f"hubheads export {REPO_PUBLISHED} {repo}" in stdout
    assert f"hubheads push {repo} --repo-id {REPO_PUBLISHED} --create-pr" in stdout
    next_steps = stdout[stdout.index("Next, try:") :]
    for command in ("hubheads verify ", "hubheads push ", "hubheads score "):
        assert command in next_steps


@pytest.mark.slow
def test_two_runs_print_the_same_figures(runs):
    """Fixed seeds, a step budget and one training thread: only the folder differs between the two runs' output."""
    (first, first_out), (second, second_out) = runs
    assert first_out.replace(str(first), "OUT") == second_out.replace(str(second), "OUT")
    for name in MODELS:
        for file in ("model.safetensors", "reports.json", "threshold_curves.png", "score_distributions.png"):
            contents = [(out / f"repos/{name}/{file}").read_bytes() for out in (first, second)]
            assert contents[0] == contents[1], (name, file)


def test_demo_refuses_to_overwrite_without_force(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_demo_refuses_a_step_budget_that_is_not_positive(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "out"), "--train-steps", "0"]) == 2
    assert "--train-steps must be a positive whole number" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
