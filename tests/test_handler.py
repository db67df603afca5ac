"""The Inference Endpoints handler written into every repo that declares the hubheads pipeline.

Each repo kind is exported, and in a fresh, offline process with hubheads blocked (as in an endpoint's container,
which has transformers but not hubheads), `handler.py` is loaded the way the inference toolkit loads it (the repo
folder put on `sys.path`, the file imported with `importlib.util.spec_from_file_location`, `EndpointHandler(path)`),
then called with request bodies. Its answers, round-tripped through JSON as an endpoint sends them, must equal the
stock `pipeline(..., trust_remote_code=True)` on the same inputs.
"""

import json
from pathlib import Path

import pytest
import tiny

from hubheads import export_model
from hubheads.code_scan import scan
from hubheads.offline_hub import run_consumer_process

TEXTS = tiny.sample_texts(6, seed=11)
LANGS = ["it", "en", "es", "it", "en", "it"]
BIOS = ["amico ciao", None, "hola amigo amor", "amico ciao", "", "user people"]

# Runs in the consumer's interpreter: the inference toolkit's way of loading a custom handler, then the same inputs
# through the stock pipeline for comparison.
_ENDPOINT_SCRIPT = r"""
import importlib.util, json, sys
sys.modules["hubheads"] = None  # an endpoint container has no hubheads: the repo's own files must do
cases = json.load(sys.stdin)
from transformers import pipeline
answers = []
for case in cases:
    path = case["path"]
    sys.path.insert(0, path)
    spec = importlib.util.spec_from_file_location("handler", f"{path}/handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = module
    spec.loader.exec_module(module)
    handler = module.EndpointHandler(path)
    reference = pipeline("text-classification", model=path, trust_remote_code=True)
    got, want, errors = [], [], []
    for body in case["bodies"]:
        got.append(json.loads(json.dumps(handler(body))))
        want.append(reference(body["inputs"], **(body.get("parameters") or {})))
    for body in case["bad_bodies"]:
        try:
            handler(body)
            errors.append(None)
        except ValueError as error:
            errors.append(str(error))
    if case["bad_bodies"]:  # a model whose scores come out NaN (here: NaN weights) is refused, not answered
        for parameter in handler.pipeline.model.parameters():
            parameter.data.fill_(float("nan"))
        try:
            errors.append(repr(handler(case["bodies"][0])))
        except ValueError as error:
            errors.append(str(error))
    answers.append({"got": got, "want": want, "errors": errors})
json.dump(answers, sys.stdout)
"""


def _repos(tmp_path: Path) -> dict[str, tuple[Path, list[dict]]]:
    """One exported repo per kind, with the request bodies an endpoint of that kind receives."""
    binary = tiny.build_thresholded_by_lang()
    binary.config.best_threshold_global = 0.5
    multi_label = tiny.build_multi_label()
    multi_label.config.label_thresholds = {"sarcasm": 0.3}
    kinds = {
        "per-language": (
            binary,
            [
                {"inputs": TEXTS, "parameters": {"lang": LANGS}},
                {"inputs": TEXTS[0], "parameters": {"lang": "it"}},
                {"inputs": [{"text": t, "lang": lang} for t, lang in zip(TEXTS, LANGS)]},
                {"inputs": TEXTS, "parameters": {"lang": LANGS, "threshold_mode": "default"}},
            ],
        ),
        "multi-label": (multi_label, [{"inputs": TEXTS}, {"inputs": TEXTS[:2], "parameters": {"top_k": 1}}]),
        "multi-task": (tiny.build_residual_type_fusion(), [{"inputs": TEXTS}, {"inputs": TEXTS[0]}]),
        "gated-bio": (
            tiny.build_gated_bio(),
            [
                {"inputs": TEXTS, "parameters": {"bio": BIOS}},
                {"inputs": [{"text": t, "bio": b} for t, b in zip(TEXTS, BIOS)]},
                {"inputs": {"text": TEXTS[0], "bio": BIOS[0]}},
            ],
        ),
    }
    repos = {}
    for name, (model, bodies) in kinds.items():
        folder = tmp_path / name
        export_model(model, folder, tokenizer=tiny.build_tokenizer())
        repos[name] = (folder, bodies)
    return repos


def test_every_repo_kind_ships_a_handler_that_passes_the_code_scan(tmp_path):
    for folder, _ in _repos(tmp_path).values():
        source = (folder / "handler.py").read_text()
        assert "class EndpointHandler" in source
        assert scan(source, "handler.py") == []


def test_a_plain_repo_gets_no_handler(tmp_path):
    export_model(tiny.build_model(), tmp_path / "plain", tokenizer=tiny.build_tokenizer())
    assert not (tmp_path / "plain" / "handler.py").exists()  # the default endpoint already runs the stock task


def test_the_endpoint_answers_with_the_pipelines_decisions(tmp_path, consumer_python):
    repos = _repos(tmp_path)
    bad_bodies = [{"text": "no inputs key"}, {"inputs": "x", "parameters": {"temperature": 1}}]
    cases = [
        {"path": str(folder), "bodies": bodies, "bad_bodies": bad_bodies if name == "per-language" else []}
        for name, (folder, bodies) in repos.items()
    ]
    completed = run_consumer_process(
        ["-c", _ENDPOINT_SCRIPT], tmp_path / "hf_home", payload=cases, python=consumer_python
    )
    answers = dict(zip(repos, json.loads(completed.stdout)))
    for name, answer in answers.items():
        assert answer["got"] == answer["want"], name
    per_language = answers["per-language"]["got"][0]
    assert {r["threshold"] for r in per_language} == {0.4, 0.5}, "the per-language thresholds decide"
    assert all("tasks" in r for r in answers["multi-task"]["got"][0]), "every head is answered"
    assert answers["gated-bio"]["got"][0] == answers["gated-bio"]["got"][1], "bios as a parameter or in the inputs"
    no_inputs, unknown, non_finite = answers["per-language"]["errors"]
    assert "NaN or infinite scores" in non_finite and "hubheads verify" in non_finite
    assert no_inputs is not None and '"inputs"' in no_inputs
    assert unknown is not None and "temperature" in unknown and "threshold_mode" in unknown


@pytest.mark.parametrize("repo_kind", ["per-language"])
def test_card_adds_the_handler_to_a_repo_exported_before_it(tmp_path, repo_kind):
    from hubheads.card import write_card

    folder, _ = _repos(tmp_path)[repo_kind]
    (folder / "handler.py").unlink()
    write_card(folder)
    assert (folder / "handler.py").read_bytes() == (
        Path(tiny.__file__).parents[1] / "modeling/handler.py"
    ).read_bytes()
    assert "Inference Endpoint" in (folder / "README.md").read_text()
