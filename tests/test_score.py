"""`hubheads score`: the pipeline's decisions over files, streamed, resumable, with bad rows named.

Every decision is compared with the in-memory pipeline on the same rows; the resume test kills a real `hubheads score`
process half-way (SIGKILL) and checks that the resumed output equals an uninterrupted run row for row.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiny
from real_repos import cli, run_cli

from hubheads import export_model, install_in_offline_cache
from hubheads.score import ScoreOptions, errors_path, load_pipeline, partial_folder, score_file

LANGS = ["it", "en", "es"]


def _rows(count: int, seed: int = 0, bios: bool = False) -> list[dict]:
    texts = tiny.sample_texts(count, seed=seed)
    long = tiny.sample_texts(count // 10 + 1, seed=seed + 1, min_words=80, max_words=90)  # past the positions
    rows = []
    for i, text in enumerate(texts):
        row = {"id": i, "text": long[i // 10] if i % 10 == 3 else text, "lang": LANGS[i % 3]}
        if bios:
            row["bio"] = [None, "amico ciao", "hola amigo", ""][i % 4]
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=max(len(rows) // 4, 1))
    elif path.suffix in (".csv", ".tsv"):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


KINDS = {
    "per-language": tiny.build_thresholded_by_lang,
    "multi-label": tiny.build_multi_label,
    "multi-task": tiny.build_residual_type_fusion,
    "gated-bio": tiny.build_gated_bio,
    "plain": tiny.build_model,
}


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("repos")
    for name, build in KINDS.items():
        export_model(build(), tmp / name, tokenizer=tiny.build_tokenizer())
    return {name: tmp / name for name in KINDS}


def _pipeline_decisions(repo: Path, rows: list[dict]) -> list:
    """The in-memory pipeline on the same rows: the reference every score output must equal."""
    classifier = load_pipeline(repo)
    arguments = {"bio": [row["bio"] for row in rows]} if classifier.reads_bio else {}
    return classifier([row["text"] for row in rows], lang=[row["lang"] for row in rows], batch_size=8, **arguments)


@pytest.mark.parametrize("kind", KINDS)
def test_decisions_equal_the_in_memory_pipeline_for_every_repo_kind(repos, tmp_path, kind):
    rows = _rows(120, bios=True)  # a bio column: read by the bio model, left alone (and kept) by the others
    data = _write(tmp_path / "posts.jsonl", rows)
    # --out in a folder that does not exist yet: score makes it.
    result = score_file(repos[kind], data, tmp_path / "new" / "out.jsonl", batch_size=8, chunk_size=50, progress=False)
    out = _read(result.out)
    assert result.rows == len(out) == len(rows)
    assert [row["id"] for row in out] == list(range(len(rows))), "one output row per input row, in order"
    expected = _pipeline_decisions(repos[kind], rows)
    for got, want in zip(out, expected):
        if kind == "multi-label":
            assert got["labels"] == [entry["label"] for entry in want]
            assert got["scores"] == pytest.approx([entry["score"] for entry in want], abs=1e-6)
            continue
        assert got["label"] == want["label"] and got["score"] == pytest.approx(want["score"], abs=1e-6)
        assert got.get("threshold") == want.get("threshold")
        for task, head in (want.get("tasks") or {}).items():
            assert got[f"{task}_label"] == head["label"]
            assert got[f"{task}_score"] == pytest.approx(head["score"], abs=1e-6)
    columns = list(out[0])
    assert columns[: len(rows[0])] == list(rows[0]), "the input columns come first, as they were"
    if kind == "per-language":
        assert {row["threshold"] for row in out} == {0.4, 0.6}, "the per-language thresholds decide"
    if kind == "multi-task":
        assert {"trust_label", "trust_score", "type_label", "type_score"} <= set(columns)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_every_input_format_gives_the_same_decisions(repos, tmp_path, suffix):
    rows = _rows(60)
    reference = score_file(
        repos["per-language"], _write(tmp_path / "posts.jsonl", rows), tmp_path / "ref.jsonl", progress=False
    )
    data = _write(tmp_path / f"posts{suffix}", rows)
    result = score_file(
        repos["per-language"],
        data,
        tmp_path / "out.parquet",
        options=ScoreOptions(keep=("id",), prefix="pred_"),
        progress=False,
    )
    table = pq.read_table(result.out)
    assert table.column_names == ["id", "pred_label", "pred_score", "pred_threshold"]
    assert table.schema.field("pred_score").type == pa.float64()
    if suffix == ".parquet":
        assert table.schema.field("id").type == pa.int64(), "kept columns keep their parquet types"
    decisions = [(r["label"], r["threshold"]) for r in _read(reference.out)]
    assert [(r["pred_label"], r["pred_threshold"]) for r in table.to_pylist()] == decisions


def test_multi_label_sets_are_list_columns_in_parquet(repos, tmp_path):
    data = _write(tmp_path / "posts.parquet", _rows(40))
    result = score_file(repos["multi-label"], data, tmp_path / "out.parquet", chunk_size=7, progress=False)
    table = pq.read_table(result.out)
    assert table.schema.field("labels").type == pa.list_(pa.string())
    assert table.schema.field("scores").type == pa.list_(pa.float64())
    assert all(table.column("labels").to_pylist())
    # No label passes 1.0: every set is empty, and the columns keep their list types all the same.
    none = score_file(
        repos["multi-label"], data, tmp_path / "none.parquet", options=ScoreOptions(threshold=1.0), progress=False
    )
    table = pq.read_table(none.out)
    assert table.column("labels").to_pylist() == [[]] * 40
    assert table.schema.field("labels").type == pa.list_(pa.string())


def test_options_and_files_are_checked_before_any_work(repos, tmp_path):
    data = _write(tmp_path / "posts.jsonl", [{"id": 1, "text": "hello", "label": 1}])
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=r"'label'.*--prefix"):
        score_file(repos["per-language"], data, out, progress=False)  # the input's gold label clashes
    with pytest.raises(ValueError, match=r"--keep names 'idx'.*\['id', 'text', 'label'\]"):
        score_file(repos["per-language"], data, out, options=ScoreOptions(keep=("idx",)), progress=False)
    with pytest.raises(ValueError, match="--bio-column 'label': the model reads no author bio"):
        score_file(repos["per-language"], data, out, options=ScoreOptions(bio_column="label"), progress=False)
    with pytest.raises(ValueError, match="--lang-column 'language' is not a column"):
        score_file(repos["per-language"], data, out, options=ScoreOptions(lang_column="language"), progress=False)
    with pytest.raises(ValueError, match=r"--out .*\.csv: write a \.jsonl or \.parquet"):
        score_file(repos["per-language"], data, tmp_path / "out.csv", progress=False)
    out.write_text("precious\n")
    with pytest.raises(FileExistsError, match="--force"):
        score_file(repos["per-language"], data, out, options=ScoreOptions(prefix="p_"), progress=False)
    assert out.read_text() == "precious\n"
    assert not partial_folder(out).exists()


def test_a_bad_row_stops_the_run_with_its_number_or_is_skipped_with_the_reason(repos, tmp_path):
    rows = _rows(30)
    rows[4]["text"] = None
    rows[17]["text"] = 42
    rows[21]["text"] = "bad \udc80 bytes"  # a lone surrogate, from errors="surrogateescape"
    # Parquet holds neither an int in a string column nor a surrogate: "42" and a blank text there.
    texts = {17: "42", 21: "  "}
    data = _write(tmp_path / "posts.parquet", [dict(r, text=texts.get(r["id"], r["text"])) for r in rows])
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text(
        "".join(json.dumps(row) + "\n" for row in rows[:25]) + "{not json\n" + json.dumps(rows[25]) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=r"row 5: the text \('text'\) is missing.*--on-error skip"):
        score_file(repos["per-language"], jsonl, out, chunk_size=10, progress=False)
    assert not out.exists()
    result = score_file(repos["per-language"], jsonl, out, chunk_size=10, on_error="skip", progress=False, force=True)
    skipped = _read(errors_path(out))
    assert [(e["row"], e.get("id")) for e in skipped] == [(5, 4), (18, 17), (22, 21), (26, None)]
    assert "int" in skipped[1]["error"] and "surrogate" in skipped[2]["error"] and "JSON" in skipped[3]["error"]
    assert result.skipped == 4 and result.rows == 23 and result.errors == errors_path(out)
    assert [row["id"] for row in _read(out)] == [r["id"] for r in rows[:26] if r["id"] not in (4, 17, 21)]
    parquet_run = score_file(repos["per-language"], data, tmp_path / "p.jsonl", on_error="skip", progress=False)
    assert parquet_run.skipped == 2
    assert [e["error"] for e in _read(errors_path(tmp_path / "p.jsonl"))] == [
        "the text ('text') is missing",
        "the text ('text') is empty",
    ]


def test_resume_refuses_another_model_data_or_option_and_force_starts_over(repos, tmp_path):
    data = _write(tmp_path / "posts.jsonl", _rows(50))
    out = tmp_path / "out.jsonl"
    bad = _write(tmp_path / "bad.jsonl", [*_rows(20), {"id": 99, "text": None}, *_rows(20, seed=3)])
    with pytest.raises(ValueError, match="row 21"):
        score_file(repos["per-language"], bad, out, chunk_size=10, progress=False)
    assert len(list(partial_folder(out).glob("rows-*"))) == 2, "the chunks before the bad row are kept"
    with pytest.raises(FileExistsError, match="20 rows done.*--resume"):
        score_file(repos["per-language"], bad, out, chunk_size=10, progress=False)
    with pytest.raises(ValueError, match="another model[.] "):
        score_file(repos["multi-label"], bad, out, chunk_size=10, resume=True, progress=False)
    with pytest.raises(ValueError, match=r"another options \(threshold_mode=None then, 'default' now\)"):
        score_file(
            repos["per-language"],
            bad,
            out,
            options=ScoreOptions(threshold_mode="default"),
            resume=True,
            progress=False,
        )
    with pytest.raises(ValueError, match="another data file[.] "):
        score_file(repos["per-language"], data, out, chunk_size=10, resume=True, progress=False)
    # The run stopped at the bad row: resuming with on_error="skip" keeps the 20 rows done and goes on.
    result = score_file(repos["per-language"], bad, out, chunk_size=10, resume=True, on_error="skip", progress=False)
    assert (result.resumed_at, result.rows, result.skipped) == (20, 40, 1)
    assert not partial_folder(out).exists()
    with pytest.raises(FileNotFoundError, match="no unfinished run"):
        score_file(repos["per-language"], data, tmp_path / "new.jsonl", resume=True, progress=False)


def test_a_killed_run_resumes_to_the_uninterrupted_output_row_for_row(repos, tmp_path):
    data = _write(tmp_path / "posts.parquet", _rows(12000, seed=5))
    args = ["--data", str(data), "--chunk-size", "400", "--keep", "id,lang", "--batch-size", "16", "--no-progress"]
    reference = score_file(
        repos["per-language"],
        data,
        tmp_path / "reference.parquet",
        options=ScoreOptions(keep=("id", "lang")),
        chunk_size=400,
        batch_size=16,
        progress=False,
    )
    out = tmp_path / "out.parquet"
    command = [sys.executable, "-m", "hubheads_cli", "score", str(repos["per-language"]), "--out", str(out), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = partial_folder(out)
    deadline = time.monotonic() + 300
    while len(list(partial.glob("rows-*.parquet"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed; use a bigger file"
    assert not out.exists(), "OUT appears only when the run is done"
    finished = len(list(partial.glob("rows-*.parquet")))  # a half-written chunk is a .tmp file
    assert 3 <= finished < 30
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed after {finished * 400:,}" in resumed.stdout
    assert pq.read_table(out).to_pylist() == pq.read_table(reference.out).to_pylist()
    assert not partial.exists()


def test_the_command_line(repos, tmp_path):
    data = _write(tmp_path / "posts.csv", _rows(20))
    code, stdout, _ = cli(["score", str(repos["multi-task"]), "--data", str(data), "--out", str(tmp_path / "o.jsonl")])
    assert code == 0 and "20 rows" in stdout and "trust_label" in stdout
    code, _, stderr = cli(["score", str(repos["multi-task"]), "--data", str(data), "--out", str(tmp_path / "o.jsonl")])
    assert code == 2 and "--force" in stderr and len(stderr.strip().splitlines()) == 1


def test_a_hub_repo_id_is_scored_from_the_offline_cache(repos, tmp_path, hf_home):
    commit = install_in_offline_cache(repos["multi-task"], "org/trust-type", cache_dir=hf_home / "hub")
    data = _write(tmp_path / "posts.jsonl", _rows(30))
    out = tmp_path / "out.jsonl"
    args = ["score", "org/trust-type", "--data", str(data), "--out", str(out), "--keep", "id", "--no-progress"]
    scored = run_cli([*args, "--revision", commit], hf_home)  # a fresh process, offline, with only this cache
    assert scored.returncode == 0, scored.stderr[-3000:]
    local = score_file(repos["multi-task"], data, tmp_path / "local.jsonl", options=ScoreOptions(keep=("id",)))
    assert _read(out) == _read(local.out)
    missing = run_cli([*args[:1], "org/absent", *args[2:], "--force"], hf_home)
    assert missing.returncode == 2 and "org/absent" in missing.stderr and "local Hugging Face cache" in missing.stderr
