"""The public repos hubheads exists for, reproduced offline in their real forms (see real_repos.py), taken through
export -> tune -> card -> verify -> consumer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import real_repos
import tiny
import torch
from huggingface_hub import constants
from real_repos import CODE_REPO, NEW_IMPL, run_cli
from transformers import AutoModelForSequenceClassification

from hubheads import (
    GatedBioForSequenceClassification,
    ResidualTypeFusionForSequenceClassification,
    export_model,
    install_in_offline_cache,
    run_stock_pipeline,
)
from hubheads.sources import has_native_gte

TEXTS = tiny.sample_texts(24, seed=11)
LANGS = ["it", "en", "es"] * 8
needs_gte = pytest.mark.skipif(not has_native_gte(), reason="transformers < 5.18 has no native gte")


def _encode(texts):
    return tiny.build_tokenizer()(texts, padding=True, return_tensors="pt")


def _offline(monkeypatch, hf_home):
    """This process reads the Hub cache in hf_home, offline (huggingface_hub reads the constants at call time)."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


# --- gte-multilingual-base: transformers' native gte -----------------------------------------------------------------


@needs_gte
@pytest.mark.parametrize("rope_scaling", [None, {"type": "ntk", "factor": 2.0}], ids=["plain", "ntk"])
def test_export_native_equals_the_new_format_reference(tmp_path, rope_scaling):
    reference = real_repos.save_new_format(tmp_path / "ckpt", rope_scaling=rope_scaling)
    report = export_model(tmp_path / "ckpt", tmp_path / "repo", native=True)
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["model_type"] == "gte" and "auto_map" not in config, "no third-party code left"
    assert not list((tmp_path / "repo").glob("modeling*.py")) and report.pipeline_declared
    assert config["thresholds_by_lang"] == {"it": 0.7} and config["id2label"]["1"] == "reclaimed"
    native = AutoModelForSequenceClassification.from_pretrained(tmp_path / "repo").eval()
    batch = _encode(TEXTS)
    with torch.no_grad():
        want, got = reference(**batch).logits, native(**batch).logits
    assert want.abs().max() > 0.1, "logits large enough for the comparison to mean something"
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


@needs_gte
@pytest.mark.parametrize("cls", [GatedBioForSequenceClassification, ResidualTypeFusionForSequenceClassification])
def test_from_backbone_reads_a_new_format_base_as_native_gte(tmp_path, cls):
    reference = real_repos.save_new_format(tmp_path / "gte-base", thresholds=False)
    model = cls.from_backbone(tmp_path / "gte-base").eval()
    assert model.config.backbone_config.model_type == "gte"
    batch = _encode(TEXTS)
    with torch.no_grad():
        want = reference.new(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        got = model.encoder(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-4, rtol=0)
    model.save_pretrained(tmp_path / "saved")
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, model(**batch).logits, atol=0, rtol=0)


def test_a_remote_code_encoder_other_than_gte_is_refused_as_a_backbone(tmp_path):
    real_repos.save_new_format(tmp_path / "base", thresholds=False)
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    config["model_type"] = "someones-encoder"
    (tmp_path / "base" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"remote code from {CODE_REPO}.*transformers ships"):
        GatedBioForSequenceClassification.from_backbone(tmp_path / "base")


# --- the reclamation detector as it is: remote code through a cross-repo auto_map ------------------------------------


def _hand_decisions(reference, texts, langs):
    with torch.no_grad():
        p1 = torch.softmax(reference(**_encode(texts)).logits, -1)[:, 1].tolist()
    return p1, [
        ("reclaimed" if p >= (0.7 if lang == "it" else 0.7000000000000001) else "not_reclaimed")
        for p, lang in zip(p1, langs)
    ]


@pytest.mark.consumer
def test_the_remote_code_reclamation_detector_end_to_end(tmp_path, hf_home, consumer_python):
    reference = real_repos.save_new_format(tmp_path / "ckpt")
    install_in_offline_cache(NEW_IMPL, CODE_REPO, cache_dir=hf_home / "hub")  # the code-only repo, as on the Hub

    refused = run_cli(["export", str(tmp_path / "ckpt"), str(tmp_path / "repo")], hf_home)
    assert refused.returncode == 2 and not (tmp_path / "repo").exists()
    (line,) = refused.stderr.strip().splitlines()
    assert CODE_REPO in line and "--trust-remote-code" in line, "one line naming the code's repo and the flag"

    assert (
        run_cli(["export", str(tmp_path / "ckpt"), str(tmp_path / "repo"), "--trust-remote-code"], hf_home).returncode
        == 0
    )
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert (
        config["auto_map"]["AutoModelForSequenceClassification"]
        == real_repos.NEW_AUTO_MAP["AutoModelForSequenceClassification"]
    )
    p1, _ = _hand_decisions(reference, TEXTS, LANGS)
    rng = np.random.default_rng(0)
    rows = [
        {"text": t, "lang": lang, "label": int(rng.random() < p)} for t, lang, p in zip(TEXTS * 3, LANGS * 3, p1 * 3)
    ]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    tune = ["tune", str(tmp_path / "repo"), "--data", str(tmp_path / "dev.jsonl"), "--force"]
    assert run_cli(tune, hf_home).returncode == 2, "tune refuses remote code without the flag, with no prompt"
    tuned = run_cli([*tune, "--trust-remote-code"], hf_home)
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    card = run_cli(["card", str(tmp_path / "repo"), "--repo-id", "org/reclaim", "--trust-remote-code"], hf_home)
    assert card.returncode == 0, card.stderr[-2000:]
    readme = (tmp_path / "repo" / "README.md").read_text()
    pinned_code = (hf_home / "hub" / "models--Alibaba-NLP--new-impl" / "refs" / "main").read_text()
    assert f'code_revision="{pinned_code}"' in readme and f"**{CODE_REPO}**" in readme

    assert run_cli(["verify", str(tmp_path / "repo")], hf_home).returncode == 2
    verified = run_cli(["verify", str(tmp_path / "repo"), "--trust-remote-code", "--json"], hf_home)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    findings = json.loads(verified.stdout)["findings"]
    assert any(f["check"] == "remote-code" and f["status"] == "warn" and pinned_code in f["message"] for f in findings)
    assert any(f["check"] == "smoke-run" and f["status"] == "ok" for f in findings)

    tuned_config = json.loads((tmp_path / "repo" / "config.json").read_text())
    install_in_offline_cache(tmp_path / "repo", "org/reclaim", cache_dir=hf_home / "hub")
    out = run_stock_pipeline(
        "org/reclaim", hf_home, [{"inputs": TEXTS, "kwargs": {"lang": LANGS}}], python=consumer_python
    )
    cut = {
        lang: tuned_config.get("thresholds_by_lang", {}).get(lang, tuned_config["best_threshold_global"])
        for lang in LANGS
    }
    expected = ["reclaimed" if p >= cut[lang] else "not_reclaimed" for p, lang in zip(p1, LANGS)]
    assert [r["label"] for r in out["results"][0]] == expected
    assert [r["threshold"] for r in out["results"][0]] == [cut[lang] for lang in LANGS]


def test_verify_says_the_smoke_run_needs_the_code_repo(tmp_path, hf_home, monkeypatch):
    from hubheads.verify import verify_repo

    real_repos.save_new_format(tmp_path / "ckpt")
    export_model(tmp_path / "ckpt", tmp_path / "repo", trust_remote_code=True)
    _offline(monkeypatch, hf_home)  # an empty cache: the code repo is not there
    report = verify_repo(tmp_path / "repo", trust_remote_code=True)
    smoke = [f for f in report.findings if f.check == "smoke-run"]
    assert smoke and smoke[0].status == "warn" and f"hf download {CODE_REPO}" in smoke[0].message


# --- vinai/phobert-base: pickle-only main, safetensors in a pull request ref ----------------------------------------


def test_a_pickle_only_base_needs_consent_or_the_pr_revision(tmp_path, hf_home, monkeypatch):
    base = real_repos.save_pickle_only_base(tmp_path / "main", safetensors=False)
    real_repos.save_pickle_only_base(tmp_path / "pr", safetensors=True)
    install_in_offline_cache(tmp_path / "main", "vinai/phobert-base", cache_dir=hf_home / "hub")
    install_in_offline_cache(tmp_path / "pr", "vinai/phobert-base", cache_dir=hf_home / "hub", revision="refs/pr/3")
    assert (hf_home / "hub" / "models--vinai--phobert-base" / "refs" / "refs" / "pr" / "3").is_file()
    _offline(monkeypatch, hf_home)
    build = ResidualTypeFusionForSequenceClassification.from_backbone
    with pytest.raises(ValueError, match=r"only pickle weights \(pytorch_model.bin\).*refs/pr/N.*allow_pickle=True"):
        build("vinai/phobert-base", type_label_names=tiny.TYPE_LABELS)
    batch = _encode(TEXTS[:4])
    with torch.no_grad():
        want = base(**batch).last_hidden_state
    for model in (
        build("vinai/phobert-base", revision="refs/pr/3", type_label_names=tiny.TYPE_LABELS),
        build("vinai/phobert-base", allow_pickle=True, type_label_names=tiny.TYPE_LABELS),
    ):
        with torch.no_grad():
            torch.testing.assert_close(model.eval().encoder(**batch).last_hidden_state, want)
    model.save_pretrained(tmp_path / "saved")
    assert [p.name for p in (tmp_path / "saved").glob("*.bin")] == [] and (
        tmp_path / "saved" / "model.safetensors"
    ).is_file()


# --- a multi-task checkpoint saved by the author's own class ---------------------------------------------------------


@pytest.mark.consumer
def test_an_own_class_checkpoint_is_refused_then_imported(tmp_path, hf_home, consumer_python):
    from hubheads.cli import main

    author_model = real_repos.save_own_class_checkpoint(tmp_path / "author")
    assert main(["export", str(tmp_path / "author"), str(tmp_path / "bad")]) == 2, "no model_type: refused"
    assert not (tmp_path / "bad").exists()
    target = author_model.config.to_dict()
    (tmp_path / "target.json").write_text(json.dumps(target))
    base = ["import-weights", str(tmp_path / "author" / "model.safetensors"), str(tmp_path / "imported")]
    base += ["--config", str(tmp_path / "target.json"), "--tokenizer", str(tmp_path / "author")]
    assert main(base) == 2 and not (tmp_path / "imported").exists(), "roberta.* keys unmapped: a partial load, refused"
    assert main([*base, "--map", "roberta.=encoder."]) == 0
    assert main(["export", str(tmp_path / "imported"), str(tmp_path / "repo"), "--threshold", "0.4"]) == 0
    install_in_offline_cache(tmp_path / "repo", "org/trust-type", cache_dir=hf_home / "hub")
    out = run_stock_pipeline("org/trust-type", hf_home, [{"inputs": TEXTS}], python=consumer_python)
    with torch.no_grad():
        p1 = torch.softmax(author_model(**_encode(TEXTS)).logits, -1)[:, 1].tolist()
    assert [r["label"] for r in out["results"][0]] == ["trusted" if p >= 0.4 else "untrusted" for p in p1]
    assert all(set(r["tasks"]) == {"trust", "type"} for r in out["results"][0])


def test_import_weights_lists_what_does_not_fit(tmp_path):
    from hubheads import import_weights

    author_model = real_repos.save_own_class_checkpoint(tmp_path / "author")
    config = author_model.config.to_dict()
    with pytest.raises(ValueError, match=r"missing \(\d+\): encoder\..*unexpected \(\d+\): roberta\."):
        import_weights(tmp_path / "author" / "model.safetensors", tmp_path / "out", config=config)
    with pytest.raises(ValueError, match=r"missing \(2\): trust_head.bias, trust_head.weight"):
        import_weights(
            tmp_path / "author" / "model.safetensors",
            tmp_path / "out",
            config=config,
            key_map={"roberta.": "encoder."},
            drop=["trust_head."],
        )
    with pytest.raises(ValueError, match="model_type"):
        import_weights(tmp_path / "author" / "model.safetensors", tmp_path / "out", config={"num_labels": 2})
    assert not (tmp_path / "out").exists()


# --- the incivility repo: ten labels, no problem_type ----------------------------------------------------------------


def test_tune_points_a_multi_class_model_with_label_lists_at_export_multi_label(tmp_path):
    from hubheads.tune import tune_model

    labels = tiny.MULTI_LABELS
    export_model(tiny.save_checkpoint(tmp_path / "ckpt", num_labels=len(labels)), tmp_path / "repo")
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    config["id2label"] = dict(enumerate(labels))
    (tmp_path / "repo" / "config.json").write_text(json.dumps(config))
    rows = [{"text": t, "label": [labels[i % 5], labels[(i + 2) % 5]]} for i, t in enumerate(TEXTS)]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match="several gold labels per row.*hubheads export SRC OUT --multi-label"):
        tune_model(tmp_path / "repo", tmp_path / "dev.jsonl", progress=False)
