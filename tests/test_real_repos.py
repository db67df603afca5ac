"""The public repos hubheads exists for, reproduced offline in their real forms (see real_repos.py), taken through
export -> tune -> card -> verify -> consumer."""

from __future__ import annotations

import json
import re

import pytest
import real_repos
import tiny
import torch
from conftest import transformers_version
from huggingface_hub import constants
from packaging.version import Version
from real_repos import CODE_REPO, NEW_IMPL
from transformers import AutoModelForSequenceClassification

from hubheads import (
    GatedBioForSequenceClassification,
    ResidualTypeFusionForSequenceClassification,
    export_model,
    install_in_offline_cache,
    run_stock_pipeline,
)
from hubheads.offline_hub import run_consumer_process
from hubheads.sources import MIN_GTE_TRANSFORMERS, has_native_gte

TEXTS = tiny.sample_texts(24, seed=11)
LANGS = ["it", "en", "es"] * 8
needs_gte = pytest.mark.skipif(not has_native_gte(), reason="transformers < 5.18 has no native gte")


def _encode(texts):
    return tiny.build_tokenizer()(texts, padding=True, return_tensors="pt")


def _major(python: str) -> int:
    """The major version of the transformers release `python` has."""
    return Version(transformers_version(python)).major


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
@pytest.mark.consumer
def test_a_native_export_runs_with_no_remote_code_from_transformers_5_18(tmp_path, hf_home, consumer_python):
    from hubheads.card import CardOptions, write_card

    reference = real_repos.save_new_format(tmp_path / "ckpt")
    export_model(tmp_path / "ckpt", tmp_path / "repo", native=True)
    write_card(tmp_path / "repo", CardOptions(repo_id="org/reclaim-native"))
    readme = " ".join((tmp_path / "repo" / "README.md").read_text().split())
    assert "Needs transformers >= 5.18.0, the first release with the native `gte` architecture" in readme
    install_in_offline_cache(tmp_path / "repo", "org/reclaim-native", cache_dir=hf_home / "hub")
    calls = [{"inputs": TEXTS, "kwargs": {"lang": LANGS}}]
    if Version(transformers_version(consumer_python)) < Version(
        MIN_GTE_TRANSFORMERS
    ):  # what the card's limitation says
        with pytest.raises(RuntimeError, match="model type `gte` but Transformers does not recognize"):
            run_stock_pipeline("org/reclaim-native", hf_home, calls, python=consumer_python)
        return
    out = run_stock_pipeline("org/reclaim-native", hf_home, calls, python=consumer_python)
    p1 = [row[1] for row in tiny.probabilities(reference, tiny.build_tokenizer(), TEXTS)]
    cut = [0.7 if lang == "it" else real_repos.RECLAMATION_THRESHOLDS["best_threshold_global"] for lang in LANGS]
    assert [r["label"] for r in out["results"][0]] == [
        "reclaimed" if p >= c else "not_reclaimed" for p, c in zip(p1, cut)
    ]


@pytest.mark.parametrize("cls", [GatedBioForSequenceClassification, ResidualTypeFusionForSequenceClassification])
def test_from_backbone_reads_a_new_format_base_with_hubheads_new_gte(tmp_path, cls):
    reference = real_repos.save_new_format(tmp_path / "gte-base", thresholds=False)
    model = cls.from_backbone(tmp_path / "gte-base").eval()
    assert model.config.backbone_config.model_type == "new_gte"
    batch = _encode(TEXTS)
    with torch.no_grad():
        want = reference.new(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        got = model.encoder(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=0)
    model.save_pretrained(tmp_path / "saved")
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**batch).logits, model(**batch).logits, atol=0, rtol=0)


# --- gte-multilingual-base: hubheads' own implementation, the default export ----------------------------------------


@pytest.mark.parametrize("rope_scaling", [None, {"type": "ntk", "factor": 2.0}], ids=["plain", "ntk"])
def test_export_converts_a_new_format_checkpoint_to_hubheads_new_gte(tmp_path, rope_scaling):
    """No --trust-remote-code: the code repo's code never runs; the weights file is the author's, byte for byte."""
    reference = real_repos.save_new_format(tmp_path / "ckpt", rope_scaling=rope_scaling)
    report = export_model(tmp_path / "ckpt", tmp_path / "repo")
    assert report.converted == "new_gte"
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["model_type"] == "new_gte" and "rope_scaling" not in config
    assert all("--" not in reference for reference in config["auto_map"].values()), "no other repo's code"
    assert (tmp_path / "repo" / "modeling_new_gte.py").is_file()
    assert (tmp_path / "repo" / "model.safetensors").read_bytes() == (
        tmp_path / "ckpt" / "model.safetensors"
    ).read_bytes()
    assert config["thresholds_by_lang"] == {"it": 0.7} and config["id2label"]["1"] == "reclaimed"
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "repo").eval()
    assert type(model).__module__ == "hubheads.modeling.modeling_new_gte"
    batch = _encode(TEXTS)
    with torch.no_grad():
        want, got = reference(**batch).logits, model(**batch).logits
    assert want.abs().max() > 0.1, "logits large enough for the comparison to mean something"
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "key, value", [("pack_qkv", False), ("layer_norm_type", "rms_norm"), ("logn_attention_scale", True)]
)
def test_a_new_format_checkpoint_with_a_code_path_new_gte_lacks_is_refused(tmp_path, key, value):
    real_repos.save_new_format(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**config, key: value}))
    with pytest.raises(ValueError, match=f"`{key}` is {value!r}"):
        export_model(tmp_path / "ckpt", tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_the_routes_for_new_format_code_exclude_each_other(tmp_path):
    real_repos.save_new_format(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="pick one"):
        export_model(tmp_path / "ckpt", tmp_path / "repo", native=True, keep_remote_code=True)
    with pytest.raises(ValueError, match="Alibaba-NLP/new-impl.*--trust-remote-code"):
        export_model(tmp_path / "ckpt", tmp_path / "repo", keep_remote_code=True)
    tiny.save_checkpoint(tmp_path / "plain")
    with pytest.raises(ValueError, match="--keep-remote-code applies to"):
        export_model(tmp_path / "plain", tmp_path / "repo", keep_remote_code=True)


def test_a_remote_code_encoder_other_than_gte_is_refused_as_a_backbone(tmp_path):
    real_repos.save_new_format(tmp_path / "base", thresholds=False)
    config = json.loads((tmp_path / "base" / "config.json").read_text())
    config["model_type"] = "someones-encoder"
    (tmp_path / "base" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"remote code from {CODE_REPO}.*transformers ships"):
        GatedBioForSequenceClassification.from_backbone(tmp_path / "base")


# --- the reclamation detector as it is: remote code through a cross-repo auto_map ------------------------------------


@pytest.mark.consumer
def test_a_repo_whose_only_code_is_the_other_repos_is_pinned_with_code_revision(
    tmp_path, hf_home, monkeypatch, consumer_python
):
    """Untuned, the export declares no pipeline of its own: all its code is in the code repo, which the card's call
    pins with `code_revision=` (the tuned chain, whose repo has the hubheads pipeline, is in test_real_repo_chains)."""
    from hubheads.card import CardOptions, write_card

    reference = real_repos.save_new_format(tmp_path / "ckpt", thresholds=False)
    report = export_model(tmp_path / "ckpt", tmp_path / "repo", trust_remote_code=True, keep_remote_code=True)
    assert not report.pipeline_declared
    code_commit = install_in_offline_cache(NEW_IMPL, CODE_REPO, cache_dir=hf_home / "hub")
    commit = install_in_offline_cache(tmp_path / "repo", "org/reclaim", cache_dir=hf_home / "hub")
    _offline(monkeypatch, hf_home)
    write_card(tmp_path / "repo", CardOptions(repo_id="org/reclaim", revision=commit), trust_remote_code=True)
    readme = (tmp_path / "repo" / "README.md").read_text()
    assert f'revision="{commit}", code_revision="{code_commit}"' in readme

    assert "runs on transformers 4 only" in " ".join(readme.split())

    kwargs = {"revision": commit, "code_revision": code_commit}
    if _major(consumer_python) >= 5:  # the code repo's buffers are left uninitialised: what the card says
        with pytest.raises(RuntimeError, match="IndexError"):  # filled, so that the allocator's luck cannot hide it
            run_stock_pipeline(
                "org/reclaim",
                hf_home,
                [{"inputs": TEXTS}],
                python=consumer_python,
                pipeline_kwargs=kwargs,
                fill_uninitialized=True,
            )
        return
    out = run_stock_pipeline(
        "org/reclaim", hf_home, [{"inputs": TEXTS}], python=consumer_python, pipeline_kwargs=kwargs
    )
    with torch.no_grad():
        p1 = torch.softmax(reference(**_encode(TEXTS)).logits, -1)[:, 1].tolist()
    assert [r["label"] for r in out["results"][0]] == ["reclaimed" if p > 0.5 else "not_reclaimed" for p in p1]


@pytest.mark.consumer
def test_code_revision_cannot_pin_the_code_repo_of_a_repo_with_its_own_pipeline(tmp_path, hf_home, consumer_python):
    """Why the card shows no `code_revision=` on a repo that keeps the code repo and has thresholds: transformers
    fetches every code file of the load at it, this repo's `pipeline_hubheads.py` too, which does not exist at the
    code repo's commit."""
    real_repos.save_new_format(tmp_path / "ckpt")
    assert export_model(tmp_path / "ckpt", tmp_path / "repo", trust_remote_code=True, keep_remote_code=True)
    code_commit = install_in_offline_cache(NEW_IMPL, CODE_REPO, cache_dir=hf_home / "hub")
    commit = install_in_offline_cache(tmp_path / "repo", "org/reclaim", cache_dir=hf_home / "hub")
    kwargs = {"revision": commit, "code_revision": code_commit}
    with pytest.raises(RuntimeError, match="couldn't find (it|them) in the cached files"):
        run_stock_pipeline("org/reclaim", hf_home, [{"inputs": TEXTS}], python=consumer_python, pipeline_kwargs=kwargs)


def test_verify_says_the_smoke_run_needs_the_code_repo(tmp_path, hf_home, monkeypatch):
    from hubheads.verify import verify_repo

    real_repos.save_new_format(tmp_path / "ckpt")
    export_model(tmp_path / "ckpt", tmp_path / "repo", trust_remote_code=True, keep_remote_code=True)
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


# Every Python block of a GTE repo's card, as a consumer pastes it: first the blocks without hubheads (it is blocked),
# then the `pip install hubheads` block with it. One fresh process per repo and release, standard input closed, and
# uninitialised memory filled (NaN, the largest integer), so that code which reads it fails every time, not by luck.
_CARD_SCRIPT = r"""
import json, re, sys
import torch
torch.use_deterministic_algorithms(True, warn_only=True)
blocks = json.load(sys.stdin)
sys.modules["hubheads"] = None
ran = []
for block in sorted(blocks, key=lambda block: "from hubheads" in block):
    if "from hubheads" in block:
        del sys.modules["hubheads"]
    lines = block.strip().splitlines()
    if lines[-1].startswith("clf("):
        lines[-1] = "result = " + lines[-1].split("  #")[0]
    scope = {}
    try:
        exec("\n".join(lines), scope)
        ran.append({"ok": True, "result": scope.get("result")})
    except Exception as error:
        ran.append({"ok": False, "error": f"{type(error).__name__}: {error}"[:300]})
print(json.dumps(ran))
"""


@pytest.mark.consumer
@pytest.mark.parametrize("route", ["new_gte", "keep-remote-code"])
def test_every_call_on_a_gte_card_runs_where_the_card_says(tmp_path, hf_home, monkeypatch, consumer_python, route):
    from hubheads.card import CardOptions, render_card

    real_repos.save_new_format(tmp_path / "ckpt")
    options = {"trust_remote_code": True, "keep_remote_code": True} if route == "keep-remote-code" else {}
    export_model(tmp_path / "ckpt", tmp_path / "repo", **options)
    install_in_offline_cache(NEW_IMPL, CODE_REPO, cache_dir=hf_home / "hub")
    commit = install_in_offline_cache(tmp_path / "repo", "org/reclaim", cache_dir=hf_home / "hub")
    _offline(monkeypatch, hf_home)
    card_options = CardOptions(repo_id="org/reclaim", revision=commit)
    content = str(render_card(tmp_path / "repo", card_options))
    blocks = re.findall(r"```python\n(.*?)```", content, flags=re.S)
    # The remote-code call, the pip call, and (for a model class hubheads ships) the loading snippet.
    assert len(blocks) == (3 if route == "new_gte" else 2)
    completed = run_consumer_process(["-c", _CARD_SCRIPT], hf_home, payload=blocks, python=consumer_python)
    ran = json.loads(completed.stdout.splitlines()[-1])
    if route == "keep-remote-code" and _major(consumer_python) >= 5:  # what the card says: transformers 4 only
        assert "runs on transformers 4 only" in " ".join(content.split())
        calls = [run for run, block in zip(ran, sorted(blocks, key=lambda b: "from hubheads" in b)) if "clf(" in block]
        assert len(calls) == 2 and all(not run["ok"] and "IndexError" in run["error"] for run in calls), ran
        return
    assert all(run["ok"] for run in ran), ran
    results = [run["result"] for run in ran if run["result"] is not None]
    assert len(results) == 2 and results[0] == results[1], "the remote-code and the pip call decide alike"
