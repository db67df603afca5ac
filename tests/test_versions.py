"""Every transformers release the project claims, as a consumer without hubheads.

One module-scoped set of repos, one of each kind hubheads writes (per-language thresholds, multi-label sets, a plain
repo that configures nothing, the trust + type model, the gated post + bio model, a remote-code backbone through a
cross-repo `auto_map`), and one fresh process per release that runs them all through the stock
`pipeline("text-classification", model=repo, trust_remote_code=True)`. Each release must give the decisions a hand
computation gives, and the same outputs as the newest release (scores to 1e-5). `make test` runs it under the floor
release (4.46.1, with every dependency at its floor), 4.57.6, the first 5.x (5.0.0) and the newest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import real_repos
import tiny
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hubheads import (
    GatedBioCollator,
    GatedBioForSequenceClassification,
    add_language_tokens,
    export_model,
    install_in_offline_cache,
    run_stock_pipelines,
)
from hubheads.offline_hub import run_consumer_process

pytestmark = pytest.mark.consumer

TEXTS = tiny.sample_texts(12, seed=21)
LANGS = ["it", "en", "es"] * 4
BIOS = ["love people friend", None, "", "hate enemy awful", "grazie amico", "thanks"] * 2


#: The scores the original code gives (the "new"-format reference, run in this process, where its buffers are set),
#: as the pipeline reports them: the probability of the returned label.
ORIGINAL_SCORES: dict[str, list[float]] = {}


def _cut(scores: list[float]) -> float:
    """A threshold halfway between the two middle scores: it splits them, clear of float noise."""
    ordered = sorted(scores)
    middle = len(ordered) // 2
    return (ordered[middle - 1] + ordered[middle]) / 2


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> tuple[Path, list[dict], list[list]]:
    """(HF_HOME, one request per repo, the hand-computed labels of each request's first call)."""
    tmp = tmp_path_factory.mktemp("releases")
    hf_home = tmp / "hf_home"
    tokenizer = tiny.build_tokenizer()
    requests, expected = [], []

    def publish(folder: Path, repo_id: str, calls: list[dict], labels: list) -> None:
        install_in_offline_cache(folder, repo_id, cache_dir=hf_home / "hub")
        requests.append({"repo_id": repo_id, "calls": calls})
        expected.append(labels)

    # Per-language thresholds on a binary XLM-R classifier.
    model = tiny.build_model("xlm-roberta", seed=1)
    model.save_pretrained(tmp / "binary-ckpt")
    tokenizer.save_pretrained(tmp / "binary-ckpt")
    p1 = [row[1] for row in tiny.probabilities(model, tokenizer, TEXTS)]
    by_lang = {"it": _cut(p1[0::3]), "en": _cut(p1[1::3])}
    best = _cut(p1[2::3])
    export_model(tmp / "binary-ckpt", tmp / "binary", threshold=best, lang_thresholds=by_lang)
    labels = ["LABEL_1" if p >= by_lang.get(lang, best) else "LABEL_0" for p, lang in zip(p1, LANGS)]
    publish(tmp / "binary", "org/binary", [{"inputs": TEXTS, "kwargs": {"lang": LANGS}}], labels)

    # Multi-label sets with per-label thresholds.
    names = tiny.MULTI_LABELS
    model = tiny.build_model(num_labels=len(names), seed=2, id2label=dict(enumerate(names)))
    model.save_pretrained(tmp / "multi-ckpt")
    tokenizer.save_pretrained(tmp / "multi-ckpt")
    label_thresholds = {"sarcasm": 0.3, "vulgarity": 0.8}
    export_model(tmp / "multi-ckpt", tmp / "multi", multi_label=True, label_thresholds=label_thresholds)
    scores = tiny.probabilities(model, tokenizer, TEXTS, multi_label=True)
    sets = [
        [n for p, n in sorted(zip(row, names), key=lambda item: -item[0]) if p >= label_thresholds.get(n, 0.5)]
        for row in scores
    ]
    publish(tmp / "multi", "org/multi", [{"inputs": TEXTS}], sets)

    # A plain three-class model that configures nothing: the stock pipeline class, argmax.
    model = tiny.build_model("bert", num_labels=3, seed=3)
    model.save_pretrained(tmp / "plain-ckpt")
    tokenizer.save_pretrained(tmp / "plain-ckpt")
    assert not export_model(tmp / "plain-ckpt", tmp / "plain").pipeline_declared
    argmax = [f"LABEL_{int(np.argmax(row))}" for row in tiny.probabilities(model, tokenizer, TEXTS)]
    publish(tmp / "plain", "org/plain", [{"inputs": TEXTS}, {"inputs": TEXTS, "kwargs": {"top_k": None}}], argmax)

    # The trust + type model.
    model = tiny.build_residual_type_fusion("xlm-roberta", seed=4)
    with torch.no_grad():
        outputs = [model(**tokenizer(text, return_tensors="pt")) for text in TEXTS]
    trust = [out.logits[0].softmax(-1)[1].item() for out in outputs]
    model.config.best_threshold_global = _cut(trust)
    model.save_pretrained(tmp / "trust-ckpt")
    tokenizer.save_pretrained(tmp / "trust-ckpt")
    export_model(tmp / "trust-ckpt", tmp / "trust")
    trust_type = [
        ("trusted" if p >= _cut(trust) else "untrusted", tiny.TYPE_LABELS[int(out.type_logits[0].argmax())])
        for p, out in zip(trust, outputs)
    ]
    publish(tmp / "trust", "org/trust-type", [{"inputs": TEXTS}], trust_type)

    # The gated post + bio model, with language tokens.
    model = tiny.build_gated_bio(use_lang_token=True, languages=["it", "en"], seed=5)
    bio_tokenizer = tiny.build_tokenizer()
    add_language_tokens(model, bio_tokenizer)
    rows = [{"text": t, "bio": b, "lang": lang} for t, b, lang in zip(TEXTS, BIOS, LANGS)]
    with torch.no_grad():
        p_bio = model(**GatedBioCollator(bio_tokenizer, model.config)(rows)).logits.softmax(-1)[:, 1].tolist()
    model.config.best_threshold_global = _cut(p_bio)
    export_model(model, tmp / "bio", tokenizer=bio_tokenizer)
    labels = ["LABEL_1" if p >= _cut(p_bio) else "LABEL_0" for p in p_bio]
    publish(tmp / "bio", "org/bio", [{"inputs": TEXTS, "kwargs": {"bio": BIOS, "lang": LANGS}}], labels)

    # A gte-multilingual-base fine-tune in its "new" format, exported with hubheads' own implementation of the
    # architecture: the code repo (Alibaba-NLP/new-impl) is not in the consumer's cache, and none of it may run.
    new_model = real_repos.save_new_format(tmp / "new-ckpt")
    assert export_model(tmp / "new-ckpt", tmp / "new").converted == "new_gte"
    thresholds = json.loads((tmp / "new" / "config.json").read_text())
    p_new = [row[1] for row in tiny.probabilities(new_model, tokenizer, TEXTS)]
    cut = [thresholds["thresholds_by_lang"].get(lang, thresholds["best_threshold_global"]) for lang in LANGS]
    reclaimed = ["reclaimed" if p >= c else "not_reclaimed" for p, c in zip(p_new, cut)]
    publish(tmp / "new", "org/reclaim", [{"inputs": TEXTS, "kwargs": {"lang": LANGS}}], reclaimed)
    ORIGINAL_SCORES["org/reclaim"] = [p if label == "reclaimed" else 1 - p for p, label in zip(p_new, reclaimed)]

    # The gated post + bio model on that backbone: its encoder is hubheads' new_gte, with the base's weights.
    torch.manual_seed(6)
    model = GatedBioForSequenceClassification.from_backbone(tmp / "new-ckpt").eval()
    torch.nn.init.normal_(model.classifier.weight, std=3.0)
    rows = [{"text": t, "bio": b} for t, b in zip(TEXTS, BIOS)]
    with torch.no_grad():
        p_bio = model(**GatedBioCollator(tokenizer, model.config)(rows)).logits.softmax(-1)[:, 1].tolist()
    model.config.best_threshold_global = _cut(p_bio)
    export_model(model, tmp / "bio-gte", tokenizer=tokenizer)
    labels = ["LABEL_1" if p >= _cut(p_bio) else "LABEL_0" for p in p_bio]
    publish(tmp / "bio-gte", "org/bio-gte", [{"inputs": TEXTS, "kwargs": {"bio": BIOS}}], labels)
    ORIGINAL_SCORES["org/bio-gte"] = [p if label == "LABEL_1" else 1 - p for p, label in zip(p_bio, labels)]
    return hf_home, requests, expected


@pytest.fixture(scope="module")
def newest(repos) -> list[dict]:
    hf_home, requests, _ = repos
    return run_stock_pipelines(hf_home, requests)


def _labels(result) -> list:
    """The decision of each input of a call: a label, a (trust, type) pair or a multi-label set."""
    labels = []
    for row in result:
        if isinstance(row, list):
            labels.append([r["label"] for r in row])
        elif "tasks" in row:
            labels.append((row["label"], row["tasks"]["type"]["label"]))
        else:
            labels.append(row["label"])
    return labels


def _scores(result) -> list[float]:
    return [r["score"] for row in result for r in (row if isinstance(row, list) else [row])]


def test_every_repo_kind_gives_the_hand_computed_decisions_on_every_release(repos, newest, release_python):
    hf_home, requests, expected = repos
    outputs = (
        newest if release_python == sys.executable else run_stock_pipelines(hf_home, requests, python=release_python)
    )
    versions = {output["transformers_version"] for output in outputs}
    assert len(versions) == 1
    for request, output, want, reference in zip(requests, outputs, expected, newest):
        name = f"{request['repo_id']} on transformers {output['transformers_version']}"
        assert _labels(output["results"][0]) == want, name
        for got, ref in zip(output["results"], reference["results"]):
            assert _labels(got) == _labels(ref), name
            assert _scores(got) == pytest.approx(_scores(ref), abs=1e-5), name
        assert output["pipeline_class"] == reference["pipeline_class"], name
        if request["repo_id"] in ORIGINAL_SCORES:
            assert _scores(output["results"][0]) == pytest.approx(ORIGINAL_SCORES[request["repo_id"]], abs=1e-5), name


# Loading as a card documents it, and as a pip user does: one fresh process per release. First with hubheads blocked,
# the card's own "load the model and its tokenizer yourself" snippet (remote code, `trust_remote_code=True`); then with
# hubheads imported (`make test` installs it into every release's environment), the Auto classes and
# `pipeline_class=` without remote code. Standard input is closed: a prompt would fail the load, and shows in stdout.
_LOADING_SCRIPT = r"""
import json, sys
import torch
payload = json.load(sys.stdin)
sys.modules["hubheads"] = None
snippets = {}
for repo_id, snippet in payload["snippets"].items():
    scope = {}
    exec(snippet, scope)
    encoded = scope["tokenizer"](payload["text"], return_tensors="pt")
    with torch.no_grad():
        logits = scope["model"](**encoded).logits[0].tolist()
    snippets[repo_id] = {"ids": encoded["input_ids"][0].tolist(), "logits": logits,
                         "model_module": type(scope["model"]).__module__}
del sys.modules["hubheads"]
import hubheads
from hubheads import HubheadsTextClassificationPipeline
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
installed = {}
for request in payload["requests"]:
    repo_id = request["repo_id"]
    tokenizer = AutoTokenizer.from_pretrained(repo_id)
    model = AutoModelForSequenceClassification.from_pretrained(repo_id)
    clf = pipeline("text-classification", model=repo_id, pipeline_class=HubheadsTextClassificationPipeline)
    installed[repo_id] = {
        "ids": tokenizer(payload["text"])["input_ids"],
        "model_module": type(model).__module__,
        "pipeline_module": type(clf).__module__,
        "results": [clf(call["inputs"], **call.get("kwargs", {})) for call in request["calls"]],
    }
print(json.dumps({"snippets": snippets, "installed": installed}))
"""


def test_card_snippets_and_the_installed_package_load_silently_on_every_release(repos, newest, release_python):
    hf_home, requests, _ = repos
    from huggingface_hub import snapshot_download

    from hubheads.card import CardOptions, render_card

    snippets = {}
    for repo_id in ("org/trust-type", "org/bio", "org/reclaim", "org/bio-gte"):
        folder = snapshot_download(repo_id, cache_dir=hf_home / "hub", local_files_only=True)
        card = str(render_card(folder, CardOptions(repo_id=repo_id)))
        block = card.split("To load the model and its tokenizer yourself:")[1].split("```python\n")[1].split("```")[0]
        assert "AutoTokenizer.from_pretrained" in block and "trust_remote_code=True" in block
        snippets[repo_id] = block
    own_code = requests  # every repo: org/reclaim's model code is hubheads' new_gte, not the code repo's
    payload = {"snippets": snippets, "requests": own_code, "text": TEXTS[0]}
    completed = run_consumer_process(["-c", _LOADING_SCRIPT], hf_home, payload=payload, python=release_python)
    assert "Do you wish to run the custom code" not in completed.stdout + completed.stderr
    report = json.loads(completed.stdout.splitlines()[-1])

    for repo_id, loaded in report["snippets"].items():
        folder = snapshot_download(repo_id, cache_dir=hf_home / "hub", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        encoded = tokenizer(TEXTS[0], return_tensors="pt")
        assert loaded["ids"] == encoded["input_ids"][0].tolist(), repo_id
        with torch.no_grad():
            assert loaded["logits"] == pytest.approx(model(**encoded).logits[0].tolist(), abs=1e-5), repo_id
        assert loaded["model_module"].startswith("transformers_modules."), repo_id

    reference = {request["repo_id"]: output for request, output in zip(requests, newest)}
    for request in own_code:
        repo_id, loaded = request["repo_id"], report["installed"][request["repo_id"]]
        assert loaded["pipeline_module"] == "hubheads.modeling.pipeline_hubheads", repo_id
        assert loaded["model_module"].startswith(("hubheads.modeling.", "transformers.models.")), repo_id
        for got, want in zip(loaded["results"], reference[repo_id]["results"]):
            assert _labels(got) == _labels(want), repo_id
            assert _scores(got) == pytest.approx(_scores(want), abs=1e-5), repo_id


# The "new"-format reference (tests/new_impl) keeps the original code's buffers: non-persistent, filled in `__init__`,
# never restored by `_init_weights`. Loaded through remote code as a consumer loads the original, with torch's fill of
# uninitialised memory on (NaN, the largest integer), so that a buffer the load leaves unset is wrong every time
# rather than right by luck: each buffer is compared with the value the code computes when it builds the model itself.
_ORIGINAL_SCRIPT = r"""
import json, sys
import torch
from transformers import AutoModelForSequenceClassification
import transformers
encoded = json.load(sys.stdin)  # token ids: the author's tokenizer file is transformers 5's format
torch.use_deterministic_algorithms(True, warn_only=True)
model = AutoModelForSequenceClassification.from_pretrained("author/reclaim", trust_remote_code=True).eval()
torch.use_deterministic_algorithms(False)
built = type(model)(model.config).eval()  # built directly: `__init__` computes the buffers
persistent = set(model.state_dict())
unset = sorted(
    name.rsplit(".", 1)[-1]
    for name, buffer in model.named_buffers()
    if name not in persistent and not torch.equal(buffer, built.get_buffer(name))
)
logits = None
if not unset:
    with torch.no_grad():
        logits = [model(input_ids=torch.tensor([ids])).logits[0].tolist() for ids in encoded]
print(json.dumps({"version": transformers.__version__, "unset": unset, "logits": logits}))
"""


@pytest.fixture(scope="module")
def original_reclaim(tmp_path_factory) -> tuple[Path, list[list[float]]]:
    """An offline cache with the reclamation detector as its author published it (`auto_map` into the code repo,
    which is cached too), and the logits of the reference built in this process."""
    tmp = tmp_path_factory.mktemp("original")
    hf_home = tmp / "hf_home"
    model = real_repos.save_new_format(tmp / "ckpt")
    install_in_offline_cache(tmp / "ckpt", "author/reclaim", cache_dir=hf_home / "hub")
    install_in_offline_cache(real_repos.NEW_IMPL, real_repos.CODE_REPO, cache_dir=hf_home / "hub")
    tokenizer = tiny.build_tokenizer()
    with torch.no_grad():
        logits = [model(**tokenizer(text, return_tensors="pt")).logits[0].tolist() for text in TEXTS]
    return hf_home, logits


def test_the_new_format_reference_loses_its_buffers_on_transformers_5_only(original_reclaim, release_python):
    hf_home, reference = original_reclaim
    ids = [tiny.build_tokenizer()(text)["input_ids"] for text in TEXTS]
    completed = run_consumer_process(["-c", _ORIGINAL_SCRIPT], hf_home, payload=ids, python=release_python)
    report = json.loads(completed.stdout.splitlines()[-1])
    if int(report["version"].split(".")[0]) >= 5:
        assert report["unset"] == ["cos_cached", "inv_freq", "position_ids", "sin_cached"], report["version"]
    else:  # transformers 4 keeps what `__init__` computed: the scores hubheads' new_gte must reproduce
        assert report["unset"] == [], report["version"]
        assert np.allclose(report["logits"], reference, atol=1e-5), report["version"]
