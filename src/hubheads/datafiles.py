"""Data files in, rows out: the one reader behind `hubheads tune --data` and `hubheads score --data`.

Both commands accept the same files, `.jsonl` (one object per line), `.json` (a list of objects), `.csv`, `.tsv` and
`.parquet`, decode text the same way (`text_codec`: a UTF-8 file may start with a byte-order mark, as spreadsheets
write it), and pick up the optional `lang` and `bio` columns the same way (`pick_columns`). `DataReader` yields rows in
chunks, from any row on, so `score` stays in bounded memory (except for `.json`, one list read whole); `read_rows`
reads every row, for `tune`. A row that is not an object comes as a `BadRow` naming it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hubheads.errors import InvalidInputError, MissingDependencyError, SourceNotFoundError

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


class BadRow(InvalidInputError):
    """A row that cannot be used (not an object, not valid JSON, its text missing or not a string, ...): its 1-based
    number, the reason, the row's `keep` columns when it has any (so the side file shows which post it was), and its
    line in the file when that differs from the row number (a `.jsonl` file with blank lines)."""

    def __init__(self, row: int, reason: str, values: Mapping[str, Any] | None = None, line: int | None = None):
        super().__init__(f"row {row}: {reason}")
        self.row, self.reason, self.values, self.line = row, reason, dict(values or {}), line

    def to_json(self) -> str:
        """One line of the side file: `{"row", "error", ...the kept columns}` (ASCII: a bad row's text may hold what
        UTF-8 cannot encode, such as a lone surrogate)."""
        return json.dumps({"row": self.row, "error": self.reason, **self.values}, default=str)


def text_codec(encoding: str) -> str:
    """The codec to open a text data file with: `encoding`, or `utf-8-sig` for any spelling of UTF-8, so that a
    byte-order mark at the start is skipped (spreadsheets write one) rather than read into the first column's name.

    Raises:
        `ValueError`: `encoding` is not a text encoding Python knows, naming `--encoding`.
    """
    try:
        codec = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        message = f"--encoding {encoding!r} is not a text encoding Python knows; try utf-8, latin-1 or cp1252."
        raise InvalidInputError(message) from None
    return "utf-8-sig" if codec == "utf-8" else encoding


def check_data_file(path: Path) -> None:
    """Refuse a `--data` file of another format, or one that does not exist."""
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise InvalidInputError(f"--data {path}: use a {', '.join(DATA_SUFFIXES)} file.")
    if not path.is_file():
        raise SourceNotFoundError(f"--data {path} does not exist.")


def pick_columns(
    columns: Sequence[str], lang_column: str | None, bio_column: str | None, reads_bio: bool, model: Any = None
) -> tuple[str | None, str | None]:
    """The language and bio columns to read: those named, else `lang` when the data has it, and `bio` when the data has
    it and the model reads bios.

    Raises:
        `ValueError`: a named column the data lacks, or a bio column for a model that reads none, naming the option.
    """
    if bio_column is not None and not reads_bio:
        which = f" ({model} is not a model that reads bios)" if model is not None else ""
        raise InvalidInputError(f"--bio-column {bio_column!r}: the model reads no author bio{which}; drop the option.")
    for flag, column in (("--lang-column", lang_column), ("--bio-column", bio_column)):
        if column is not None and column not in columns:
            raise InvalidInputError(
                f"{flag} {column!r} is not a column of the data, which has no column {column!r} among "
                f"{list(columns)}; name the right one with {flag}."
            )
    lang = lang_column or ("lang" if "lang" in columns else None)
    bio = bio_column or ("bio" if reads_bio and "bio" in columns else None)
    return lang, bio


class DataReader:
    """The rows of a data file as dicts, in chunks from any row on; its `columns` (for `.jsonl` and `.json`, every key
    of every row, in order of first appearance) and, when cheap to know, its number of `rows`.

    Args:
        path (`Path`): a `.jsonl`, `.json`, `.csv`, `.tsv` or `.parquet` file.
        encoding (`str`, *optional*, defaults to `"utf-8"`): the text encoding of a file that is not parquet.
    """

    def __init__(self, path: Path, encoding: str = "utf-8"):
        check_data_file(path)
        self.path, self.encoding, self.codec = path, encoding, text_codec(encoding)
        self.suffix = path.suffix.lower()
        self.columns: list[str] = []
        self.rows: int | None = None
        self.arrow_types: dict[str, Any] = {}
        self._json_rows: list[Any] | None = None
        if self.suffix == ".parquet":
            self._read_parquet_schema()
        elif self.suffix in (".csv", ".tsv"):
            with self._decoding():
                with self._open() as handle:
                    self.columns = next(csv.reader(handle, delimiter=self._delimiter), [])
        else:
            # Every row's keys, not only the first row's: a field may first appear in a later row.
            columns: dict[str, None] = {}
            self.rows = 0
            with self._decoding():
                for record in self._json_records(0):
                    self.rows += 1
                    columns.update(dict.fromkeys(record if isinstance(record, dict) else ()))
            self.columns = list(columns)

    def _read_parquet_schema(self) -> None:
        try:
            metadata = pyarrow_parquet().ParquetFile(self.path)
        except Exception as error:  # pyarrow's own errors name no file
            raise InvalidInputError(f"--data {self.path} is not a readable parquet file ({error}).") from None
        schema = metadata.schema_arrow
        self.columns, self.rows = list(schema.names), metadata.metadata.num_rows
        self.arrow_types = {name: schema.field(name).type for name in schema.names}

    @property
    def _delimiter(self) -> str:
        return "\t" if self.suffix == ".tsv" else ","

    def _open(self) -> Any:
        return open(self.path, encoding=self.codec, newline="")

    def chunks(self, size: int, skip: int = 0) -> Iterator[list[Any]]:
        """Chunks of `size` rows (the last one shorter) from row `skip` (0-based), whatever the file's row groups;
        a row that is not a mapping comes as a `BadRow`."""
        chunk: list[Any] = []
        with self._decoding():
            for record in self._records(skip):
                chunk.append(record)
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _records(self, skip: int) -> Iterator[Any]:
        if self.suffix == ".parquet":
            position = 0
            for batch in pyarrow_parquet().ParquetFile(self.path).iter_batches(batch_size=8192):
                start, position = position, position + batch.num_rows
                if position > skip:
                    yield from batch.slice(max(skip - start, 0)).to_pylist()
        elif self.suffix in (".csv", ".tsv"):
            with self._open() as handle:
                for number, record in enumerate(csv.DictReader(handle, delimiter=self._delimiter), 1):
                    if number > skip:
                        yield record
        else:
            yield from self._json_records(skip)

    def _json_records(self, skip: int) -> Iterator[Any]:
        if self.suffix == ".json":
            if self._json_rows is None:
                with self._open() as handle:
                    try:
                        self._json_rows = json.load(handle)
                    except json.JSONDecodeError as error:
                        raise InvalidInputError(f"--data {self.path} is not valid JSON ({error}).") from None
                if not isinstance(self._json_rows, list):
                    raise InvalidInputError(
                        f"--data {self.path} must hold a list of objects (or use .jsonl, one object per line)."
                    )
            for number, record in enumerate(self._json_rows[skip:], skip + 1):
                yield record if isinstance(record, dict) else _not_an_object(record, number)
            return
        with self._open() as handle:
            number = 0
            for line_number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                number += 1
                if number > skip:
                    yield _json_row(line, number, line_number)

    @contextlib.contextmanager
    def _decoding(self) -> Iterator[None]:
        """Turn a `UnicodeDecodeError` while reading into an `InvalidInputError` naming the line, the byte and
        `--encoding`, and the `csv` module's refusal of a file (a NUL byte, a field over its size limit) into one
        naming the file."""
        try:
            yield
        except csv.Error as error:
            raise InvalidInputError(
                f"--data {self.path} is not readable as {self.suffix.lstrip('.').upper()} ({error}); check that it is "
                "a text table with one row per line, or save the rows as .jsonl."
            ) from None
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"--data {self.path} is not {self.encoding} text{_undecodable_line(self.path, self.codec)}. Pass the "
                "file's encoding with --encoding (encoding=), e.g. --encoding latin-1 or cp1252 for a file saved by "
                "Excel, or re-save it as UTF-8."
            ) from None


def _undecodable_line(path: Path, codec: str) -> str:
    """`": line N has the byte b'\\xe8'"` for the first line that does not decode (read line by line, so a large file
    is never held whole), or `""` when no single line fails (an encoding whose characters span lines)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode(codec)
            except UnicodeDecodeError as error:
                return f": line {number} has the byte {line[error.start : error.start + 1]!r}"
    return ""


def _json_row(line: str, number: int, line_number: int) -> Any:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        return BadRow(number, f"not valid JSON ({error})", line=line_number)
    return row if isinstance(row, dict) else _not_an_object(row, number, line_number)


def _not_an_object(row: Any, number: int, line: int | None = None) -> BadRow:
    return BadRow(number, f"a JSON {type(row).__name__} ({row!r:.40}), not an object with named fields", line=line)


def pyarrow_parquet() -> Any:
    """`pyarrow.parquet`, or an `ImportError` naming the extra to install."""
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise MissingDependencyError(
            'Parquet files need pyarrow: pip install "hubheads[parquet]" (or pyarrow).'
        ) from None
    return parquet


def read_rows(path: str | Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Every row of a data file (any of `DATA_SUFFIXES`), for a command that needs them all (`tune`).

    Raises:
        `ValueError`: the file is not text in `encoding` (naming the line, the byte and `--encoding`), a row is not
            an object (naming its line or row), or the file holds no rows.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    for chunk in DataReader(path, encoding).chunks(4096):
        for row in chunk:
            if isinstance(row, BadRow):
                where = f"line {row.line}" if row.line is not None else f"row {row.row}"
                raise InvalidInputError(f"--data {path}, {where}: {row.reason}.")
            rows.append(row)
    if not rows:
        raise InvalidInputError(f"--data {path} has no rows.")
    return rows


__all__ = ["DATA_SUFFIXES", "BadRow", "DataReader", "check_data_file", "pick_columns", "read_rows", "text_codec"]
