"""`hubheads.ray.Scorer` on a local Ray instance: the same rows and decisions as `hubheads score` in one process.

Ray starts a local cluster of 2 logical CPUs; the map runs 2 actors, each loading the model once. The readers need a
CPU too, so each actor reserves half of one here (on a real cluster: `num_cpus=1, threads=1` per actor, or more).
"""

from __future__ import annotations

import numpy
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiny

from hubheads import export_model
from hubheads.score import ScoreOptions, score_file

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # starts a Ray instance (about 15 s)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=150 * 1024**2)
    yield
    ray.shutdown()


@pytest.mark.parametrize(
    "kind, build, precision",
    [
        ("per-language", tiny.build_thresholded_by_lang, "float32"),
        ("multi-label", tiny.build_multi_label, "float32"),
        ("per-language-bf16", tiny.build_thresholded_by_lang, "bfloat16"),  # as `hubheads score --precision`
    ],
)
def test_ray_data_gives_every_row_the_single_process_decision(local_ray, tmp_path, kind, build, precision):
    from hubheads.ray import Scorer

    repo = tmp_path / kind
    export_model(build(), repo, tokenizer=tiny.build_tokenizer())
    texts = tiny.sample_texts(600, seed=9)
    rows = [{"id": i, "text": text, "lang": ["it", "en", "es"][i % 3]} for i, text in enumerate(texts)]
    rows[7]["text"] = None  # a bad row: left out with on_error="skip", as `hubheads score --on-error skip` does
    data = tmp_path / "posts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data, row_group_size=100)
    options = ScoreOptions(keep=("id",), precision=precision)
    single = score_file(repo, data, tmp_path / "single.parquet", options=options, on_error="skip", progress=False)
    expected = pq.read_table(single.out)

    dataset = ray.data.read_parquet(str(data)).repartition(4)  # four blocks, so both actors get work
    decisions = dataset.map_batches(
        Scorer,
        fn_constructor_kwargs={
            "model": str(repo),
            "keep": ["id"],
            "threads": 1,
            "on_error": "skip",
            "precision": precision,
        },
        batch_format="pyarrow",
        batch_size=64,
        concurrency=2,
        num_cpus=0.5,
    )
    got = sorted(decisions.take_all(), key=lambda row: row["id"])
    assert decisions.schema().names == expected.column_names, "the same columns, in the same order"
    want = expected.to_pylist()
    assert [row["id"] for row in got] == [row["id"] for row in want] == [i for i in range(600) if i != 7]
    for got_row, want_row in zip(got, want):
        for column, value in want_row.items():
            if column.endswith("score"):
                assert got_row[column] == pytest.approx(value, abs=1e-6)
            elif column == "scores":
                assert got_row[column] == pytest.approx(value, abs=1e-6)
            else:
                assert got_row[column] == value, column


def test_a_bad_row_fails_the_task_unless_skipped(local_ray, tmp_path):
    from hubheads.ray import Scorer

    repo = tmp_path / "repo"
    export_model(tiny.build_thresholded_by_lang(), repo, tokenizer=tiny.build_tokenizer())
    scorer = Scorer(str(repo), keep=["id"])  # the class itself, as an actor calls it
    batch = pa.table({"id": [1, 2], "text": ["hello world", None]})
    with pytest.raises(
        ValueError, match=r"row 2 of the batch \(\{'id': 2\}\): the text \('text'\) is missing.*on_error='skip'"
    ):
        scorer(batch)
    assert Scorer(str(repo), keep=["id"], on_error="skip")(batch).column("id").to_pylist() == [1]
    as_numpy = {"id": numpy.array([1, 2]), "text": numpy.array(["a post", "hello"])}
    assert scorer(as_numpy).column_names == ["id", "label", "score", "threshold"]
