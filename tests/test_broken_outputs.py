"""No command works on broken outputs.

Remote code with a planted fault (tests/planted_impl: NaN scores, an `IndexError` inside the model, scores that change
from one load to the next), reached the way the reclamation detectors reach theirs: config.json's `auto_map` into a
code repo in the offline cache. `tune`, `score` and `verify`'s smoke run each stop with one error that names the cause
and the transformers release, and nothing is written from the scores: no thresholds, no reports.json, no decisions
file. The commands run in fresh processes (`real_repos.run_cli`), since transformers imports the code repo's module
into its module cache under HF_HOME. A tokenizer without a vocabulary stops them too, and the fault-free twin passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny
import torch
from real_repos import run_cli

from hubheads import install_in_offline_cache

pytestmark = pytest.mark.slow  # fresh processes that import transformers, several per test

PLANTED_IMPL = Path(__file__).parent / "planted_impl"
CODE_REPO = "org/planted-code"
TEXTS = tiny.sample_texts(12, seed=3)
#: What each fault's error says (beside the transformers release, which every one names).
CAUSES = {
    "nan": "NaN or infinite",
    "index": "IndexError",
    "random": "two loads of the same files in fresh processes gave different scores",
}


def _checkpoint(folder: Path, fault: str) -> Path:
    """A classifier saved without the fault, whose config.json then selects `fault` in the code repo's code."""
    import sys

    sys.path.insert(0, str(PLANTED_IMPL.parent))
    from planted_impl.configuration import PlantedConfig
    from planted_impl.modeling import PlantedForSequenceClassification

    torch.manual_seed(0)
    PlantedForSequenceClassification(PlantedConfig(vocab_size=len(tiny.VOCAB))).save_pretrained(folder)
    tiny.build_tokenizer().save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        fault=fault,
        model_type="planted",
        auto_map={
            "AutoConfig": f"{CODE_REPO}--configuration.PlantedConfig",
            "AutoModelForSequenceClassification": f"{CODE_REPO}--modeling.PlantedForSequenceClassification",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, Path], Path]:
    """(HF_HOME with the code repo, one checkpoint per fault and a fault-free one, a labelled dev file)."""
    tmp = tmp_path_factory.mktemp("planted")
    hf_home = tmp / "hf_home"
    install_in_offline_cache(PLANTED_IMPL, CODE_REPO, cache_dir=hf_home / "hub")
    folders = {fault: _checkpoint(tmp / fault, fault) for fault in [*CAUSES, "none"]}
    data = tmp / "dev.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(TEXTS * 2)))
    return hf_home, folders, data


def _stopped(completed, fault: str) -> str:
    assert completed.returncode == 2, completed.stdout[-2000:] + completed.stderr[-2000:]
    (line,) = [line for line in completed.stderr.strip().splitlines() if "error:" in line]
    assert line.startswith("hubheads ") and CAUSES[fault] in line and "on transformers " in line, line
    return line


@pytest.mark.parametrize("fault", list(CAUSES))
def test_tune_and_score_stop_on_broken_outputs_and_write_nothing(planted, fault):
    hf_home, folders, data = planted
    folder = folders[fault]
    config_before = (folder / "config.json").read_bytes()
    tuned = run_cli(["tune", str(folder), "--data", str(data), "--trust-remote-code"], hf_home)
    line = _stopped(tuned, fault)
    assert (folder / "config.json").read_bytes() == config_before, "no threshold written"
    assert not (folder / "reports.json").exists() and not (folder / "postprocessing.json").exists()
    if fault == "index":
        assert "position_ids" in line, "the buffer that holds the fill is named"
    out = folder.parent / f"{fault}-decisions.jsonl"
    scored = run_cli(["score", str(folder), "--data", str(data), "--out", str(out), "--trust-remote-code"], hf_home)
    _stopped(scored, fault)
    assert not out.exists() and not list(folder.parent.glob(f".{out.name}*")), "no decisions written"


def test_the_fault_free_twin_is_tuned(planted):
    hf_home, folders, data = planted
    tuned = run_cli(["tune", str(folders["none"]), "--data", str(data), "--trust-remote-code"], hf_home)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    assert "best_threshold_global" in json.loads((folders["none"] / "config.json").read_text())


@pytest.mark.parametrize("fault", ["nan", "index"])
def test_verify_smoke_run_names_the_unset_buffer(planted, fault, monkeypatch):
    hf_home, folders, _ = planted
    verified = run_cli(["verify", str(folders[fault]), "--trust-remote-code", "--json"], hf_home)
    report = json.loads(verified.stdout)
    (smoke,) = [f for f in report["findings"] if f["check"] == "smoke-run"]
    buffer = {"nan": "scale", "index": "position_ids"}[fault]
    assert smoke["status"] == "fail" and buffer in smoke["message"], smoke


def test_a_folder_without_tokenizer_files_is_refused(planted, tmp_path):
    hf_home, folders, data = planted
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    model = tiny.build_model("xlm-roberta")
    model.save_pretrained(folder)
    tuned = run_cli(["tune", str(folder), "--data", str(data)], hf_home)
    assert tuned.returncode == 2 and "tokenizer without a vocabulary" in tuned.stderr, tuned.stderr[-2000:]
    assert "best_threshold_global" not in json.loads((folder / "config.json").read_text())
