"""The leaf modules the commands share: one atomic write, one model kind, one owner of reports.json."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import tiny
from huggingface_hub import ModelCard

from hubheads import export_model
from hubheads.atomic import replacing_folder, write_atomically
from hubheads.card import render_card
from hubheads.reports import KINDS, model_kind, read_reports
from hubheads.resolve import resolve_checkpoint


def test_write_atomically_takes_bytes_text_or_a_writer_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "file.bin"
    write_atomically(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"
    write_atomically(path, "texte accentué")
    assert path.read_text("utf-8") == "texte accentué"
    write_atomically(path, lambda temporary: temporary.write_text("from a writer", "utf-8"))
    assert path.read_text("utf-8") == "from a writer"

    def failing(temporary: Path) -> None:
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, failing)
    assert path.read_text("utf-8") == "from a writer", "a failed write must leave the previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"], "no temporary file may be left behind"


@pytest.mark.parametrize(
    "config, kind",
    [
        ({"num_labels": 2}, "binary"),
        ({"id2label": {"0": "a", "1": "b", "2": "c"}}, "multi_class"),
        ({"id2label": {"0": "a", "1": "b", "2": "c"}, "problem_type": "multi_label_classification"}, "multi_label"),
        ({"model_type": "residual_type_fusion", "id2label": {"0": "no", "1": "yes"}}, "multi_task"),
    ],
)
def test_model_kind_has_one_name_per_kind(config, kind):
    assert model_kind(config) == kind and kind in KINDS


def test_an_untuned_binary_card_names_its_kind_as_tune_does(tmp_path):
    # The card used to call an untuned two-class model "single-label" while tune's reports.json called it "binary".
    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    data = ModelCard(str(render_card(tmp_path / "repo"))).data
    assert "binary" in data.tags and "single-label" not in data.tags


def test_read_reports_refuses_a_kind_this_version_does_not_know(tmp_path):
    (tmp_path / "reports.json").write_text(json.dumps({"kind": "single_label", "metric": "macro_f1"}))
    with pytest.raises(ValueError, match="the kind 'single_label'") as info:
        read_reports(tmp_path)
    assert "hubheads tune" in str(info.value) and "['data']['rows']" in str(info.value)
    assert read_reports(tmp_path / "missing") == {}


def test_replacing_folder_swaps_whole_or_leaves_the_previous_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with replacing_folder(out) as staging:
            (staging / "new.txt").write_text("half")
            raise KeyboardInterrupt
    assert [p.name for p in out.iterdir()] == ["old.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with replacing_folder(out) as staging:
        (staging / "new.txt").write_text("new")
        (staging / "new.txt").chmod(0o600)  # as save_pretrained may leave weights
    umask = os.umask(0)
    os.umask(umask)
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert stat.S_IMODE((out / "new.txt").stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging or backup folder is left"


def test_one_resolver_for_every_command_accepts_canonical_ids_and_raises_both_error_families(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from hubheads import install_in_offline_cache
    from hubheads.errors import HubheadsError
    from hubheads.verify import verify_repo

    for bad in ("no such folder!", "org/absent"):
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        with pytest.raises(FileNotFoundError) as info:
            resolve_checkpoint(bad)
        assert isinstance(info.value, ValueError) and isinstance(info.value, HubheadsError)
    # verify validated repo ids its own way and refused a canonical id (no org), which export and score accept.
    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer(), threshold=0.6)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    install_in_offline_cache(tmp_path / "repo", "tiny-canonical", cache_dir=tmp_path / "hub")
    assert resolve_checkpoint("tiny-canonical").is_dir()
    report = verify_repo("tiny-canonical", smoke=False)
    assert report.ok, report.format()


def test_tune_computes_every_f1_with_one_implementation_that_matches_scikit_learn():
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from hubheads.tune import Estimates, _head_report, _multi_label_reports

    rng = np.random.default_rng(3)
    scores, gold = rng.random((120, 3)), (rng.random((120, 3)) < 0.4).astype(int)
    _, reports = _multi_label_reports(scores, gold, ["a", "b", "c"], "f1", 0.5, Estimates(bootstrap=0, folds=0))
    predicted = (scores >= 0.5).astype(int)
    metrics = reports["rules"]["default"]["metrics"]
    for average in ("micro", "macro", "samples"):
        expected = f1_score(gold, predicted, average=average, zero_division=0)
        assert metrics[f"{average}_f1"] == pytest.approx(expected, abs=1e-12)
    assert metrics["subset_accuracy"] == pytest.approx(accuracy_score(gold, predicted), abs=1e-12)
    classes, guesses = rng.integers(0, 4, 90), rng.integers(0, 4, 90)
    head = _head_report(classes, guesses, ["w", "x", "y", "z"], Estimates(bootstrap=0, folds=0))
    expected = f1_score(classes, guesses, average="macro", labels=range(4), zero_division=0)
    assert head["metrics"]["macro_f1"] == pytest.approx(expected, abs=1e-12)
    assert head["metrics"]["accuracy"] == pytest.approx(accuracy_score(classes, guesses), abs=1e-12)


def test_export_and_load_encoder_refuse_a_pickle_only_checkpoint_with_one_message(tmp_path):
    from hubheads.errors import InvalidInputError
    from hubheads.sources import load_encoder

    folder = tiny.save_checkpoint(tmp_path / "ckpt")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")  # never read: both refuse it first
    (folder / "training_args.bin").write_bytes(b"\x80\x04")  # the trainer's arguments, not weights
    with pytest.raises(InvalidInputError) as exported:
        export_model(folder, tmp_path / "repo")
    with pytest.raises(InvalidInputError) as encoder:
        load_encoder(folder)
    said = "has only pickle weights (pytorch_model.bin), and loading a pickle can run code. Either load a revision"
    assert said in str(exported.value) and said in str(encoder.value)
    assert "refs/pr/N" in str(exported.value) and "refs/pr/N" in str(encoder.value)
    assert "save_pretrained('" in str(exported.value) and "allow_pickle" not in str(exported.value), "no consent"
    assert "allow_pickle=True (--allow-pickle)" in str(encoder.value)
    (folder / "pytorch_model.bin").unlink()
    for refused in (lambda: export_model(folder, tmp_path / "repo"), lambda: load_encoder(folder)):
        with pytest.raises(InvalidInputError, match=r"holds no \*\.safetensors weights; save the model"):
            refused()
    assert not (tmp_path / "repo").exists()
