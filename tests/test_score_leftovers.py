"""`score`'s leftovers: a run killed while it finishes resumes; the Ray scorer keeps the rows it skips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
import tiny

from hubheads import export_model
from hubheads.score import ScoreOptions, errors_path, partial_folder, score_file


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("leftovers") / "repo"
    export_model(tiny.build_thresholded_by_lang(), folder, tokenizer=tiny.build_tokenizer())
    return folder


def _posts(path: Path, count: int = 30) -> Path:
    rows = [{"id": i, "text": text, "lang": "it"} for i, text in enumerate(tiny.sample_texts(count, seed=9))]
    rows[4]["text"] = None  # a bad row, for the errors file
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_run_killed_between_the_renames_of_its_finish_resumes(repo, tmp_path, monkeypatch):
    data, out = _posts(tmp_path / "posts.jsonl"), tmp_path / "out.jsonl"
    options = {"options": ScoreOptions(keep=("id",)), "chunk_size": 10, "on_error": "skip", "progress": False}
    reference = score_file(repo, data, tmp_path / "reference.jsonl", **options)
    real_replace = os.replace

    def dies_before_out(source, target):
        if Path(target) == out:
            raise KeyboardInterrupt  # the process dies after the errors file moved in, before OUT did
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", dies_before_out)
    with pytest.raises(KeyboardInterrupt):
        score_file(repo, data, out, **options)
    monkeypatch.setattr(os, "replace", real_replace)
    assert errors_path(out).exists() and not out.exists() and partial_folder(out).is_dir()
    result = score_file(repo, data, out, resume=True, **options)  # refused before: "pass --force" (a restart)
    assert result.rows == reference.rows and result.skipped == reference.skipped == 1
    assert out.read_text("utf-8") == reference.out.read_text("utf-8")
    assert errors_path(out).read_text("utf-8") == errors_path(reference.out).read_text("utf-8")
    assert not partial_folder(out).exists()


def test_the_ray_scorer_writes_the_rows_it_skips_to_a_side_folder(repo, tmp_path):
    pytest.importorskip("ray")
    from hubheads.ray import Scorer

    batch = pa.table({"id": [1, 2, 3], "text": ["ciao amico", None, "hola"], "lang": ["it", "it", "es"]})
    scorer = Scorer(str(repo), keep=["id"], on_error="skip", errors_dir=str(tmp_path / "errors"))
    assert scorer(batch).column("id").to_pylist() == [1, 3]
    files = list((tmp_path / "errors").glob("errors-*.jsonl"))
    assert len(files) == 1
    assert [json.loads(line) for line in files[0].read_text("utf-8").splitlines()] == [
        {"row": 2, "error": "the text ('text') is missing", "id": 2}
    ]
    with pytest.raises(ValueError, match="errors_dir holds the rows on_error='skip' leaves out"):
        Scorer(str(repo), errors_dir=str(tmp_path / "errors"))
