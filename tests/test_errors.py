"""Errors as one typed family: the CLI prints one `error:` line for each, with its exit code."""

from __future__ import annotations

import ast
import builtins
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import huggingface_hub
import pytest
import tiny
from huggingface_hub import constants
from packaging.version import Version

from hubheads import errors, export_model
from hubheads.datafiles import BadRow
from hubheads.errors import (
    HubheadsError,
    HubUnreachableError,
    InvalidInputError,
    OutputExistsError,
    SourceNotFoundError,
    is_network_failure,
    reaching_the_hub,
)
from hubheads.output_checks import BrokenOutputsError
from hubheads.push import MIN_HUB_FOR_PUSH
from hubheads.resolve import resolve_checkpoint
from hubheads.score import ScoreOptions, score_file
from hubheads_cli import main

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_EXCEPTIONS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
}
#: The builtin exceptions src/hubheads makes outside the family, and how many: internal invariants and protocols.
ALLOWED_BUILTINS = {
    ("__init__.py", "AttributeError"): 1,  # the module `__getattr__` protocol of the lazy names
    ("architectures.py", "ValueError"): 3,  # a registration conflict at import time, as transformers' `register`
    ("atomic.py", "OSError"): 2,  # the OS's own failure of a rename (its errno), kept as the OS error it is
    ("demo.py", "RuntimeError"): 2,  # the demo's own commands failing on its own data: a bug, with its traceback
    ("verify.py", "SystemExit"): 1,  # `python -m hubheads.verify`
}
#: Every class of the family: (the builtins it also is, its exit code).
FAMILY = {
    InvalidInputError: ({ValueError, TypeError}, 2),
    OutputExistsError: ({FileExistsError}, 2),
    SourceNotFoundError: ({FileNotFoundError, ValueError}, 2),
    BadRow: ({ValueError, TypeError}, 2),
    BrokenOutputsError: ({ValueError}, 2),
    errors.MissingDependencyError: ({ImportError}, 3),
    HubUnreachableError: ({ConnectionError}, 3),
    errors.EnvironmentFailedError: ({RuntimeError}, 3),
    errors.HubRefusedError: ({OSError}, 2),
    errors.OutputNotWrittenError: ({OSError}, 3),
}


needs_hub_for_push = pytest.mark.skipif(
    Version(huggingface_hub.__version__) < Version(MIN_HUB_FOR_PUSH),
    reason=f"push needs huggingface_hub>={MIN_HUB_FOR_PUSH} (tests/test_floors.py covers the older ones)",
)


def _builtin_exceptions_made(path: Path) -> list[tuple[str, int]]:
    """(class, line) of every builtin exception `path` raises or builds (`raise ValueError`, `ValueError(...)`)."""
    made = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = node.exc if isinstance(node, ast.Raise) else node.func if isinstance(node, ast.Call) else None
        if isinstance(name, ast.Name) and name.id in BUILTIN_EXCEPTIONS:
            made.append((name.id, node.lineno))
    return made


def test_the_package_raises_the_family_and_builtins_only_where_allowed():
    made = {path: _builtin_exceptions_made(path) for path in sorted((ROOT / "src" / "hubheads").rglob("*.py"))}
    counts = Counter((path.name, name) for path, found in made.items() for name, _ in found)
    stray = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path, found in made.items()
        for name, line in found
        if (path.name, name) not in ALLOWED_BUILTINS
    ]
    assert not stray, f"raise a hubheads.errors class (a subclass of the builtin callers catch) instead: {stray}"
    assert dict(counts) == ALLOWED_BUILTINS, "an allowed builtin was added or removed: update ALLOWED_BUILTINS"


def test_the_family_is_its_builtins_with_its_exit_codes_as_the_readme_tables_them():
    for cls, (bases, exit_code) in FAMILY.items():
        assert issubclass(cls, HubheadsError) and cls.exit_code == exit_code, cls
        assert all(issubclass(cls, base) for base in bases), cls
    in_errors = {cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, HubheadsError)}
    assert in_errors - {HubheadsError} <= set(FAMILY), "a new class: add it to FAMILY and to the README table"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| (\d) \|", readme, flags=re.M))
    assert rows == {cls.__name__: str(code) for cls, (_, code) in FAMILY.items()}


@needs_hub_for_push
def test_push_with_the_hub_unreachable_is_one_line_saying_what_to_check(tmp_path, monkeypatch, capsys):
    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer(), threshold=0.6)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)  # its retries, at once
    capsys.readouterr()
    code = main(["push", str(tmp_path / "repo"), "--repo-id", "org/tiny", "--no-smoke"])
    err = capsys.readouterr().err
    assert code == HubUnreachableError.exit_code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("hubheads push: error: could not reach the Hugging Face Hub (http://127.0.0.1:9)")
    assert "HTTPS_PROXY" in lines[0] and "push to org/tiny" in lines[0]


def test_only_network_failures_become_hub_unreachable_errors():
    # By class name, as huggingface_hub's HTTP client changes between releases (requests, httpx, httpx2).
    connect_error = type("ConnectError", (Exception,), {})
    timeout = type("ConnectTimeout", (Exception,), {})
    offline = type("OfflineModeIsEnabled", (ConnectionError,), {})  # huggingface_hub's, when HF_HUB_OFFLINE=1
    assert is_network_failure(connect_error("refused"))
    try:
        raise RuntimeError("wrapped") from timeout("slow")
    except RuntimeError as error:
        assert is_network_failure(error)
    assert not is_network_failure(offline("offline"))  # a ConnectionError the user asked for
    assert not is_network_failure(ValueError("bad input"))
    with pytest.raises(HubUnreachableError, match="to list files: ConnectError: refused") as info:
        with reaching_the_hub("list files"):
            raise connect_error("refused")
    assert isinstance(info.value, HubheadsError) and isinstance(info.value, ConnectionError)
    with pytest.raises(LookupError):  # an answer from the Hub (a missing repo, say) passes through
        with reaching_the_hub("list files"):
            raise LookupError("no such repo")


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("thresholds_by_lang", {1: 0.7}, "`thresholds_by_lang` keys must be non-empty strings, got 1"),
        ("best_threshold_global", float("nan"), "`best_threshold_global` must be a number between 0 and 1"),
        ("label_thresholds", {"LABEL_0": "high"}, r"`label_thresholds\['LABEL_0'\]` must be a number"),
    ],
)
def test_export_of_an_in_memory_model_refuses_a_threshold_the_pipeline_refuses(tmp_path, key, value, match):
    from hubheads import HubheadsTextClassificationPipeline

    model, tokenizer = tiny.build_model(), tiny.build_tokenizer()
    setattr(model.config, key, value)
    with pytest.raises(ValueError, match=match):
        HubheadsTextClassificationPipeline(model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match=match):  # wrote {"1": 0.7} without a word before
        export_model(model, tmp_path / "repo", tokenizer=tokenizer)
    assert not (tmp_path / "repo").exists()


def _cli_failures(tmp_path: Path) -> dict:
    """name: (argv, the library call the command makes, the class it raises, a fragment of the message)."""
    checkpoint = tiny.save_checkpoint(tmp_path / "ckpt")
    repo = tmp_path / "repo"
    export_model(tiny.build_model(), repo, tokenizer=tiny.build_tokenizer(), threshold=0.6)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    data = tmp_path / "posts.jsonl"
    data.write_text("".join(json.dumps({"text": text}) + "\n" for text in ("a post", "another post")))
    out, absent = tmp_path / "decisions.jsonl", tmp_path / "absent"
    corrupt = Path(shutil.copytree(repo, tmp_path / "corrupt"))
    (corrupt / "model.safetensors").write_bytes(b"cut")  # safetensors' own error when read, not an OSError

    def score(model: Path, text_column: str = "text") -> tuple:
        argv = ["score", str(model), "--data", str(data), "--out", str(out), "--text-column", text_column]
        options = ScoreOptions(text_column=text_column)
        return [*argv, "--no-progress"], lambda: score_file(model, data, out, options=options, progress=False)

    return {
        "out-exists": (
            ["export", str(checkpoint), str(tmp_path / "full")],
            lambda: export_model(checkpoint, tmp_path / "full"),
            OutputExistsError,
            "is not empty; pass --force",
        ),
        "missing-column": (
            *score(repo, text_column="body"),
            InvalidInputError,
            "--text-column 'body' is not a column of the data; its columns are ['text']",
        ),
        "model-folder-absent": (
            *score(absent),
            SourceNotFoundError,
            f"MODEL '{absent}' is neither an existing folder nor a Hub repo id",
        ),
        "weights-unreadable": (*score(corrupt), InvalidInputError, "could not be loaded (SafetensorError: "),
        "out-not-writable": (  # /sys refuses new folders, to root too: the OS's own refusal of a write
            ["export", str(checkpoint), "/sys/hubheads-test/out"],
            lambda: export_model(checkpoint, "/sys/hubheads-test/out"),
            errors.OutputNotWrittenError,
            "could not write /sys/hubheads-test/out: Operation not permitted (/sys/hubheads-test)",
        ),
        "score-out-not-writable": (
            ["score", str(repo), "--data", str(data), "--out", "/sys/hubheads-test/decisions.jsonl", "--no-progress"],
            lambda: score_file(repo, data, "/sys/hubheads-test/decisions.jsonl", progress=False),
            errors.OutputNotWrittenError,
            "could not write --out /sys/hubheads-test/decisions.jsonl: Operation not permitted",
        ),
        "tokenizer-unloadable": (
            ["export", str(checkpoint), str(tmp_path / "exported"), "--tokenizer", str(tmp_path / "full")],
            lambda: export_model(checkpoint, tmp_path / "exported", tokenizer=str(tmp_path / "full")),
            SourceNotFoundError,
            f"--tokenizer {tmp_path / 'full'}: no tokenizer loads from it",
        ),
        "bad-transformers-release": (
            ["verify", str(repo), "--no-smoke", "--transformers", "4.57"],
            None,  # argparse's own error, before anything loads (hubheads_cli): its usage, then one line, status 2
            InvalidInputError,
            "argument --transformers: takes releases like 4.57.6 or 'latest', separated by commas; got '4.57'",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "out-exists",
        "missing-column",
        "model-folder-absent",
        "bad-transformers-release",
        "weights-unreadable",
        "tokenizer-unloadable",
        "out-not-writable",
        "score-out-not-writable",
    ],
)
def test_each_failure_kind_is_one_error_line_with_its_class_exit_code(tmp_path, capsys, case):
    argv, library_call, cls, fragment = _cli_failures(tmp_path)[case]
    if library_call is not None:
        with pytest.raises(cls, match=re.escape(fragment)):
            library_call()
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit:  # an argument error
        code = exit.code
    err = capsys.readouterr().err
    assert code == cls.exit_code and "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if "error" in line.lower()]
    assert line.startswith(f"hubheads {argv[0]}: error: ") and fragment in line, line
    assert err.strip().splitlines()[-1] == line, "the error is the last thing printed"
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine" and not (tmp_path / "decisions.jsonl").exists()
    assert not (tmp_path / "exported").exists()


@pytest.fixture
def new_http_sessions():
    """huggingface_hub < 1.0 (requests) keeps one session per thread, built with the offline switch of its time: the
    test gets one that sees its patched constants, and the tests after it one that sees theirs."""
    reset = getattr(huggingface_hub.utils, "reset_sessions", lambda: None)
    reset()
    yield
    reset()


def test_a_repo_id_with_the_hub_unreachable_is_one_line_saying_what_to_check(
    tmp_path, monkeypatch, capsys, new_http_sessions
):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # not cached: the Hub must answer
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", lambda seconds: None)  # its retries, at once
    with pytest.raises(HubUnreachableError, match="to download SRC org/absent: Connect(ion)?Error"):
        resolve_checkpoint("org/absent")
    capsys.readouterr()
    code = main(["verify", "org/absent", "--no-smoke"])
    err = capsys.readouterr().err
    assert code == HubUnreachableError.exit_code == 3, err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith("hubheads verify: error: could not reach the Hugging Face Hub (http://127.0.0.1:9)")
    assert re.search("to download target org/absent: Connect(ion)?Error", line) and "HTTPS_PROXY" in line, line
    assert "Traceback" not in err and err.strip().splitlines()[-1] == line


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"), ValueError("a ValueError of a bug")])
def test_a_bug_is_not_turned_into_an_error_line(tmp_path, monkeypatch, capsys, bug):
    def export_model(*args, **kwargs):
        raise bug

    monkeypatch.setattr("hubheads.export.export_model", export_model)
    with pytest.raises(type(bug)) as raised:  # the CLI caught every ValueError before the family
        main(["export", str(tmp_path / "ckpt"), str(tmp_path / "repo")])
    assert raised.value is bug and "error:" not in capsys.readouterr().err


@needs_hub_for_push
def test_a_push_the_hub_refuses_is_one_line_with_its_answer(hub, tmp_path, monkeypatch, capsys):
    export_model(tiny.build_model(), tmp_path / "repo", tokenizer=tiny.build_tokenizer(), threshold=0.6)
    hub.publish("org/theirs", {"README.md": b"theirs"})
    hub.read_only.add("org/theirs")  # this token reads it, and may not write to it
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    capsys.readouterr()
    code = main(["push", str(tmp_path / "repo"), "--repo-id", "org/theirs", "--no-smoke"])
    err = capsys.readouterr().err
    assert code == errors.HubRefusedError.exit_code and "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith("hubheads push: error: the Hub refused the push to org/theirs: 403"), line
    assert "You don't have the rights to write to org/theirs" in line and "may write to org," in line, line
    assert hub.tree("org/theirs") == {"README.md": b"theirs"}
