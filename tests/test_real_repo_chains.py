"""The four public repos hubheads exists for, each in its real form (real_repos.py), taken as their authors would
take them: export -> tune -> card -> verify -> push to the Hub -> a consumer who downloads the pushed revision and
calls the stock pipeline, whose decisions must equal a hand computation of the tuned thresholds.

The Hub is a `FakeHub` behind the real huggingface_hub client (tests/fakehub.py: only the HTTP transport is faked):
pushes, the author's downloads (a base model, the code repo) and the consumer's downloads are real huggingface_hub
calls. Each chain runs once per module (`scope="module"`); its consumer runs under every consumer interpreter.
Commands run in this process (`hubheads_cli.main`) except where a fresh process is the point: the `tune` of the
remote-code original (transformers imports the code repo's module into its module cache under HF_HOME), verify's
smoke run and the consumer. The reclamation detector is taken as its author has it (model code in the code repo,
which stops `tune` on transformers 5) and then exported with hubheads' own implementation of its architecture, which
the consumer runs without the code repo. Only that chain's `verify` does the smoke run; the others skip it, since
their consumer step runs the stock pipeline on the pushed repo under every interpreter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import real_repos
import tiny
import torch
import transformers
from fakehub import IGNORE_LFS_DATA_WARNING, FakeHub, deleted_paths
from huggingface_hub import snapshot_download
from packaging.version import Version
from real_repos import CODE_REPO, NEW_IMPL, cli, on_fake_hub, run_cli

from hubheads import ResidualTypeFusionForSequenceClassification, run_stock_pipeline

pytestmark = [IGNORE_LFS_DATA_WARNING, pytest.mark.consumer]  # every chain ends in fresh consumer processes

TEXTS = tiny.sample_texts(24, seed=11)
LANGS = ["it", "en", "es"] * 8


@dataclass
class Chain:
    """What a chain left behind: the pushed repo as a consumer downloaded it, and what each step said."""

    repo_id: str
    consumer_home: Path  # HF_HOME of a consumer who downloaded the pushed revision (and any code repo) from the Hub
    pipeline_kwargs: dict[str, Any]  # the consumer pins what the push made: its commit, or the pull request ref
    calls: list[dict[str, Any]]
    expected: list[Any]  # per call: the labels (or label sets) a hand computation gives
    steps: dict[str, Any] = field(default_factory=dict)


def _dev_rows(texts, p1, langs=None, seed=0):
    """A dev set whose gold labels follow the scores, so the tuned thresholds are informative."""
    rng = np.random.default_rng(seed)
    rows = [{"text": t, "label": int(rng.random() < p)} for t, p in zip(texts * 3, p1 * 3)]
    for row, lang in zip(rows, (langs or []) * 3):
        row["lang"] = lang
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _ok(step: tuple[int, str, str]) -> str:
    code, out, err = step
    assert code == 0, out[-3000:] + err[-3000:]
    return out


def _consumer_download(tmp: Path, repo_id: str, revision: str | None = None) -> Path:
    """A consumer's HF_HOME after `hf download` of the pushed revision from the Hub."""
    home = tmp / "consumer"
    snapshot_download(repo_id, revision=revision, cache_dir=home / "hub")
    return home


def _pushed_revision(hub: FakeHub, repo_id: str, ref: str) -> str:
    return hub.heads[(repo_id, ref)]


def _p_first(scores: list[list[float]], index: int = 1) -> list[float]:
    return [row[index] for row in scores]


# --- the reclamation detector: gte-multilingual-base fine-tune, code in Alibaba-NLP/new-impl -------------------------


@pytest.fixture(scope="module")
def reclamation(tmp_path_factory) -> Chain:
    tmp = tmp_path_factory.mktemp("reclamation")
    reference = real_repos.save_new_format(tmp / "ckpt")
    steps: dict[str, Any] = {}
    with on_fake_hub(tmp) as hub:
        code = {path.name: path.read_bytes() for path in NEW_IMPL.glob("*.py")}
        hub.publish(CODE_REPO, code)
        snapshot_download(CODE_REPO)  # the author has the code repo in the cache (`hf download`)
        author_home = hub.cache_dir.parent
        tokenizer = tiny.build_tokenizer()
        p1 = _p_first(tiny.probabilities(reference, tokenizer, TEXTS))
        data = _write_jsonl(tmp / "dev.jsonl", _dev_rows(TEXTS, p1, LANGS))

        # The author's checkpoint as it is: its model code is the code repo's.
        original = ["tune", str(tmp / "ckpt"), "--data", str(data), "--force"]
        steps["tune original refused"] = cli(original)
        steps["tune original"] = run_cli([*original, "--trust-remote-code"], author_home)  # a fresh process
        steps["original config"] = json.loads((tmp / "ckpt" / "config.json").read_text())

        # Exported with hubheads' own implementation of the architecture: no other repo's code from here on.
        steps["export"] = _ok(cli(["export", str(tmp / "ckpt"), str(tmp / "repo")]))
        _ok(cli(["tune", str(tmp / "repo"), "--data", str(data), "--force"]))
        score = ["score", str(tmp / "repo"), "--data", str(data), "--out", str(tmp / "decisions.jsonl")]
        _ok(cli([*score, "--keep", "lang", "--no-progress"]))
        steps["scored"] = [json.loads(line) for line in (tmp / "decisions.jsonl").read_text().splitlines()]
        _ok(cli(["card", str(tmp / "repo"), "--repo-id", "org/reclaim"]))
        steps["readme"] = (tmp / "repo" / "README.md").read_text()
        steps["verify"] = json.loads(_ok(cli(["verify", str(tmp / "repo"), "--json"])))
        _ok(cli(["push", str(tmp / "repo"), "--repo-id", "org/reclaim", "--no-smoke"]))
        commit = _pushed_revision(hub, "org/reclaim", "main")
        home = _consumer_download(tmp, "org/reclaim")  # without the code repo: nothing of it may run

    config = json.loads((tmp / "repo" / "config.json").read_text())
    steps["config"] = config
    cut = [config.get("thresholds_by_lang", {}).get(lang, config["best_threshold_global"]) for lang in LANGS]
    return Chain(
        repo_id="org/reclaim",
        consumer_home=home,
        pipeline_kwargs={"revision": commit},
        calls=[{"inputs": TEXTS, "kwargs": {"lang": LANGS}}],
        expected=[["reclaimed" if p >= c else "not_reclaimed" for p, c in zip(p1, cut)]],
        steps={**steps, "cut": cut},
    )


def _one_line_naming(step: tuple[int, str, str], *names: str) -> None:
    code, _, err = step
    assert code == 2
    (line,) = err.strip().splitlines()
    assert all(name in line for name in names), line


def test_the_reclamation_detector_chain(reclamation):
    steps = reclamation.steps
    _one_line_naming(steps["tune original refused"], CODE_REPO, "--trust-remote-code", "hubheads export SRC OUT")
    tuned = steps["tune original"]
    if Version(transformers.__version__).major >= 5:  # the code repo's buffers are lost: tune stops, naming them
        assert tuned.returncode == 2, tuned.stdout[-2000:]
        (line,) = [line for line in tuned.stderr.splitlines() if "error:" in line]
        assert "position_ids" in line and "inv_freq" in line and "hubheads export SRC OUT" in line, line
        assert "best_threshold_global" in steps["original config"], "the author's thresholds, untouched"
        assert (
            steps["original config"]["best_threshold_global"]
            == real_repos.RECLAMATION_THRESHOLDS["best_threshold_global"]
        )
    else:
        assert tuned.returncode == 0, tuned.stderr[-3000:]
    assert "hubheads' own implementation" in steps["export"]
    config = steps["config"]
    assert config["model_type"] == "new_gte" and CODE_REPO not in json.dumps(config)
    assert set(config["thresholds_by_lang"]) <= {"it", "en", "es"}, "tuned per language"
    # `hubheads score` gives the tuned per-language decisions: the dev set is TEXTS x 3.
    assert [row["label"] for row in steps["scored"]] == reclamation.expected[0] * 3
    assert [row["lang"] for row in steps["scored"]] == LANGS * 3
    readme = " ".join(steps["readme"].split())
    assert "hubheads' own implementation" in readme and f"**{CODE_REPO}**" not in readme
    findings = steps["verify"]["findings"]
    assert steps["verify"]["ok"] and not any(f["status"] == "warn" and CODE_REPO in f["message"] for f in findings)
    assert any(f["check"] == "smoke-run" and f["status"] == "ok" for f in findings)


# --- vinai/phobert-base: a multi-task trust + type model on a pickle-only base ---------------------------------------


@pytest.fixture(scope="module")
def phobert(tmp_path_factory) -> Chain:
    tmp = tmp_path_factory.mktemp("phobert")
    steps: dict[str, Any] = {}
    base_main = real_repos.save_pickle_only_base(tmp / "base-main", safetensors=False)
    real_repos.save_pickle_only_base(tmp / "base-pr", safetensors=True)
    build = ResidualTypeFusionForSequenceClassification.from_backbone
    with on_fake_hub(tmp) as hub:
        hub.publish("vinai/phobert-base", _files(tmp / "base-main"))
        hub.publish("vinai/phobert-base", _files(tmp / "base-pr"), revision="refs/pr/3")
        try:
            build("vinai/phobert-base", type_label_names=tiny.TYPE_LABELS)
            steps["pickle refused"] = "main's pytorch_model.bin was loaded without allow_pickle"
        except ValueError as error:
            steps["pickle refused"] = str(error)
        torch.manual_seed(7)
        model = build(
            "vinai/phobert-base",
            revision="refs/pr/3",
            type_label_names=tiny.TYPE_LABELS,
            id2label={0: "untrusted", 1: "trusted"},
        ).eval()
        for head in (model.type_head, model.trust_head):  # "fine-tuned": heads that spread the probabilities
            torch.nn.init.normal_(head.weight, std=0.3)
        batch = tiny.build_tokenizer()(TEXTS[:4], padding=True, return_tensors="pt")
        with torch.no_grad():
            steps["encoder equals the base"] = torch.allclose(
                model.encoder(**batch).last_hidden_state, base_main(**batch).last_hidden_state, atol=1e-6
            )
        model.save_pretrained(tmp / "finetuned")
        tiny.build_tokenizer().save_pretrained(tmp / "finetuned")

        _ok(cli(["export", str(tmp / "finetuned"), str(tmp / "repo")]))
        trust, types = _trust_and_type(model, TEXTS)
        rows = _dev_rows(TEXTS, _p_first(trust))
        for row, p_type in zip(rows, types * 3):
            row["type"] = tiny.TYPE_LABELS[int(np.argmax(p_type))]
        _ok(cli(["tune", str(tmp / "repo"), "--data", str(_write_jsonl(tmp / "dev.jsonl", rows))]))
        _ok(cli(["card", str(tmp / "repo"), "--repo-id", "org/phobert-trust-type"]))
        steps["verify"] = json.loads(_ok(cli(["verify", str(tmp / "repo"), "--no-smoke", "--json"])))
        _ok(cli(["push", str(tmp / "repo"), "--repo-id", "org/phobert-trust-type", "--no-smoke"]))
        commit = _pushed_revision(hub, "org/phobert-trust-type", "main")
        steps["pushed"] = hub.tree("org/phobert-trust-type")
        home = _consumer_download(tmp, "org/phobert-trust-type")

    return _trust_type_chain("org/phobert-trust-type", tmp, home, commit, trust, types, steps)


def _trust_type_chain(repo_id, tmp, home, commit, trust, types, steps) -> Chain:
    """A trust + type chain's consumer: the tuned trust threshold on p(trusted), the type head's argmax."""
    cut = json.loads((tmp / "repo" / "config.json").read_text())["best_threshold_global"]
    expected = [
        {"label": "trusted" if p[1] >= cut else "untrusted", "type": tiny.TYPE_LABELS[int(np.argmax(t))]}
        for p, t in zip(trust, types)
    ]
    return Chain(
        repo_id=repo_id,
        consumer_home=home,
        pipeline_kwargs={"revision": commit},
        calls=[{"inputs": TEXTS}],
        expected=[expected],
        steps={**steps, "cut": cut},
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _trust_and_type(model, texts) -> tuple[list[list[float]], list[list[float]]]:
    """Each text alone through the model, as the pipeline feeds it: trust and type probabilities."""
    tokenizer = tiny.build_tokenizer()
    trust, types = [], []
    with torch.no_grad():
        for text in texts:
            out = model(**tokenizer(text, return_tensors="pt"))
            trust.append(out.logits[0].softmax(-1).tolist())
            types.append(out.type_logits[0].softmax(-1).tolist())
    return trust, types


def test_the_phobert_chain(phobert):
    steps = phobert.steps
    assert "pytorch_model.bin" in steps["pickle refused"] and "refs/pr/N" in steps["pickle refused"]
    assert steps["encoder equals the base"], "the refs/pr/3 safetensors hold the same encoder as main's pickle"
    assert not [name for name in steps["pushed"] if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert steps["verify"]["ok"] and 0 < steps["cut"] < 1


# --- a trust + type checkpoint saved by its author's own PyTorch class -----------------------------------------------


@pytest.fixture(scope="module")
def own_class(tmp_path_factory) -> Chain:
    tmp = tmp_path_factory.mktemp("own-class")
    steps: dict[str, Any] = {}
    author_model = real_repos.save_own_class_checkpoint(tmp / "author")
    (tmp / "target.json").write_text(json.dumps(author_model.config.to_dict()))
    with on_fake_hub(tmp) as hub:
        steps["export refused"] = cli(["export", str(tmp / "author"), str(tmp / "bad")])
        steps["export left nothing"] = not (tmp / "bad").exists()
        imported = ["import-weights", str(tmp / "author" / "model.safetensors"), str(tmp / "imported")]
        imported += ["--config", str(tmp / "target.json"), "--tokenizer", str(tmp / "author")]
        steps["partial load refused"] = cli(imported)
        _ok(cli([*imported, "--map", "roberta.=encoder."]))
        _ok(cli(["export", str(tmp / "imported"), str(tmp / "repo")]))
        trust, types = _trust_and_type(author_model, TEXTS)
        data = _write_jsonl(tmp / "dev.jsonl", _dev_rows(TEXTS, _p_first(trust), seed=1))
        _ok(cli(["tune", str(tmp / "repo"), "--data", str(data)]))
        _ok(cli(["card", str(tmp / "repo"), "--repo-id", "org/trust-type"]))
        steps["verify"] = json.loads(_ok(cli(["verify", str(tmp / "repo"), "--no-smoke", "--json"])))
        _ok(cli(["push", str(tmp / "repo"), "--repo-id", "org/trust-type", "--no-smoke"]))
        commit = _pushed_revision(hub, "org/trust-type", "main")
        home = _consumer_download(tmp, "org/trust-type")

    return _trust_type_chain("org/trust-type", tmp, home, commit, trust, types, steps)


def test_the_own_class_chain(own_class):
    steps = own_class.steps
    _one_line_naming(steps["export refused"], "model_type", "import-weights")
    assert steps["export left nothing"]
    code, _, err = steps["partial load refused"]
    assert code == 2 and "unexpected" in err and "roberta." in err, "unmapped roberta.* keys: a partial load"
    assert steps["verify"]["ok"] and 0 < steps["cut"] < 1


# --- the incivility repo as published: ten labels, no problem_type, pickles, onnx/, an author's README ---------------

INCIVILITY = [
    "aspersion",
    "hyperbole",
    "lying",
    "namecalling",
    "noncooperation",
    "offtopic",
    "pejorative",
    "sarcasm",
    "vulgarity",
    "other",
]
AUTHOR_README = (
    "---\nlicense: mit\nlanguage: en\ntags:\n- incivility\n---\n# Incivility detector\n\n"
    "Fine-tuned by its author on annotated comments. Cite our paper when you use it.\n"
)
LEGACY = ["pytorch_model.bin", "rust_model.ot", "tf_model.h5", "training_args.bin"]


def _published_incivility(tmp: Path) -> dict[str, bytes]:
    """The repo as its author published it before hubheads."""
    model = tiny.build_model(
        num_labels=len(INCIVILITY),
        seed=4,
        id2label=dict(enumerate(INCIVILITY)),
        label2id={label: i for i, label in enumerate(INCIVILITY)},
    )
    model.save_pretrained(tmp / "published")
    tiny.build_tokenizer().save_pretrained(tmp / "published")
    config = json.loads((tmp / "published" / "config.json").read_text())
    assert "problem_type" not in config or config["problem_type"] is None
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    torch.save(state, tmp / "published" / "pytorch_model.bin")
    files = _files(tmp / "published")
    files |= {
        "training_args.bin": b"PK\x03\x04 pickled TrainingArguments",
        "tf_model.h5": b"\x89HDF\r\n\x1a\n keras weights",
        "rust_model.ot": b"rust-bert weights",
        "onnx/model.onnx": b"\x08\x07 onnx graph",
        "README.md": AUTHOR_README.encode(),
    }
    return files


@pytest.fixture(scope="module")
def incivility(tmp_path_factory) -> Chain:
    tmp = tmp_path_factory.mktemp("incivility")
    steps: dict[str, Any] = {}
    published = _published_incivility(tmp)
    model = tiny.build_model(num_labels=len(INCIVILITY), seed=4)
    scores = tiny.probabilities(model, tiny.build_tokenizer(), TEXTS, multi_label=True)
    rng = np.random.default_rng(2)
    rows = [
        {"text": text, "label": [label for label, p in zip(INCIVILITY, row) if rng.random() < p]}
        for text, row in zip(TEXTS * 3, scores * 3)
    ]
    data = _write_jsonl(tmp / "dev.jsonl", rows)
    with on_fake_hub(tmp) as hub:
        hub.publish("org/incivility", published)
        _ok(cli(["export", "org/incivility", str(tmp / "plain")]))
        steps["tune multi-class refused"] = cli(["tune", str(tmp / "plain"), "--data", str(data)])
        _ok(cli(["export", "org/incivility", str(tmp / "repo"), "--multi-label"]))
        steps["exported"] = sorted(path.name for path in (tmp / "repo").iterdir())
        _ok(cli(["tune", str(tmp / "repo"), "--data", str(data)]))
        _ok(cli(["card", str(tmp / "repo"), "--repo-id", "org/incivility"]))
        steps["verify"] = json.loads(_ok(cli(["verify", str(tmp / "repo"), "--no-smoke", "--json"])))
        push = ["push", str(tmp / "repo"), "--repo-id", "org/incivility", "--no-smoke"]
        steps["push refused"] = cli(push)
        steps["push onto main refused"] = cli([*push, "--delete-legacy"])
        steps["push"] = _ok(cli([*push, "--create-pr", "--delete-legacy"]))
        (commit,) = hub.commits
        steps["deleted"] = sorted(deleted_paths(commit))
        steps["main"] = hub.tree("org/incivility")
        steps["pr"] = hub.tree("org/incivility", "refs/pr/1")
        steps["verify after push"] = json.loads(
            _ok(cli(["verify", "org/incivility", "--revision", "refs/pr/1", "--no-smoke", "--json"]))
        )
        steps["verify main"] = cli(["verify", "org/incivility", "--no-smoke", "--json"])
        home = _consumer_download(tmp, "org/incivility", revision="refs/pr/1")

    config = json.loads((tmp / "repo" / "config.json").read_text())
    steps["config"] = config
    fallback = next(config[key] for key in ("best_threshold_global", "default_threshold") if key in config)
    cuts = [config.get("label_thresholds", {}).get(label, fallback) for label in INCIVILITY]
    expected = [
        [label for p, c, label in sorted(zip(row, cuts, INCIVILITY), key=lambda item: -item[0]) if p >= c]
        for row in scores
    ]
    return Chain(
        repo_id="org/incivility",
        consumer_home=home,
        pipeline_kwargs={"revision": "refs/pr/1"},
        calls=[{"inputs": TEXTS}],
        expected=[expected],
        steps=steps,
    )


def test_the_published_incivility_repo_chain(incivility):
    steps = incivility.steps
    code, _, err = steps["tune multi-class refused"]
    assert code == 2 and "hubheads export SRC OUT --multi-label" in err
    assert not set(steps["exported"]) & {*LEGACY, "onnx"}, "the export downloads no legacy weights"
    assert steps["config"]["problem_type"] == "multi_label_classification" and steps["config"]["label_thresholds"]
    code, _, err = steps["push refused"]
    assert code == 2 and "--delete-legacy" in err and all(name in err for name in LEGACY)
    code, _, err = steps["push onto main refused"]
    assert code == 2 and "--create-pr" in err
    assert steps["deleted"] == LEGACY and f"Deleted in the same commit: {', '.join(LEGACY)}" in steps["push"]
    assert "left in place, built from the previous weights (they no longer match): onnx/model.onnx" in steps["push"]
    assert steps["main"]["README.md"] == AUTHOR_README.encode(), "main is untouched until the PR is merged"
    readme = steps["pr"]["README.md"].decode()
    assert "Cite our paper when you use it." in readme and "<!-- hubheads:start -->" in readme
    assert re.search(r"^license: mit$", readme, re.M) and "- incivility" in readme and "model-index" in readme
    assert "onnx/model.onnx" in steps["pr"] and not set(LEGACY) & set(steps["pr"])
    assert steps["verify"]["ok"] and steps["verify after push"]["ok"]
    assert steps["verify main"][0] == 1, "main still holds the pickles"


# --- every chain's consumer ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", ["reclamation", "phobert", "own_class", "incivility"])
def test_the_consumer_gets_the_tuned_decisions(request, chain, consumer_python):
    chain = request.getfixturevalue(chain)
    out = run_stock_pipeline(
        chain.repo_id, chain.consumer_home, chain.calls, python=consumer_python, pipeline_kwargs=chain.pipeline_kwargs
    )
    for results, expected in zip(out["results"], chain.expected):
        if expected and isinstance(expected[0], dict):  # trust + type: the primary decision and the type head
            got = [{"label": r["label"], "type": r["tasks"]["type"]["label"]} for r in results]
        elif expected and isinstance(expected[0], list):  # multi-label: the set above each label's threshold
            got = [[r["label"] for r in result] for result in results]
        else:
            got = [r["label"] for r in results]
        assert got == expected
