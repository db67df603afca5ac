"""`hubheads verify --transformers R1,R2,...`: run a repo as its consumers would, on each transformers release they
may have, before it is pushed.

For each release, an isolated environment with the author's torch and that transformers, without hubheads
(`hubheads.release_envs`: built once, cached, with uv where available). In it, the stock
`pipeline("text-classification", model=repo, trust_remote_code=True)` runs the repo from an offline cache with
standard input closed, twice in fresh processes: once as a consumer loads it, and once with uninitialised memory
filled (NaN, the largest integer), so that code reading memory its load never set fails every time rather than when
the allocator is unlucky. Both runs must load, give finite scores, agree with each other, and agree with the author's
own outputs (the same call in the author's interpreter): scores to 1e-4, decisions exactly. A failure is named by its
known cause where the error or the numbers match one (`KNOWN_CAUSES`), else by the error's last line.

The result is written into the repo as `verified_releases.json`, which `hubheads card` shows as a table and `push`
reports.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hubheads.errors import EnvironmentFailedError

RESULT_FILE = "verified_releases.json"
SCORE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Cause:
    """A way remote code breaks between transformers releases, how to recognise it, and the fix."""

    name: str
    pattern: str  # a regular expression over the error text (and the suspect buffers)
    fix: str


#: What the public threads show again and again between transformers 4.x and 5.x, checked in this order.
KNOWN_CAUSES = (
    Cause(
        "non-persistent buffers left uninitialised by meta-device loading (transformers >= 5, transformers #48892)",
        r"Uninitialised buffers|index -?\d{6,} is out of bounds|NaN or infinite",
        "set each buffer in `_init_weights`, compute it in `forward`, or save it as a persistent buffer; for a "
        "gte-multilingual-base fine-tune, `hubheads export` without --keep-remote-code",
    ),
    Cause(
        "data-dependent work in `__init__` on meta tensors (`.item()`, transformers >= 5, transformers #43957)",
        r"meta tensors?|Tensor\.item\(\) cannot be called on meta",
        "move the computation into `forward`, or into `_init_weights` on real tensors",
    ),
    Cause(
        "no `post_init()` at the end of the model's `__init__` (transformers >= 5)",
        r"all_tied_weights_keys",
        "call `self.post_init()` last in every model `__init__`",
    ),
    Cause(
        "`_tied_weights_keys` as a list (transformers >= 5 expects a dict)",
        r"_tied_weights_keys|'list' object has no attribute '(items|keys)'",
        'declare `_tied_weights_keys = {"lm_head.weight": "embeddings.weight"}` (a dict of target: source)',
    ),
    Cause(
        "an import transformers 5 removed (`PretrainedConfig` from `transformers.modeling_utils`, `LossKwargs`, ...)",
        r"cannot import name '(PretrainedConfig|LossKwargs|[A-Za-z_]+)' from 'transformers\.(modeling_utils|utils)",
        "import public names from the top level of `transformers` only",
    ),
    Cause(
        "code written for transformers 5 (`PreTrainedConfig`) on transformers 4",
        r"cannot import name 'PreTrainedConfig'",
        "import `PretrainedConfig` (both releases have that spelling)",
    ),
    Cause(
        "a tokenizer call transformers 5 dropped (`encode_plus`, `batch_encode_plus`)",
        r"encode_plus",
        "call the tokenizer itself: `tokenizer(text, ...)`",
    ),
)


@dataclass
class ReleaseRow:
    """One release's result.

    Args:
        release (`str`): as asked (`"latest"` included).
        version (`str`): the transformers version the environment has.
        loads (`bool`): both fresh loads ran the pipeline.
        finite (`bool`): every score was finite.
        stable (`bool`): the two loads gave the same outputs.
        matches (`bool`): the outputs equal the author's (scores to 1e-4, decisions exactly).
        seconds (`float`): the two runs, environment excluded.
        cause (`str`, *optional*): why it failed: a known cause with its fix, or the error's last line.
    """

    release: str
    version: str = ""
    loads: bool = False
    finite: bool = False
    stable: bool = False
    matches: bool = False
    seconds: float = 0.0
    cause: str | None = None

    @property
    def ok(self) -> bool:
        return self.loads and self.finite and self.stable and self.matches


@dataclass
class ReleaseReport:
    """Every release's row, with when and by what it was checked."""

    rows: list[ReleaseRow] = field(default_factory=list)
    date: str = ""
    hubheads_version: str = ""
    torch: str = ""
    builder: str = ""
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def passed(self) -> list[str]:
        return [row.version for row in self.rows if row.ok]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleaseReport:
        rows = [ReleaseRow(**row) for row in data.get("rows", [])]
        keys = ("date", "hubheads_version", "torch", "builder", "fingerprint")
        return cls(rows=rows, **{key: str(data.get(key, "")) for key in keys})

    def format(self) -> str:
        """The table `verify` prints."""
        yes = {True: "yes", False: "no"}
        names = [
            row.version if row.release in (row.version, "") else f"{row.version} ({row.release})" for row in self.rows
        ]
        width = max([len("transformers"), *map(len, names)]) + 2
        lines = [
            f"{'transformers':<{width}}{'loads':<7}{'finite':<8}{'stable':<8}{'= author':<10}{'seconds':>8}  result"
        ]
        for name, row in zip(names, self.rows):
            cells = [yes[row.loads], yes[row.finite], yes[row.stable], yes[row.matches]]
            result = "ok" if row.ok else f"FAIL: {row.cause}"
            lines.append(
                f"{name:<{width}}{cells[0]:<7}{cells[1]:<8}{cells[2]:<8}{cells[3]:<10}{row.seconds:>8.1f}  {result}"
            )
        return "\n".join(lines)


def known_cause(text: str) -> str | None:
    """The known cause (and its fix) that `text` (an error, the suspect buffers) matches, or `None`."""
    for cause in KNOWN_CAUSES:
        if re.search(cause.pattern, text):
            return f"{cause.name}. Fix: {cause.fix}."
    return None


def _decisions(results: list[Any]) -> list[Any]:
    """Each input's decision in a run's results (one list of outputs per call: the calls pass lists of inputs)."""
    from hubheads.output_checks import decisions_of

    return [decision for call in results for decision in decisions_of(call if isinstance(call, list) else [call])]


def _failure(output: Mapping[str, Any]) -> str:
    """Why one run's output cannot be used ("" when it can)."""
    from hubheads.output_checks import numbers_in

    buffers = output.get("suspect_buffers") or []
    detail = f" Uninitialised buffers after loading: {', '.join(buffers)}." if buffers else ""
    if "error" in output:
        return f"{output['error']}.{detail}"
    if not all(math.isfinite(x) for x in numbers_in(output["results"])):
        return f"NaN or infinite scores.{detail}"
    return ""


def compare(author: Mapping[str, Any], plain: Mapping[str, Any], filled: Mapping[str, Any], row: ReleaseRow) -> None:
    """Fill `row` from a release's two runs (`plain`: as a consumer loads; `filled`: uninitialised memory filled)
    against the author's own run."""
    from hubheads.output_checks import numbers_in

    row.version = plain.get("transformers_version", row.version)
    problems = [text for text in (_failure(plain), _failure(filled)) if text]
    row.loads = "error" not in plain and "error" not in filled
    row.finite = row.loads and not problems
    if problems:
        row.cause = known_cause(" ".join(problems)) or problems[0].splitlines()[-1][:300]
        return
    a, b = list(numbers_in(plain["results"])), list(numbers_in(filled["results"]))
    row.stable = len(a) == len(b) and all(abs(x - y) <= SCORE_TOLERANCE for x, y in zip(a, b))
    if not row.stable:
        row.cause = (
            f"{KNOWN_CAUSES[0].name}, or weights initialised at random on every load: the two loads gave different "
            f"scores. Fix: {KNOWN_CAUSES[0].fix}."
        )
        return
    mine = list(numbers_in(author["results"]))
    same_scores = len(a) == len(mine) and all(abs(x - y) <= SCORE_TOLERANCE for x, y in zip(a, mine))
    row.matches = same_scores and _decisions(plain["results"]) == _decisions(author["results"])
    if not row.matches:
        row.cause = (
            "outputs differ from the author's (largest score difference "
            f"{max((abs(x - y) for x, y in zip(a, mine)), default=float('nan')):.3g}): an own `_init_weights` that "
            "writes weights in place re-randomises loaded weights on transformers 5.0-5.12; only the standard "
            "initialisers are safe there."
        )


def consumer_runs(repo_id: str, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The two runs of `calls` on `repo_id` a release gets (requests of `offline_hub.run_stock_pipelines`): as a
    consumer loads it, then with uninitialised memory filled; errors are caught and reported, not raised."""
    request = {"repo_id": repo_id, "calls": calls, "catch_errors": True}
    return [request, {**request, "fill_uninitialized": True}]


def check_releases(
    folder: Path,
    releases: Sequence[str],
    calls: list[dict[str, Any]],
    code: Mapping[str, Path],
    *,
    pythons: Mapping[str, str | Path] | None = None,
    author_python: str | Path | None = None,
) -> ReleaseReport:
    """Run the repo in `folder` on each of `releases` (see the module docstring).

    Args:
        folder (`Path`): the repo.
        releases (`Sequence[str]`): transformers versions, or `"latest"`.
        calls (`list[dict]`): the pipeline calls, `{"inputs": ..., "kwargs": {...}}` each.
        code (`Mapping[str, Path]`): the other repos its `auto_map` needs, as local folders.
        pythons (`Mapping[str, str | Path]`, *optional*): an interpreter per release to use instead of the cached
            environments (the test suite's own release environments).
        author_python (`str` or `Path`, *optional*): the author's interpreter, whose outputs the releases must
            give; this one by default.
    """
    (report,) = check_many([(folder, calls)], releases, code, pythons=pythons, author_python=author_python)
    return report


def check_many(
    repos: Sequence[tuple[Path, list[dict[str, Any]]]],
    releases: Sequence[str],
    code: Mapping[str, Path],
    *,
    pythons: Mapping[str, str | Path] | None = None,
    author_python: str | Path | Sequence[str | Path | None] | None = None,
) -> list[ReleaseReport]:
    """`check_releases` for several (repo folder, calls) at once: each run is one fresh process per release for all
    of them (a process starts, and imports transformers, once), so checking many repos costs little more than one.
    `author_python` may be one interpreter per repo."""
    import torch

    from hubheads import __version__
    from hubheads.offline_hub import install_in_offline_cache, run_stock_pipelines
    from hubheads.release_envs import newest_release, release_environment

    reports = [
        ReleaseReport(
            date=datetime.date.today().isoformat(), hubheads_version=__version__, torch=torch.__version__.split("+")[0]
        )
        for _ in repos
    ]
    with tempfile.TemporaryDirectory(prefix="hubheads-releases-") as hf_home:
        requests = []
        for index, (folder, calls) in enumerate(repos):
            install_in_offline_cache(folder, f"hubheads-verify/repo-{index}", cache_dir=Path(hf_home) / "hub")
            requests.append(consumer_runs(f"hubheads-verify/repo-{index}", calls))
        for code_repo, snapshot in code.items():
            install_in_offline_cache(snapshot, code_repo, cache_dir=Path(hf_home) / "hub")
        # The author's outputs, in one process per author interpreter (one per repo may be given).
        if isinstance(author_python, (list, tuple)):
            own = [str(python) if python else None for python in author_python]
        else:
            own = [str(author_python) if author_python else None] * len(repos)
        authors: list[dict[str, Any]] = [{} for _ in repos]
        for python in dict.fromkeys(own):
            indices = [index for index, mine in enumerate(own) if mine == python]
            outputs = run_stock_pipelines(hf_home, [requests[index][0] for index in indices], python=python)
            for index, output in zip(indices, outputs):
                authors[index] = output
        for author, (folder, _) in zip(authors, repos):
            if _failure(author):
                raise EnvironmentFailedError(
                    f"{folder} does not run in the author's environment either (transformers "
                    f"{author['transformers_version']}): {_failure(author)} Fix that first (`hubheads verify` "
                    "without --transformers shows it), then check the other releases."
                )
        for release in releases:
            if pythons and release in pythons:
                python, builder = str(pythons[release]), "given"
            else:
                env = release_environment(newest_release() if release == "latest" else release)
                python, builder = str(env.python), env.builder
            start = time.perf_counter()
            plain = run_stock_pipelines(hf_home, [pair[0] for pair in requests], python=python)
            filled = run_stock_pipelines(hf_home, [pair[1] for pair in requests], python=python)
            seconds = (time.perf_counter() - start) / len(repos)
            for report, author, mine, theirs in zip(reports, authors, plain, filled):
                row = ReleaseRow(release=release, seconds=seconds)
                compare(author, mine, theirs, row)
                report.rows.append(row)
                report.builder = builder
    return reports


#: The files whose content decides what consumers run: a recorded result holds for these exact files only.
RUN_FILES = ("config.json", "postprocessing.json", "*.py", "*.safetensors", "tokenizer*", "*.model", "*.txt")


def repo_fingerprint(folder: Path) -> str:
    """The sha256 over the names and contents of the files that decide what consumers run (`RUN_FILES`)."""
    from hubheads.repo_files import sha256_bytes, sha256_file

    names = sorted({path.name for pattern in RUN_FILES for path in folder.glob(pattern) if path.is_file()})
    return sha256_bytes(json.dumps({name: sha256_file(folder / name) for name in names}).encode())


def write_result(folder: Path, report: ReleaseReport) -> Path:
    """Record `report` in the repo (`verified_releases.json`) with the fingerprint of the files it ran, for the card
    and `push`."""
    from hubheads.atomic import write_atomically

    report.fingerprint = repo_fingerprint(folder)
    path = folder / RESULT_FILE
    write_atomically(path, json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_result(folder: Path) -> ReleaseReport | None:
    """The last `verify --transformers` result recorded in the repo, or `None` when there is none or the files it ran
    have changed since (a new export, new thresholds, edited code)."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return None
    report = ReleaseReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return report if report.fingerprint == repo_fingerprint(folder) else None


__all__ = [
    "KNOWN_CAUSES",
    "RESULT_FILE",
    "ReleaseReport",
    "ReleaseRow",
    "check_many",
    "check_releases",
    "compare",
    "consumer_runs",
    "known_cause",
    "read_result",
    "repo_fingerprint",
    "write_result",
]
