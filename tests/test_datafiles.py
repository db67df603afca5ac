"""One data reader for `tune` and `score`: a dev file in every format gives the same thresholds and decisions."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiny

from hubheads import export_model
from hubheads.datafiles import DATA_SUFFIXES, DataReader, read_rows
from hubheads.score import ScoreOptions, score_file
from hubheads.tune import tune_model

LANGS = ("it", "en", "es")
PREDICTED = ScoreOptions(prefix="pred_")  # the dev rows have a `label` column


def _dev_rows(count: int = 60) -> list[dict]:
    texts = tiny.sample_texts(count, seed=3)
    return [{"text": text, "label": i % 2, "lang": LANGS[i % 3]} for i, text in enumerate(texts)]


def _write(path: Path, rows: list[dict], bom: bool = False) -> Path:
    suffix = path.suffix
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=25)
        return path
    if suffix in (".csv", ".tsv"):
        with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
        return path
    text = json.dumps(rows) if suffix == ".json" else "".join(json.dumps(row) + "\n" for row in rows)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("datafiles")
    export_model(tiny.save_checkpoint(folder / "ckpt"), folder / "repo")
    return folder / "repo"


def test_tune_and_score_read_the_same_dev_file_in_every_format(repo, tmp_path):
    rows = _dev_rows()
    thresholds, decisions = {}, {}
    for suffix in DATA_SUFFIXES:
        for bom in (False, True) if suffix not in (".parquet",) else (False,):
            name = f"dev{'-bom' if bom else ''}{suffix}"
            data = _write(tmp_path / name, rows, bom=bom)
            tuned = Path(shutil.copytree(repo, tmp_path / f"repo-{name}"))
            result = tune_model(tuned, data, progress=False, bootstrap=0, folds=0)
            assert result.reports["data"]["columns"]["lang"] == "lang", f"{name}: the lang column is picked up"
            thresholds[name] = result.thresholds.to_dict()
            out = score_file(tuned, data, tmp_path / f"out-{name}.jsonl", options=PREDICTED, progress=False)
            lines = out.out.read_text(encoding="utf-8").splitlines()
            decisions[name] = [(row["pred_label"], row["pred_score"]) for row in map(json.loads, lines)]
    assert len(thresholds) == 2 * len(DATA_SUFFIXES) - 1
    reference = thresholds["dev.jsonl"]
    assert reference.get("thresholds_by_lang") is not None or reference.get("best_threshold_global") is not None
    assert all(value == reference for value in thresholds.values()), thresholds
    assert all(value == decisions["dev.jsonl"] for value in decisions.values())
    assert len(decisions["dev.jsonl"]) == len(rows)


def test_a_jsonl_column_that_first_appears_after_row_one_is_kept(repo, tmp_path):
    rows = _dev_rows(8)
    rows[5]["note"] = "late"
    data = _write(tmp_path / "posts.jsonl", rows)
    assert DataReader(data).columns == ["text", "label", "lang", "note"]
    result = score_file(repo, data, tmp_path / "out.jsonl", options=PREDICTED, progress=False)
    out = [json.loads(line) for line in result.out.read_text(encoding="utf-8").splitlines()]
    assert [row["note"] for row in out] == [None] * 5 + ["late"] + [None] * 2


def test_both_commands_name_the_line_and_byte_of_text_in_another_encoding(repo, tmp_path):
    data = tmp_path / "posts.jsonl"
    data.write_bytes('{"text": "ciao"}\n{"text": "caffè"}\n'.encode("latin-1"))
    expected = r"posts\.jsonl is not utf-8 text: line 2 has the byte b'\\xe8'.*--encoding"
    with pytest.raises(ValueError, match=expected):
        read_rows(data)
    with pytest.raises(ValueError, match=expected):
        score_file(repo, data, tmp_path / "out.jsonl", progress=False)
    assert [row["text"] for row in read_rows(data, encoding="latin-1")] == ["ciao", "caffè"]
    with pytest.raises(ValueError, match="--encoding 'klingon' is not a text encoding"):
        score_file(repo, data, tmp_path / "out.jsonl", encoding="klingon", progress=False)


def test_a_json_file_must_hold_a_list_of_objects(tmp_path):
    (tmp_path / "dev.json").write_text(json.dumps({"text": "a"}))
    with pytest.raises(ValueError, match="must hold a list of objects"):
        read_rows(tmp_path / "dev.json")
    (tmp_path / "dev.json").write_text(json.dumps([{"text": "a"}, ["b"]]))
    with pytest.raises(ValueError, match="row 2: a JSON list"):
        read_rows(tmp_path / "dev.json")
