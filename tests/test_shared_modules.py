"""The leaf modules the commands share: one atomic write, one model kind, one owner of reports.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny
from huggingface_hub import ModelCard

from hubheads import export_model
from hubheads.atomic import write_atomically
from hubheads.card import render_card
from hubheads.reports import KINDS, model_kind, read_reports


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
