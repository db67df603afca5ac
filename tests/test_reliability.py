"""Bad input, odd input, broken configs and properties: every failure is a documented error naming the problem.

Each table row is one case; README's "Reliability" section lists what the tables cover.
"""

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tiny
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification

from hubheads import HubheadsTextClassificationPipeline, export_model, install_in_offline_cache
from hubheads_cli import main

OUR_FILES = {"pipeline_hubheads.py", "configuration_hubheads.py", "configuration_gated_bio.py", "export.py"}


MODELS = {
    "binary": tiny.build_thresholded_by_lang,
    "multi-label": tiny.build_multi_label,
    "multi-task": tiny.build_residual_type_fusion,
    "gated-bio": lambda: tiny.build_gated_bio(use_lang_token=True, languages=["it"], text_normalize=True),
}
_PIPELINES: dict = {}


def _pipeline(kind):
    if kind not in _PIPELINES:
        _PIPELINES[kind] = HubheadsTextClassificationPipeline(model=MODELS[kind](), tokenizer=tiny.build_tokenizer())
    return _PIPELINES[kind]


BAD_CALLS = [
    # (id, inputs, kwargs, error, message fragment)
    ("None", None, {}, TypeError, "Inputs must be"),
    ("number", 42, {}, TypeError, "Inputs must be"),
    ("bytes", b"ciao", {}, TypeError, "Inputs must be"),
    ("bytes-in-list", ["ok", b"ciao"], {}, TypeError, "got bytes"),
    ("None-in-list", ["ok", None], {}, TypeError, "got NoneType"),
    ("nested-list", [["a", "b"]], {}, TypeError, "text_pair"),
    ("dict-without-text", {"txt": "a"}, {}, ValueError, "'text' key"),
    ("dict-unknown-key", {"text": "a", "language": "it"}, {}, ValueError, "'text' key"),
    ("dict-text-number", {"text": 5}, {}, TypeError, "'text' of a dict input"),
    ("dict-pair-number", {"text": "a", "text_pair": 3}, {}, TypeError, "'text_pair'"),
    ("dict-lang-number", {"text": "a", "lang": 3}, {}, TypeError, "'lang'"),
    ("lang-list-too-short", ["a", "b", "c"], {"lang": ["it"]}, ValueError, "`lang` has 1 entries but 3 inputs"),
    ("lang-list-for-one-input", "a", {"lang": ["it"]}, ValueError, "single input"),
    ("lang-number", "a", {"lang": 3}, TypeError, "`lang` must be"),
    ("bio-list-too-long", ["a"], {"bio": ["x", "y"]}, ValueError, "`bio` has 2 entries but 1 inputs"),
    ("lang-list-with-generator", (t for t in ["a"]), {"lang": ["it"]}, ValueError, "generator"),
    ("threshold-above-1", "a", {"threshold": 1.5}, ValueError, "`threshold`"),
    ("threshold-negative", "a", {"threshold": -0.1}, ValueError, "`threshold`"),
    ("threshold-nan", "a", {"threshold": math.nan}, ValueError, "`threshold`"),
    ("threshold-string", "a", {"threshold": "0.5"}, ValueError, "`threshold`"),
    ("threshold-bool", "a", {"threshold": True}, ValueError, "`threshold`"),
    ("unknown-threshold-mode", "a", {"threshold_mode": "best"}, ValueError, "threshold_mode"),
    ("top_k-negative", ["a", "b"], {"top_k": -1}, ValueError, "`top_k` must be a positive integer"),
    ("top_k-string", "a", {"top_k": "2"}, ValueError, "`top_k` must be a positive integer"),
    ("batch_size-string", ["a", "b"], {"batch_size": "4"}, ValueError, "`batch_size` must be a positive integer"),
    ("batch_size-zero", ["a", "b"], {"batch_size": 0}, ValueError, "`batch_size` must be a positive integer"),
    ("lone-surrogate", "ciao \ud800", {}, ValueError, "lone surrogate .* errors='replace'"),
    ("lone-surrogate-in-list", ["ok", "x\udc80y"], {}, ValueError, "lone surrogate"),
    ("lone-surrogate-in-lang", "a", {"lang": "i\udfff"}, ValueError, "The lang .* lone surrogate"),
]


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("inputs, kwargs, error, match", [row[1:] for row in BAD_CALLS], ids=[r[0] for r in BAD_CALLS])
def test_bad_calls_get_a_clear_error_from_our_code(kind, inputs, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        _pipeline(kind)(inputs, **kwargs)
    assert Path(str(info.traceback[-1].path)).name in OUR_FILES, "the error must not come from deep inside a library"


@pytest.mark.parametrize(
    "kind, inputs, kwargs, error, match",
    [
        ("binary", "a", {"bio": "a bio"}, ValueError, "reads no author bio"),
        ("multi-label", {"text": "a", "bio": "x"}, {}, ValueError, "reads no author bio"),
        ("gated-bio", {"text": "a", "bio": 7}, {}, TypeError, "'bio' of a dict input"),
        ("gated-bio", "a", {"bio": 7}, TypeError, "bio must be a string"),
        ("binary", "a", {"threshold_mode": "by_lang"}, ValueError, "needs a language"),
        ("multi-task", "a", {"threshold_mode": "global"}, ValueError, "best_threshold_global"),
    ],
)
def test_model_specific_bad_calls(kind, inputs, kwargs, error, match):
    with pytest.raises(error, match=match):
        _pipeline(kind)(inputs, **kwargs)


ODD_TEXTS = [
    "",
    "   \n\t ",
    "hello " * 10_000,  # 60,000 characters: truncated to the model's length
    "🔥🔥 ciao 😂👍🏽",
    "مرحبا بالعالم",
    "שלום עולם",
    "a\x00b\x1b[31mred\x07\u200b\ufeff\u202etxet",
    "@user https://example.com/x?y=1   ＦＵＬＬ",
]


@pytest.mark.parametrize("kind", list(MODELS))
def test_odd_but_valid_inputs_work(kind):
    clf = _pipeline(kind)
    langs = ["it", None, "xx", "en", "ar", "he", None, "it"]
    kwargs = {"bio": ["", None, "hello " * 10_000, "🔥", "   ", "\x00", "bio", None]} if kind == "gated-bio" else {}
    results = clf(ODD_TEXTS, lang=langs, batch_size=3, **kwargs)
    assert len(results) == len(ODD_TEXTS)
    for result in results:
        items = result if kind == "multi-label" else [result]
        assert all(0.0 <= item["score"] <= 1.0 and isinstance(item["label"], str) for item in items)


def _model_call(kind, **changes):
    model = tiny.build_gated_bio() if kind == "gated-bio" else tiny.build_residual_type_fusion()
    encoded = tiny.build_tokenizer()(["hello world", "ciao", "hola amigo"], return_tensors="pt", padding=True)
    inputs = {**encoded, **changes}
    return lambda: model(**{k: v for k, v in inputs.items() if v is not None})


BAD_MODEL_CALLS = [
    # (id, model kind, changed forward arguments, message fragment)
    ("bio-batch", "gated-bio", {"bio_input_ids": torch.ones(2, 4, dtype=torch.long)}, "`bio_input_ids` must have"),
    ("bio-1d", "gated-bio", {"bio_input_ids": torch.ones(3, dtype=torch.long)}, "`bio_input_ids` must have"),
    (
        "bio-mask-shape",
        "gated-bio",
        {"bio_input_ids": torch.ones(3, 4, dtype=torch.long), "bio_attention_mask": torch.ones(3, 5)},
        "`bio_attention_mask`",
    ),
    ("labels-rows", "gated-bio", {"labels": torch.tensor([0, 1])}, "`labels` has 2 rows"),
    ("trust-labels-rows", "multi-task", {"labels": torch.tensor([1])}, "`labels` has 1 rows"),
    ("type-labels-rows", "multi-task", {"type_labels": torch.tensor([0, 1, 2, 0])}, "`type_labels` has 4 rows"),
    ("no-input", "multi-task", {"input_ids": None, "attention_mask": None}, "input_ids"),
]


@pytest.mark.parametrize("kind, changes, match", [r[1:] for r in BAD_MODEL_CALLS], ids=[r[0] for r in BAD_MODEL_CALLS])
def test_bad_model_calls_name_the_argument(kind, changes, match):
    with pytest.raises(ValueError, match=match):
        _model_call(kind, **changes)()


BROKEN_CONFIGS = [
    # (id, config.json changes, the key the error must name)
    ("threshold-above-1", {"best_threshold_global": 1.5}, "best_threshold_global"),
    ("threshold-nan", {"default_threshold": math.nan}, "default_threshold"),
    ("threshold-string", {"best_threshold_global": "0.7"}, "best_threshold_global"),
    ("by-lang-not-a-mapping", {"thresholds_by_lang": [["it", 0.7]]}, "thresholds_by_lang"),
    ("by-lang-value", {"thresholds_by_lang": {"it": 7}}, "thresholds_by_lang"),
    ("unknown-label", {"label_thresholds": {"sarcsm": 0.4}}, "label_thresholds"),
]

# Loads each broken repo with the stock call in one consumer process and prints the error each one raised.
LOAD_BROKEN = """
import json, sys
sys.modules["hubheads"] = None
from transformers import pipeline
errors = {}
for repo_id in json.loads(sys.argv[1]):
    try:
        pipeline("text-classification", model=repo_id, trust_remote_code=True)
        errors[repo_id] = None
    except ValueError as error:
        errors[repo_id] = str(error)
print(json.dumps(errors))
"""


def test_broken_configs_are_refused_when_the_consumer_loads_the_pipeline(tmp_path, hf_home, consumer_python):
    checkpoint = tiny.save_checkpoint(tmp_path / "ckpt", num_labels=5, id2label=dict(enumerate(tiny.MULTI_LABELS)))
    export_model(checkpoint, tmp_path / "good", multi_label=True, label_thresholds={"sarcasm": 0.4})
    repo_ids = []
    for case, changes, _ in BROKEN_CONFIGS:
        folder = tmp_path / case
        export_model(checkpoint, folder, multi_label=True)
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))  # NaN is written as the JSON extension NaN
        install_in_offline_cache(folder, f"org/{case}", cache_dir=hf_home / "hub")
        repo_ids.append(f"org/{case}")
    install_in_offline_cache(tmp_path / "good", "org/good", cache_dir=hf_home / "hub")
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    command = [consumer_python, "-c", LOAD_BROKEN, json.dumps(repo_ids + ["org/good"])]
    errors = json.loads(subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout)
    assert errors.pop("org/good") is None
    for (case, _, key), repo_id in zip(BROKEN_CONFIGS, repo_ids):
        assert errors[repo_id] is not None and key in errors[repo_id], case


@pytest.mark.parametrize("case, changes, key", [r for r in BROKEN_CONFIGS if r[0] != "unknown-label"])
def test_broken_configs_of_our_architectures_are_refused_when_the_model_loads(tmp_path, case, changes, key):
    tiny.build_residual_type_fusion().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(changes)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=key):
        AutoModelForSequenceClassification.from_pretrained(tmp_path)


def _cli_cases(tmp_path: Path) -> list:
    checkpoint = tiny.save_checkpoint(tmp_path / "ckpt")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((checkpoint / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    bad_json = tmp_path / "bad-json"
    bad_json.mkdir()
    (bad_json / "config.json").write_text("{oops")
    (bad_json / "model.safetensors").write_bytes(b"")
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    names_as_ids = Path(shutil.copytree(checkpoint, tmp_path / "names-as-ids"))
    config = json.loads((names_as_ids / "config.json").read_text())
    config["id2label"] = {"neg": "negative", "pos": "positive"}
    (names_as_ids / "config.json").write_text(json.dumps(config))
    repo = tmp_path / "repo"
    export_model(checkpoint, repo)
    latin1 = tmp_path / "dev-latin1.csv"
    latin1.write_bytes("text,label\ncaffè buono,1\nperché no,0\n".encode("latin-1"))
    partial = Path(shutil.copytree(repo, tmp_path / "partial"))
    (partial / "reports.json").write_text(json.dumps({"kind": "single_label", "metric": "macro_f1"}))
    cut = Path(shutil.copytree(repo, tmp_path / "cut"))
    (cut / "reports.json").write_text('{"kind": "single_label", "metr')
    ck, out = str(checkpoint), str(tmp_path / "out")
    return [
        ("id2label-names-as-keys", ["export", str(names_as_ids), out], "`id2label` in config.json has the key 'neg'"),
        (
            "tune-latin-1",
            ["tune", str(repo), "--data", str(latin1)],
            "is not utf-8 text: line 2 has the byte b'\\xe8'",
        ),
        ("tune-unknown-encoding", ["tune", str(repo), "--data", str(latin1), "--encoding", "klingon"], "not a text"),
        ("card-partial-reports", ["card", str(partial)], "lacks ['data']['rows'], ['data']['file']"),
        ("card-cut-reports", ["card", str(cut)], "not valid JSON"),
        ("missing-src", ["export", str(tmp_path / "nope"), out], "not a folder"),
        ("src-is-a-file", ["export", str(a_file), out], "not a folder"),
        ("src-without-config", ["export", str(tmp_path / "full"), out], "no config.json"),
        ("config-not-json", ["export", str(bad_json), out], "not valid JSON"),
        ("pickle-only", ["export", str(pickled), out], "pickle weights"),
        ("out-is-a-file", ["export", ck, str(a_file)], "not a folder"),
        ("out-not-empty", ["export", ck, str(full)], "--force"),
        ("threshold-out-of-range", ["export", ck, out, "--threshold", "2"], "best_threshold_global"),
        ("label-threshold-single-label", ["export", ck, out, "--label-threshold", "LABEL_0=0.3"], "multi-label"),
        ("bad-lang-threshold", ["export", ck, out, "--lang-threshold", "it:0.7"], "NAME=VALUE"),
        ("demo-negative-budget", ["demo", "--out", out, "--train-steps", "-1"], "train-steps"),
        ("demo-out-not-empty", ["demo", "--out", str(full)], "--force"),
    ]


def test_every_cli_failure_is_one_line_with_a_non_zero_exit(tmp_path, capsys):
    for case, argv, fragment in _cli_cases(tmp_path):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        err = capsys.readouterr().err.strip()
        assert code == 2, case
        message = err.splitlines()[-1]
        assert fragment in message and "Traceback" not in err, (case, err)
        assert "--encoding" in message or not case.startswith("tune-latin"), "the fix is named"
        assert "hubheads tune" in message or not case.startswith("card-"), "the command that writes it is named"
        assert len([line for line in err.splitlines() if "error" in line]) == 1, (case, err)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine" and not (tmp_path / "out").exists()


# Properties over generated inputs and thresholds.
texts = st.lists(st.text(max_size=200), min_size=1, max_size=6)
thresholds = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=texts, low=thresholds, high=thresholds, lang=st.sampled_from([None, "it", "en", "zz"]))
def test_decisions_are_monotone_in_the_threshold(batch, low, high, lang):
    low, high = min(low, high), max(low, high)
    clf = _pipeline("binary")
    positive = [[r["label"] == "LABEL_1" for r in clf(batch, lang=lang, threshold=t)] for t in (low, high)]
    assert all(at_low or not at_high for at_low, at_high in zip(*positive)), "raising the threshold added a positive"
    sets = [clf_set for clf_set in (_pipeline("multi-label")(batch, threshold=t) for t in (low, high))]
    assert all({r["label"] for r in h} <= {r["label"] for r in lo} for lo, h in zip(*sets))


@settings(max_examples=25, deadline=None)
@given(value=st.one_of(st.floats().filter(lambda x: not 0 <= x <= 1), st.text(), st.booleans(), st.none()))
def test_any_invalid_threshold_is_a_value_error_naming_it(value):
    if value is None:
        assert _pipeline("binary")("a", threshold=value)  # None means "no override"
        return
    with pytest.raises(ValueError, match="`threshold`"):
        _pipeline("binary")("a", threshold=value)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=texts, bios=st.lists(st.one_of(st.none(), st.text(max_size=80)), min_size=6, max_size=6))
def test_the_gated_bio_pipeline_never_crashes_and_a_blank_bio_is_no_bio(batch, bios):
    clf = _pipeline("gated-bio")
    bios = bios[: len(batch)]
    results = clf(batch, bio=bios)
    blanked = clf(batch, bio=[None if (b or "").strip() == "" else b for b in bios])
    assert [r["label"] for r in results] == [r["label"] for r in blanked]


def test_non_string_threshold_keys_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"`thresholds_by_lang` keys must be non-empty strings, got 1"):
        export_model(tiny.build_model(), tmp_path / "out", tokenizer=tiny.build_tokenizer(), lang_thresholds={1: 0.7})
    with pytest.raises(ValueError, match=r"`label_thresholds` keys must be non-empty strings"):
        export_model(
            tiny.build_multi_label(),
            tmp_path / "out",
            tokenizer=tiny.build_tokenizer(),
            multi_label=True,
            label_thresholds={3: 0.4},
        )
    assert sorted(path.name for path in tmp_path.iterdir()) == [], "nothing written, nothing left behind"


def _dev_rows() -> list[dict]:
    texts = tiny.sample_texts(40, seed=9)
    return [{"text": f"{text} caffè", "label": i % 2, "lang": "it"} for i, text in enumerate(texts)]


def _write_csv(path: Path, rows: list[dict], encoding: str) -> Path:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_latin_1_dev_set_tunes_like_its_utf_8_copy_with_encoding(tmp_path):
    from hubheads.tune import tune_model

    rows = _dev_rows()
    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    utf8 = tune_model(tmp_path / "repo", _write_csv(tmp_path / "dev.csv", rows, "utf-8"), progress=False)
    latin1 = _write_csv(tmp_path / "dev-latin1.csv", rows, "latin-1")
    with pytest.raises(ValueError, match=r"dev-latin1\.csv is not utf-8 text.*--encoding"):
        tune_model(tmp_path / "repo", latin1, force=True, progress=False)
    again = tune_model(tmp_path / "repo", latin1, force=True, progress=False, encoding="latin-1")
    assert again.thresholds == utf8.thresholds
    assert again.reports["rules"] == utf8.reports["rules"]


def test_card_names_every_key_a_partial_reports_json_lacks(tmp_path):
    from hubheads.card import render_card
    from hubheads.tune import tune_model

    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    tune_model(tmp_path / "repo", _write_csv(tmp_path / "dev.csv", _dev_rows(), "utf-8"), progress=False)
    complete = json.loads((tmp_path / "repo" / "reports.json").read_text())
    render_card(tmp_path / "repo")  # the complete file renders
    cases = {key: {k: v for k, v in complete.items() if k != key} for key in ("metric", "data", "rules", "grid")}
    cases["rules.default.metrics"] = {**complete, "rules": {**complete["rules"], "default": {}}}
    expected = {
        "metric": "['metric']",
        "data": "['data']['rows']",
        "rules": "['rules']['default']",
        "grid": None,  # optional: the card leaves its sentence out
        "rules.default.metrics": "['rules']['default']['metrics']",
    }
    for case, reports in cases.items():
        (tmp_path / "repo" / "reports.json").write_text(json.dumps(reports))
        if expected[case] is None:
            render_card(tmp_path / "repo")
            continue
        with pytest.raises(ValueError, match="hubheads tune") as info:
            render_card(tmp_path / "repo")
        assert expected[case] in str(info.value), (case, str(info.value))
