"""Scoring on a Ray cluster: `hubheads score`'s decisions as a Ray Data `map_batches` class.

```python
import ray
from hubheads.ray import Scorer

posts = ray.data.read_parquet("s3://bucket/posts/")
decisions = posts.map_batches(
    Scorer,
    fn_constructor_kwargs={"model": "org/reclamation-detector", "keep": ["id", "lang"], "threads": 1},
    batch_format="pyarrow",
    batch_size=1024,
    concurrency=8,  # actors: each loads the model once and scores many batches
    num_cpus=1,  # cores Ray reserves per actor; match `threads`
)
decisions.write_parquet("s3://bucket/decisions/")
```

Ray is the engine (scheduling, retries, reading and writing shards); hubheads only supplies the per-batch work,
`hubheads.score.RowScorer`, so the output columns and values are those of `hubheads score` on the same rows.
Install with `pip install "hubheads[ray]"`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hubheads.atomic import write_atomically
from hubheads.errors import InvalidInputError
from hubheads.loading import load_pipeline
from hubheads.precisions import use_precision
from hubheads.score import ON_ERROR, RowScorer, ScoreOptions, arrow_table

logger = logging.getLogger(__name__)


class Scorer:
    """A callable class for `ray.data.Dataset.map_batches`: one model load per actor, then every batch it is given.

    Args:
        model (`str`): a repo folder every node can read, or a Hub repo id.
        revision (`str`, *optional*), trust_remote_code (`bool`), device (*optional*): as in `hubheads score`.
        precision (`str`, defaults to `"float32"`): `"bfloat16"` or `"int8"`, as `hubheads score --precision`.
        threads (`int`, *optional*): torch threads per actor; set it to the actor's `num_cpus` (one, say, so that
            actors on one machine do not oversubscribe its cores).
        batch_size (`int`, defaults to 32): the pipeline's batch size inside one Ray batch.
        text_column, text_pair_column, lang_column, bio_column, threshold_mode, threshold, keep, prefix:
            as the `hubheads score` options of the same names (`keep` a list of column names; default: all).
        on_error (`str`, defaults to `"stop"`): a row without a scorable text fails the task (`"stop"`, naming the
            row's kept columns), or is left out of the output and logged (`"skip"`).
        errors_dir (`str`, *optional*): with `on_error="skip"`, a folder every node can write to: each batch's
            skipped rows go to a file of their own there (`errors-<id>.jsonl`, the lines of `hubheads score`'s side
            file: row number in the batch, reason, kept columns), so that no bad row is only a log line.

    Each batch may come as a `pyarrow.Table` (`batch_format="pyarrow"`, which keeps the input columns' types), a
    pandas `DataFrame` or a dict of numpy arrays; the result is a `pyarrow.Table`.
    """

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        device: Any = None,
        threads: int | None = None,
        batch_size: int = 32,
        text_column: str = "text",
        text_pair_column: str | None = None,
        lang_column: str | None = None,
        bio_column: str | None = None,
        threshold_mode: str | None = None,
        threshold: float | None = None,
        keep: Sequence[str] | None = None,
        prefix: str = "",
        on_error: str = "stop",
        errors_dir: str | None = None,
        precision: str = "float32",
    ):
        if on_error not in ON_ERROR:
            raise InvalidInputError(f"on_error must be one of {list(ON_ERROR)}, got {on_error!r}.")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.classifier = load_pipeline(model, revision=revision, trust_remote_code=trust_remote_code, device=device)
        use_precision(self.classifier, precision)
        self.options = ScoreOptions(
            text_column=text_column,
            text_pair_column=text_pair_column,
            lang_column=lang_column,
            bio_column=bio_column,
            threshold_mode=threshold_mode,
            threshold=threshold,
            keep=None if keep is None else tuple(keep),
            prefix=prefix,
            precision=precision,
        )
        if errors_dir is not None and on_error != "skip":
            raise InvalidInputError(
                "errors_dir holds the rows on_error='skip' leaves out; pass on_error='skip' with it."
            )
        self.batch_size, self.on_error = batch_size, on_error
        self.errors_dir = None if errors_dir is None else Path(errors_dir)
        if self.errors_dir is not None:
            self.errors_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: Any) -> Any:
        rows, columns, kept_types = _rows(batch)
        options = self.options.resolved(columns, self.classifier.reads_bio)
        scorer = RowScorer(self.classifier, options, batch_size=self.batch_size)
        scored, bad = scorer.score(rows)
        for error in bad:
            where = f"row {error.row} of the batch ({error.values}): {error.reason}"
            if self.on_error == "stop":
                raise InvalidInputError(f"Cannot score {where}; pass on_error='skip' to leave such rows out.")
            logger.warning("hubheads.ray.Scorer left out %s", where)
        if bad and self.errors_dir is not None:
            lines = "".join(error.to_json() + "\n" for error in bad)
            write_atomically(self.errors_dir / f"errors-{uuid.uuid4().hex}.jsonl", lines)
        return arrow_table(scored, scorer, kept_types)


def _rows(batch: Any) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """A Ray batch as rows of named fields, its column names, and the Arrow types it already has (if any)."""
    if hasattr(batch, "to_pylist") and hasattr(batch, "schema"):  # pyarrow.Table
        return batch.to_pylist(), list(batch.schema.names), {f.name: f.type for f in batch.schema}
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # pandas.DataFrame
        return batch.to_dict("records"), [str(column) for column in batch.columns], {}
    if isinstance(batch, dict):  # numpy arrays by column
        columns = list(batch)
        values = [
            batch[column].tolist() if hasattr(batch[column], "tolist") else list(batch[column]) for column in columns
        ]
        return [dict(zip(columns, row)) for row in zip(*values)], columns, {}
    raise InvalidInputError(
        f"Scorer takes a pyarrow Table, a pandas DataFrame or a dict of arrays, got {type(batch).__name__}."
    )


__all__ = ["Scorer"]
