"""`hubheads score MODEL --data posts.parquet --out decisions.parquet`: the pipeline's decisions over a file.

A moderation team scores a stream of posts with the thresholds the author tuned. `score_file` reads `.jsonl`,
`.json`, `.csv`, `.tsv` or `.parquet` in chunks (`hubheads.datafiles`, the reader `tune` uses too), runs each chunk
through the hubheads pipeline (the same preprocessing, length-sorted batches and decisions as `pipeline(...)` in
memory), and writes one output row per input row, in order, to `.jsonl` or `.parquet`: the input columns (all, or
those of `keep`) and the decision columns (`RowScorer.columns`). Memory stays bounded by the chunk, whatever the file
size (a `.json` list is read whole).

Nothing is lost when a run dies. Each finished chunk is a file of its own in a hidden folder beside OUT
(`.OUT.partial/`, written to a temporary name and renamed), and OUT appears only when the last chunk is done, by an
atomic rename. `resume=True` (`--resume`) continues from the last finished chunk, after checking that the model, the
data file and every option that changes a decision are the ones the partial run used. A row whose text is missing or
of the wrong type stops the run with its row number, or with `on_error="skip"` goes to a side file with the reason.

`RowScorer` is the part shared with `hubheads.ray.Scorer`, which runs the same scoring on a Ray cluster.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hubheads.atomic import write_atomically
from hubheads.datafiles import BadRow, DataReader, check_data_file, pick_columns, pyarrow_parquet
from hubheads.errors import InvalidInputError, OutputExistsError, SourceNotFoundError, writing_into
from hubheads.loading import load_pipeline, pipeline_in
from hubheads.precisions import use_precision
from hubheads.repo_files import sha256_file
from hubheads.resolve import resolve_checkpoint
from hubheads.validators import check_whole_numbers
from hubheads_cli.defaults import DEFAULT_CHUNK_SIZE, ON_ERROR  # noqa: F401  (shown by `hubheads score --help`)

OUT_SUFFIXES = (".jsonl", ".parquet")
RUN_FILE = "run.json"
#: What a resumed run must share with the partial one, by the name its error message uses.
_RUN_KEYS = {
    "model": ("model", "revision", "model_folder", "config_sha256", "weights", "hubheads_version"),
    "data file": ("data", "data_size", "data_mtime_ns"),
    "options": ("options", "format"),
}
#: Decision columns by the last part of their name (`trust_label` is a label), as Arrow types.
_COLUMN_TYPES = {
    "label": "string",
    "score": "float64",
    "threshold": "float64",
    "labels": "strings",
    "scores": "floats",
}


@dataclass(frozen=True)
class ScoreOptions:
    """What to read from each row and how to decide; every field here can change a decision or an output column.

    Args:
        text_column (`str`, defaults to `"text"`): the texts.
        text_pair_column (`str`, *optional*): second texts of text pairs.
        lang_column (`str`, *optional*): language codes (per-language thresholds); `"lang"` when the data has it.
        bio_column (`str`, *optional*): author bios, for a model that reads them; `"bio"` when the data has it.
        threshold_mode (`str`, *optional*): `"auto"`, `"default"`, `"global"` or `"by_lang"`, as in the pipeline.
        threshold (`float`, *optional*): one threshold for every decision, as the pipeline's `threshold=`.
        keep (`tuple[str, ...]`, *optional*): the input columns to copy into the output (default: all of them).
        prefix (`str`, defaults to `""`): put before every decision column's name (`pred_label`).
        precision (`str`, defaults to `"float32"`): run the model at `"bfloat16"` or dynamic `"int8"`
            (`hubheads.precisions`); the card says how many dev decisions each changes.
    """

    text_column: str = "text"
    text_pair_column: str | None = None
    lang_column: str | None = None
    bio_column: str | None = None
    threshold_mode: str | None = None
    threshold: float | None = None
    keep: tuple[str, ...] | None = None
    prefix: str = ""
    precision: str = "float32"

    def resolved(self, columns: Sequence[str], reads_bio: bool) -> ScoreOptions:
        """These options against the data's columns and the model: `lang` picked up when present, and `bio` when the
        model reads bios; every named column checked (a `ValueError` naming the option and the columns the data
        has), and a bio column refused for a model that reads none."""
        lang, bio = pick_columns(columns, self.lang_column, self.bio_column, reads_bio)
        found = dict(lang_column=lang, bio_column=bio)
        named = {"text_column": self.text_column, "text_pair_column": self.text_pair_column}
        for option, column in named.items():
            if column is not None and column not in columns:
                flag = "--" + option.replace("_", "-")
                raise InvalidInputError(
                    f"{flag} {column!r} is not a column of the data; its columns are {list(columns)}."
                )
        for column in self.keep or ():
            if column not in columns:
                raise InvalidInputError(
                    f"--keep names {column!r}, which is not a column of the data: {list(columns)}."
                )
        return ScoreOptions(**{**asdict(self), **found, "keep": tuple(columns if self.keep is None else self.keep)})


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class RowScorer:
    """The decisions of one pipeline for rows of named fields, as flat output columns.

    `score(rows, first_row)` returns one output row per scorable input row (the `keep` columns, then the decision
    columns) and a `BadRow` for each other one. The decision columns, with `prefix` before each name:

    - single-label models: `label`, `score` (the probability of `label`), and `threshold` when a threshold decided;
    - multi-label models: `labels` (every label over its threshold, highest first) and `scores`, aligned;
    - multi-task models: the primary head's `label`, `score`, `threshold`, and `<task>_label`, `<task>_score` for
      every head.
    """

    def __init__(self, classifier: Any, options: ScoreOptions, batch_size: int = 32):
        self.classifier = classifier
        self.options = options
        self.batch_size = batch_size
        self.columns = self._columns()  # the decision columns, in output order
        keep, prefix = options.keep or (), options.prefix
        clashes = sorted(set(keep) & set(self.columns))
        if clashes:
            raise InvalidInputError(
                f"The input column(s) {clashes} would clash with the decision column(s) of the same name; leave them "
                f"out with --keep (keep=), or name the decision columns with --prefix, e.g. --prefix pred_ "
                f"({prefix!r} now)."
            )

    def _columns(self) -> list[str]:
        """The decision columns this model's outputs fill (the class docstring lists them by model kind)."""
        prefix, classifier = self.options.prefix, self.classifier
        if classifier.task_heads:
            tasks = [f"{task}_{part}" for task in classifier.task_heads for part in ("label", "score")]
            return [prefix + name for name in ("label", "score", "threshold", *tasks)]
        if classifier.multi_label:
            return [prefix + "labels", prefix + "scores"]
        decided = self.options.threshold is not None or self.options.threshold_mode is not None
        if classifier.thresholds.configured or decided:
            return [prefix + "label", prefix + "score", prefix + "threshold"]
        return [prefix + "label", prefix + "score"]

    def column_type(self, column: str) -> str:
        """`"string"`, `"float64"`, `"strings"` or `"floats"` (lists): the type of a decision column."""
        return _COLUMN_TYPES[column[len(self.options.prefix) :].rsplit("_", 1)[-1]]

    def _item(self, row: Mapping[str, Any], number: int) -> dict[str, Any]:
        """The pipeline input of one row, checked as the pipeline checks it (a `BadRow` naming the row otherwise)."""
        options = self.options
        text = row.get(options.text_column)
        if _missing(text):
            raise BadRow(number, f"the text ({options.text_column!r}) is missing")
        item: dict[str, Any] = {"text": text}
        for key in ("text_pair", "lang", "bio"):
            column = getattr(options, f"{key}_column")
            if column is not None and not _missing(row.get(column)):
                item[key] = row[column]
        for key, value in item.items():
            if not isinstance(value, str):
                column = getattr(options, f"{key}_column")
                raise BadRow(number, f"{column!r} holds {type(value).__name__} {value!r:.40}, not a string")
        if not item["text"].strip():
            raise BadRow(number, f"the text ({options.text_column!r}) is empty")
        try:
            return self.classifier._as_item(item, None, None)  # the pipeline's own checks (e.g. lone surrogates)
        except ValueError as error:
            raise BadRow(number, str(error)) from None

    def score(self, rows: Sequence[Mapping[str, Any]], first_row: int = 1) -> tuple[list[dict], list[BadRow]]:
        """Score `rows` (numbered from `first_row`); return the output rows of the good ones and the bad ones (a row
        given as a `BadRow`, one a reader could not parse, stays bad)."""
        items, good, bad = [], [], []
        for offset, row in enumerate(rows):
            if isinstance(row, BadRow):
                bad.append(row)
                continue
            try:
                items.append(self._item(row, first_row + offset))
                good.append(row)
            except BadRow as error:
                error.values = {column: row.get(column) for column in self.options.keep or ()}
                bad.append(error)
        arguments: dict[str, Any] = {"batch_size": self.batch_size}
        if self.options.threshold_mode is not None:
            arguments["threshold_mode"] = self.options.threshold_mode
        if self.options.threshold is not None:
            arguments["threshold"] = self.options.threshold
        outputs = self.classifier(items, **arguments) if items else []
        keep = self.options.keep or ()
        return [{**{c: row.get(c) for c in keep}, **self._decision(out)} for row, out in zip(good, outputs)], bad

    def _decision(self, output: Any) -> dict[str, Any]:
        """One pipeline result as the decision columns."""
        prefix = self.options.prefix
        if isinstance(output, list):  # a multi-label set
            return {prefix + "labels": [e["label"] for e in output], prefix + "scores": [e["score"] for e in output]}
        decision = {prefix + key: output.get(key) for key in ("label", "score", "threshold")}
        for task, head in (output.get("tasks") or {}).items():
            decision[f"{prefix}{task}_label"], decision[f"{prefix}{task}_score"] = head["label"], head["score"]
        return {column: decision.get(column) for column in self.columns}


def arrow_table(rows: list[dict], scorer: RowScorer, kept_types: Mapping[str, Any] | None = None) -> Any:
    """The output rows as a `pyarrow.Table`: decision columns of fixed types, kept columns of the input's types
    (`kept_types`, name → Arrow type) or inferred from the rows."""
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "strings": pa.list_(pa.string())}
    types["floats"] = pa.list_(pa.float64())
    keep = scorer.options.keep or ()
    kept = pa.Table.from_pylist([{c: row[c] for c in keep} for row in rows]) if keep and rows else None
    fields = [
        pa.field(c, (kept_types or {}).get(c) or (kept.schema.field(c).type if kept is not None else pa.null()))
        for c in keep
    ]
    fields += [pa.field(c, types[scorer.column_type(c)]) for c in scorer.columns]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


# -- writing ------------------------------------------------------------------------------------------------------


@dataclass
class ScoreResult:
    """What `score_file` wrote.

    Args:
        out (`Path`): the decisions file.
        rows (`int`): output rows (one per scorable input row).
        skipped (`int`): input rows written to `errors` instead (`on_error="skip"`).
        errors (`Path`, *optional*): the side file of skipped rows, when there were any.
        resumed_at (`int`): the input rows a previous run had finished (0 for a fresh run).
        columns (`list[str]`): the output columns.
    """

    out: Path
    rows: int = 0
    skipped: int = 0
    errors: Path | None = None
    resumed_at: int = 0
    columns: list[str] = field(default_factory=list)


def errors_path(out: Path) -> Path:
    """Where skipped rows go: `decisions.errors.jsonl` beside `decisions.parquet`."""
    return out.with_name(f"{out.stem}.errors.jsonl")


def partial_folder(out: Path) -> Path:
    """The finished chunks of an unfinished run: `.decisions.parquet.partial/` beside OUT."""
    return out.with_name(f".{out.name}.partial")


def _fingerprint(
    model: Any, revision: str | None, folder: Path, data: Path, options: ScoreOptions, out: Path
) -> dict[str, Any]:
    """Everything that makes two runs' rows interchangeable: model files (in `folder`, where `model` at `revision`
    is), data file, options, output format."""
    from hubheads import __version__

    config = sha256_file(folder / "config.json")
    weights = sorted(
        (path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in folder.glob("*.safetensors")
    )
    stat = data.stat()
    fingerprint = {
        "hubheads_version": __version__,
        "model": os.fspath(model),
        "revision": revision,
        "model_folder": str(folder.resolve()),
        "config_sha256": config,
        "weights": [list(entry) for entry in weights],
        "data": str(data.resolve()),
        "data_size": stat.st_size,
        "data_mtime_ns": stat.st_mtime_ns,
        "options": asdict(options),
        "format": out.suffix.lower(),
    }
    return json.loads(json.dumps(fingerprint))  # as run.json holds it (tuples become lists)


def _finished_chunks(partial: Path, suffix: str) -> list[tuple[int, int, Path]]:
    """The finished chunks of a partial run, `(start, end, path)` in order; leftovers of a killed write removed."""
    chunks = []
    for path in partial.iterdir():
        name = path.name
        if name.endswith(".tmp"):
            path.unlink()
        elif name.startswith("rows-") and name.endswith(suffix):
            first, last = name[len("rows-") : -len(suffix)].split("-")
            chunks.append((int(first), int(last), path))
    chunks.sort()
    expected = 0
    for start, end, _ in chunks:
        if start != expected:
            raise InvalidInputError(
                f"The partial run in {partial} misses rows {expected}-{start}; start over with --force."
            )
        expected = end
    ends = {end for _, end, _ in chunks}
    for path in partial.glob("errors-*.jsonl"):  # a chunk's errors are written just before its rows
        if int(path.name[len("errors-") : -len(".jsonl")].split("-")[1]) not in ends:
            path.unlink()
    return chunks


def _write_chunk(
    partial: Path, suffix: str, span: tuple[int, int], rows: list[dict], bad: list[BadRow], scorer, kept_types
) -> None:
    """One finished chunk: its skipped rows' file (if any) first, then its rows' file, which marks it finished."""
    name = f"{span[0]:012d}-{span[1]:012d}"
    if bad:
        lines = "".join(error.to_json() + "\n" for error in bad)
        write_atomically(partial / f"errors-{name}.jsonl", lambda p: p.write_text(lines, "utf-8"))
    target = partial / f"rows-{name}{suffix}"
    if suffix == ".parquet":
        table = arrow_table(rows, scorer, kept_types)
        write_atomically(target, lambda p: pyarrow_parquet().write_table(table, p))
    else:
        text = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
        write_atomically(target, lambda p: p.write_text(text, "utf-8"))


def _assemble(chunks: list[tuple[int, int, Path]], out: Path, staging: Path) -> int:
    """Join the finished chunks into `staging` (one file in OUT's format); return the row count."""
    if out.suffix.lower() == ".jsonl":
        rows = 0
        with open(staging, "wb") as target:
            for _, _, path in chunks:
                with open(path, "rb") as source:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        rows += block.count(b"\n")
                        target.write(block)
        return rows
    import pyarrow as pa

    parquet = pyarrow_parquet()
    schemas = [parquet.read_schema(path) for _, _, path in chunks]
    schema = pa.unify_schemas(schemas, promote_options="permissive")
    rows = 0
    with parquet.ParquetWriter(staging, schema) as writer:
        for _, _, path in chunks:
            table = parquet.read_table(path).cast(schema)
            rows += table.num_rows
            writer.write_table(table)
    return rows


def score_file(
    model: str | os.PathLike | Any,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    options: ScoreOptions | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    batch_size: int = 32,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_error: str = "stop",
    resume: bool = False,
    force: bool = False,
    encoding: str = "utf-8",
    device: Any = None,
    progress: bool = True,
) -> ScoreResult:
    """Score every row of `data` with `model` and write the decisions to `out`.

    Args:
        model (`str` or `os.PathLike`):
            A repo folder or a Hub repo id (from the local cache when `HF_HUB_OFFLINE=1`).
        data (`str` or `os.PathLike`):
            `.jsonl` (one object per line), `.json` (a list of objects, read whole), `.csv`, `.tsv` or `.parquet`.
        out (`str` or `os.PathLike`):
            `.jsonl` or `.parquet`; an existing file is replaced only with `force=True`.
        options (`ScoreOptions`, *optional*):
            Columns to read, the decision mode, the columns to keep.
        revision (`str`, *optional*):
            Branch, tag or commit of a Hub repo id.
        trust_remote_code (`bool`, defaults to `False`):
            Run a model whose code lives in another repo (its config.json's `auto_map`); refused otherwise.
        batch_size (`int`, defaults to 32), chunk_size (`int`, defaults to 2048):
            Pipeline batch size; rows read, sorted by length and written at a time (the unit of `resume`).
        on_error (`str`, defaults to `"stop"`):
            `"stop"`: a bad row stops the run with its row number (the chunks before it stay, for `resume`).
            `"skip"`: bad rows go to `errors_path(out)` with the reason, and the run goes on.
        resume (`bool`, defaults to `False`):
            Continue the partial run of `out` from its last finished chunk.
        force (`bool`, defaults to `False`):
            Replace an existing `out`; start over when a partial run exists and `resume` is not set.
        encoding (`str`, defaults to `"utf-8"`):
            Text encoding of a file that is not parquet (a UTF-8 byte-order mark is skipped).
        device (*optional*):
            Passed to `pipeline(device=...)`.
        progress (`bool`, defaults to `True`):
            Show a progress bar (rows and rows/s).
    """
    from tqdm.auto import tqdm

    data, out, options = Path(data), Path(out), options or ScoreOptions()
    _check_arguments(data, out, batch_size, chunk_size, on_error, force, resume)
    with writing_into(out.parent.absolute(), f"--out {out}"):  # `--out decisions/posts.jsonl`: a folder not made yet
        out.parent.mkdir(parents=True, exist_ok=True)
    reader = DataReader(data, encoding)
    folder = resolve_checkpoint(model, revision, option="MODEL")
    classifier = pipeline_in(folder, model, trust_remote_code=trust_remote_code, device=device, option="MODEL")
    use_precision(classifier, options.precision)
    options = options.resolved(reader.columns, classifier.reads_bio)
    fingerprint = _fingerprint(model, revision, folder, data, options, out)
    scorer = RowScorer(classifier, options, batch_size=batch_size)  # checks the columns against the model's
    partial = partial_folder(out)
    chunks = _open_partial(partial, fingerprint, resume, force, out)
    done = resumed_at = chunks[-1][1] if chunks else 0
    uses_arrow = ".parquet" in (data.suffix.lower(), out.suffix.lower())
    bar = tqdm(total=reader.rows, initial=done, desc=f"scoring {data.name}", unit=" rows", disable=not progress)
    with _arrow_on_the_c_heap() if uses_arrow else contextlib.nullcontext(), bar:
        for chunk in reader.chunks(chunk_size, skip=done):
            start, end = done, done + len(chunk)
            rows, bad = scorer.score(chunk, start + 1)
            if bad and on_error == "stop":
                raise InvalidInputError(
                    f"--data {data}, {bad[0]}. Fix the row, or pass --on-error skip (on_error='skip') to write bad "
                    f"rows to {errors_path(out).name} and go on; add --resume to keep the {start:,} rows done."
                )
            _write_chunk(partial, out.suffix.lower(), (start, end), rows, bad, scorer, reader.arrow_types)
            _return_freed_memory()
            done = end
            bar.update(len(chunk))
        result = _finish(partial, out, reader, scorer)
    result.resumed_at = resumed_at
    return result


@functools.cache
def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, or `None` (another C library, another system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)
    except OSError:
        return None


@contextlib.contextmanager
def _arrow_on_the_c_heap() -> Iterator[None]:
    """pyarrow allocating from the C heap (its system pool) while the run lasts. Its default pool (jemalloc or
    mimalloc) keeps the pages of every record batch read and written, and the process grew with the file (MiniLM:
    +160 MB from 2,048 to 100,000 rows); from the C heap, `_return_freed_memory` gives them back after each chunk."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _return_freed_memory() -> None:
    """Give the C heap's free pages back to the system after a chunk. The tensors of batches of every length leave
    glibc's heap fragmented, and without this the process grows with the file (MiniLM: +120 MB over 20,000 rows;
    flat with it, `benchmarks/run.py --only score`)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _check_arguments(data: Path, out: Path, batch_size: int, chunk_size: int, on_error: str, force: bool, resume):
    check_data_file(data)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise InvalidInputError(f"--out {out}: write a {' or '.join(OUT_SUFFIXES)} file.")
    if on_error not in ON_ERROR:
        raise InvalidInputError(f"--on-error must be one of {list(ON_ERROR)}, got {on_error!r}.")
    check_whole_numbers({"--batch-size": batch_size, "--chunk-size": chunk_size})
    # A run killed while `_finish` renamed its files left OUT or its errors file beside the partial run: --resume
    # finishes that run, replacing them.
    finishing = resume and partial_folder(out).is_dir()
    for existing in (out, errors_path(out)):
        if existing.exists() and not force and not finishing:
            raise OutputExistsError(
                f"{existing} exists; pass --force to replace it (it is replaced only when the run is done)."
            )
    if out.resolve() == data.resolve():
        raise InvalidInputError(f"--out {out} is the data file; write the decisions to another file.")


def _open_partial(partial: Path, fingerprint: dict, resume: bool, force: bool, out: Path) -> list:
    """The finished chunks to continue from (none for a fresh run), after checking the partial run matches."""
    suffix = fingerprint["format"]
    if partial.is_dir() and not resume:
        if not force:
            done = _finished_chunks(partial, suffix)
            raise OutputExistsError(
                f"An unfinished run of --out {out} is in {partial} ({done[-1][1] if done else 0:,} rows done); pass "
                "--resume to continue it, or --force to start over."
            )
        shutil.rmtree(partial)
    if not partial.is_dir():
        if resume:
            raise SourceNotFoundError(f"--resume: no unfinished run of --out {out} ({partial} does not exist).")
        staging = Path(tempfile.mkdtemp(dir=partial.parent, prefix=partial.name + ".tmp-"))
        (staging / RUN_FILE).write_text(json.dumps(fingerprint, indent=2), "utf-8")
        os.replace(staging, partial)
        return []
    recorded = json.loads((partial / RUN_FILE).read_text("utf-8"))
    changed = [
        what for what, keys in _RUN_KEYS.items() if any(recorded.get(key) != fingerprint.get(key) for key in keys)
    ]
    before, now = recorded.get("options") or {}, fingerprint["options"]
    options = [f"{key}={before.get(key)!r} then, {now[key]!r} now" for key in now if before.get(key) != now[key]]
    if changed:
        raise InvalidInputError(
            f"--resume: the unfinished run in {partial} used another {' and '.join(changed)}"
            + (f" ({'; '.join(options)})" if options else "")
            + ". Rows of two runs must be interchangeable; run it as before, or pass --force without --resume to "
            "start over."
        )
    return _finished_chunks(partial, suffix)


def _finish(partial: Path, out: Path, reader: DataReader, scorer: RowScorer) -> ScoreResult:
    """Join the chunks into OUT (and the skipped rows into the errors file) by atomic renames; remove the partial."""
    suffix = out.suffix.lower()
    chunks = _finished_chunks(partial, suffix)
    result = ScoreResult(out=out, columns=list(scorer.options.keep or ()) + scorer.columns)
    staging = partial / f"assembled{suffix}"
    result.rows = _assemble(chunks, out, staging) if chunks else _empty_output(staging, scorer, reader)
    error_files = sorted(partial.glob("errors-*.jsonl"))
    errors_path(out).unlink(missing_ok=True)  # a previous run's (replaced with --force): it would not match OUT
    if error_files:
        joined = partial / "errors.jsonl"
        with open(joined, "wb") as target:
            for path in error_files:
                lines = path.read_bytes()
                result.skipped += lines.count(b"\n")
                target.write(lines)
        result.errors = errors_path(out)
        os.replace(joined, result.errors)
    os.replace(staging, out)
    shutil.rmtree(partial)
    return result


def _empty_output(staging: Path, scorer: RowScorer, reader: DataReader) -> int:
    if staging.suffix == ".parquet":
        pyarrow_parquet().write_table(arrow_table([], scorer, reader.arrow_types), staging)
    else:
        staging.write_bytes(b"")
    return 0


__all__ = ["RowScorer", "ScoreOptions", "ScoreResult", "BadRow", "load_pipeline", "score_file"]
