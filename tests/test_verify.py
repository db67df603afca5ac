"""`verify_repo`: clean exports pass, each planted defect fails the right check, repo ids resolve offline."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
import tiny
from huggingface_hub import constants

from hubheads import __version__, code_scan, export_model, install_in_offline_cache
from hubheads import verify as verify_module
from hubheads.verify import (
    load_released_files,
    modeling_file_hashes,
    record_release,
    scan_python_source,
    verify_repo,
)

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["binary", "multi-label", "multi-task", "bio"]
PIPELINE = "pipeline_hubheads.py"


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """One export of each kind, built once; a test copies the one it damages (see `_copy`)."""
    base = tmp_path_factory.mktemp("exports")
    tokenizer = tiny.build_tokenizer()
    export_model(tiny.build_model(), base / "binary", tokenizer=tokenizer, threshold=0.7, lang_thresholds={"it": 0.6})
    multi_label = tiny.build_model(num_labels=len(tiny.MULTI_LABELS), id2label=dict(enumerate(tiny.MULTI_LABELS)))
    export_model(
        multi_label, base / "multi-label", tokenizer=tokenizer, multi_label=True, label_thresholds={"sarcasm": 0.3}
    )
    export_model(tiny.build_residual_type_fusion(), base / "multi-task", tokenizer=tokenizer)
    export_model(tiny.build_gated_bio(), base / "bio", tokenizer=tokenizer, threshold=0.6)
    return {kind: base / kind for kind in KINDS}


def _copy(exports: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exports[kind], tmp_path / kind))


def _failed(report) -> set[str]:
    return {finding.check for finding in report.findings if finding.status == "fail"}


def _findings(report, check: str, status: str) -> list:
    return [finding for finding in report.findings if finding.check == check and finding.status == status]


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _append(folder: Path, name: str, text: str) -> None:
    with open(folder / name, "a") as handle:
        handle.write(text)


@pytest.mark.parametrize("kind", KINDS)
def test_clean_exports_pass_the_static_checks(exports, kind):
    report = verify_repo(exports[kind], smoke=False)
    assert report.ok, report.format()
    assert report.target == str(exports[kind]) and report.folder == exports[kind]
    checks = {finding.check for finding in report.findings}
    assert checks == {"config", "thresholds", "remote-code", "hubheads-files", "weights", "code-safety"} | {
        "tokenizer",
        "model-card",
    }
    assert [(f.check, f.status) for f in report.findings if f.status != "ok"] == [("model-card", "warn")]
    (matched,) = _findings(report, "hubheads-files", "ok")
    assert f"match hubheads {__version__}" in matched.message


def test_unknown_python_files_fail_unless_allowed(exports, tmp_path):
    repo = _copy(exports, "binary", tmp_path)
    (repo / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    (repo / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    report = verify_repo(repo, smoke=False)
    assert _failed(report) == {"unknown-code"} and _findings(report, "model-card", "ok")
    (unknown,) = _findings(report, "unknown-code", "fail")
    assert unknown.path == "helpers.py" and "helpers.py is not a hubheads file" in unknown.message
    assert "does not run on load" in unknown.message and "--allow-unknown-code" in unknown.message
    allowed = verify_repo(repo, smoke=False, allow_unknown_code=True)
    assert allowed.ok and [f.path for f in _findings(allowed, "unknown-code", "warn")] == ["helpers.py"]
    (scanned,) = _findings(allowed, "code-safety", "ok")
    assert scanned.message.startswith("1 unknown Python file(s) scanned")


@pytest.mark.consumer
@pytest.mark.parametrize("kind", KINDS)
def test_clean_exports_pass_the_smoke_run(exports, kind, consumer_python):
    report = verify_repo(exports[kind], python=consumer_python)
    assert report.ok, report.format()
    (smoke,) = _findings(report, "smoke-run", "ok")
    assert "HubheadsTextClassificationPipeline" in smoke.message and "under transformers " in smoke.message


def _bad_threshold(repo: Path) -> None:
    _edit_config(repo, best_threshold_global=1.7)


def _no_pipeline(repo: Path) -> None:
    config = json.loads((repo / "config.json").read_text())
    del config["custom_pipelines"]
    (repo / "config.json").write_text(json.dumps(config))


def _wrong_class(repo: Path) -> None:
    _edit_config(repo, custom_pipelines={"text-classification": {"impl": "pipeline_hubheads.NoSuchPipeline"}})


def _corrupt_weights(repo: Path) -> None:
    (repo / "model.safetensors").write_bytes(b"definitely not safetensors")


def _pickle_weights(repo: Path) -> None:
    (repo / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")


def _config_not_json(repo: Path) -> None:
    (repo / "config.json").write_text("{not json")


def _custom_pipelines_not_an_object(repo: Path) -> None:
    _edit_config(repo, custom_pipelines="pipeline_hubheads.HubheadsTextClassificationPipeline")


def _binary_python_file(repo: Path) -> None:
    (repo / "helpers.py").write_bytes(b"x = 1\x00\xff\n")


def _missing_shard(repo: Path) -> None:
    index = {"metadata": {}, "weight_map": {"classifier.weight": "model-00002-of-00002.safetensors"}}
    (repo / "model.safetensors.index.json").write_text(json.dumps(index))


def _unlink(*names: str):
    return lambda repo: [(repo / name).unlink() for name in names]


def _appending(name: str, text: str):
    return lambda repo: _append(repo, name, text)


DEFECTS = {
    # id: (kind, plant the defect, the check that fails, the file it names, words of the message)
    "bad-threshold": ("binary", _bad_threshold, "thresholds", "config.json", "best_threshold_global"),
    "thresholds-without-pipeline": ("binary", _no_pipeline, "thresholds", "config.json", "hubheads export"),
    "missing-pipeline-file": ("binary", _unlink("pipeline_hubheads.py"), "remote-code", "config.json", "is not in"),
    "missing-auto-map-file": (
        "multi-task",
        _unlink("modeling_residual_type_fusion.py"),
        "remote-code",
        "config.json",
        "auto_map['AutoModelForSequenceClassification'] names modeling_residual_type_fusion.",
    ),
    "class-not-defined": ("binary", _wrong_class, "remote-code", "pipeline_hubheads.py", "no class NoSuchPipeline"),
    "missing-relative-import": (
        "binary",
        _unlink("configuration_hubheads.py"),
        "remote-code",
        "pipeline_hubheads.py",
        "imports .configuration_hubheads, but configuration_hubheads.py is not in the repo",
    ),
    "edited-modeling-file": (
        "multi-task",
        _appending("modeling_hubheads.py", "# a local tweak\n"),
        "unknown-code",
        "modeling_hubheads.py",
        f"differs from the file of that name in every hubheads release up to {__version__}: code verify does not "
        "recognise, which runs when a consumer loads the repo",
    ),
    "pickle-weights": ("binary", _pickle_weights, "weights", "pytorch_model.bin", "pickle-format"),
    "exec-call": (
        "binary",
        _appending("pipeline_hubheads.py", "exec('1')\n"),
        "code-safety",
        PIPELINE,
        "calls exec()",
    ),
    "corrupt-safetensors": ("binary", _corrupt_weights, "weights", "model.safetensors", "cannot be read"),
    "missing-shard": ("binary", _missing_shard, "weights", "model.safetensors.index.json", "model-00002-of-00002"),
    "no-tokenizer": ("binary", _unlink("tokenizer.json", "tokenizer_config.json"), "tokenizer", None, "No tokenizer"),
    "config-not-json": ("binary", _config_not_json, "config", "config.json", "not valid JSON"),
    "pipelines-not-object": ("binary", _custom_pipelines_not_an_object, "remote-code", "config.json", "an object"),
    "binary-python-file": ("binary", _binary_python_file, "code-safety", "helpers.py", "not valid Python"),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_planted_defect_fails_its_check(exports, tmp_path, defect):
    kind, plant, check, path, words = DEFECTS[defect]
    repo = _copy(exports, kind, tmp_path)
    plant(repo)
    report = verify_repo(repo, smoke=False)
    assert not report.ok and check in _failed(report), report.format()
    assert any(f.path == path and words in f.message for f in _findings(report, check, "fail")), report.format()


def test_the_exec_call_is_reported_with_its_line(exports, tmp_path):
    repo = _copy(exports, "binary", tmp_path)
    _append(repo, "pipeline_hubheads.py", "exec('import os')\n")
    line = len((repo / "pipeline_hubheads.py").read_text().splitlines())
    (finding,) = _findings(verify_repo(repo, smoke=False), "code-safety", "fail")
    assert finding.message.startswith(f"pipeline_hubheads.py:{line} calls exec()")


def test_a_reference_to_another_repo_is_a_warning(exports, tmp_path):
    repo = _copy(exports, "binary", tmp_path)
    _edit_config(repo, auto_map={"AutoTokenizer": [None, "other/repo--tokenization_x.XTokenizerFast"]})
    report = verify_repo(repo, smoke=False)
    assert report.ok
    (external,) = _findings(report, "remote-code", "warn")
    assert "other/repo--tokenization_x.XTokenizerFast" in external.message


def test_the_smoke_run_is_skipped_when_a_static_check_failed(exports, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the smoke run must not start")

    monkeypatch.setattr(verify_module, "run_stock_pipelines", must_not_run)
    repo = _copy(exports, "binary", tmp_path)
    _bad_threshold(repo)
    report = verify_repo(repo)
    assert report.findings[-1].check == "smoke-run" and report.findings[-1].status == "warn"
    assert "Skipped" in report.findings[-1].message


def _output(results, module="transformers_modules.x.pipeline_hubheads"):
    return {
        "transformers_version": "9.9.9",
        "pipeline_class": "HubheadsTextClassificationPipeline",
        "pipeline_module": module,
        "results": [results],
    }


def _pipelines(fake):
    """`run_stock_pipelines` (verify's smoke run: a consumer's load, then one with uninitialised memory filled) from
    a fake of `run_stock_pipeline` that answers one request."""

    def run(hf_home, requests, python=None):
        return [fake(request["repo_id"], hf_home, request["calls"], python=python) for request in requests]

    return run


def _consumer_crash(*args, **kwargs):
    raise RuntimeError("The consumer process failed (exit 1):\nTraceback ...\nImportError: cannot import name 'x'")


@pytest.mark.parametrize(
    "kind, fake, words",
    [
        ("binary", lambda *a, **k: _output([{"label": "LABEL_7", "score": 0.9}] * 3), "LABEL_7"),
        (
            "binary",
            lambda *a, **k: _output([{"label": "LABEL_0", "score": 0.9}] * 3, module="transformers.pipelines"),
            "not the repo's pipeline_hubheads",
        ),
        ("multi-label", lambda *a, **k: _output([{"label": "sarcasm", "score": 0.9}] * 3), "list of labels"),
        ("multi-task", lambda *a, **k: _output([{"label": "trusted", "score": 0.9}] * 3), "`tasks`"),
        ("binary", _consumer_crash, "ImportError: cannot import name 'x'"),
    ],
    ids=["unknown-label", "stock-pipeline-ran", "multi-label-not-a-set", "no-tasks", "crash"],
)
def test_the_smoke_run_output_is_checked(exports, monkeypatch, kind, fake, words):
    monkeypatch.setattr(verify_module, "run_stock_pipelines", _pipelines(fake))
    report = verify_repo(exports[kind])
    (smoke,) = _findings(report, "smoke-run", "fail")
    assert words in smoke.message, smoke.message


def test_the_smoke_run_passes_bio_and_lang(exports, monkeypatch):
    calls = []

    def fake(repo_id, hf_home, requested, python=None):
        calls.extend(requested)
        return _output([{"label": "LABEL_1", "score": 0.9}] * 3)

    monkeypatch.setattr(verify_module, "run_stock_pipelines", _pipelines(fake))
    assert verify_repo(exports["bio"]).ok and "bio" in calls[0]["kwargs"]
    calls.clear()
    assert verify_repo(exports["binary"]).ok and calls[0]["kwargs"] == {"lang": "it"}


def _offline_cache(hf_home: Path, monkeypatch) -> Path:
    """Point huggingface_hub at `hf_home`'s hub cache, offline; returns the cache folder. (huggingface_hub read both
    variables when it was imported; snapshot_download reads the constants at call time.)"""
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hf_home / "hub"


def test_a_repo_id_is_verified_from_the_offline_cache(exports, hf_home, monkeypatch):
    commit = install_in_offline_cache(
        exports["binary"], "org/tiny-reclaim", cache_dir=_offline_cache(hf_home, monkeypatch)
    )
    report = verify_repo("org/tiny-reclaim", smoke=False)
    assert report.ok, report.format()
    assert report.target == "org/tiny-reclaim"
    assert report.folder == (hf_home / "hub" / "models--org--tiny-reclaim" / "snapshots" / commit).resolve()
    with pytest.raises(FileNotFoundError, match="could not be found in the local Hugging Face cache or on the Hub"):
        verify_repo("org/not-cached", smoke=False)
    with pytest.raises(FileNotFoundError, match="revision v9"):
        verify_repo("org/tiny-reclaim", smoke=False, revision="v9")


def test_bad_targets_are_refused_with_what_to_do(tmp_path):
    with pytest.raises(TypeError, match="repo id like 'org/name'"):
        verify_repo(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'no such folder!' is neither an existing folder nor a Hub repo id"):
        verify_repo("no such folder!")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="is a file"):
        verify_repo(tmp_path / "config.json")
    with pytest.raises(ValueError, match="revision='v1' applies to Hub repo ids"):
        verify_repo(tmp_path, revision="v1")


def test_the_report_serialises_and_names_failing_checks(exports, tmp_path):
    repo = _copy(exports, "binary", tmp_path)
    _corrupt_weights(repo)
    _bad_threshold(repo)
    report = verify_repo(repo, smoke=False)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["target"] == str(repo) and data["folder"] == str(repo)
    assert {"check": "weights", "status": "fail", "path": "model.safetensors"}.items() <= data["findings"][4].items()
    lines = report.format().splitlines()
    assert len(lines) == len(report.findings) + 1
    assert any(line.startswith("  FAIL  weights") for line in lines)
    assert any(line.startswith("  ok    config") for line in lines)
    assert lines[-1].startswith("FAIL:") and "thresholds, weights" in lines[-1]
    assert verify_repo(exports["binary"], smoke=False).format().splitlines()[-1].startswith("OK:")


def test_the_code_safety_scanner_sees_through_aliases():
    source = "\n".join(
        [
            "import os as o",
            "from torch import load as restore",
            "import urllib.request",
            "import builtins",
            "o.system('ls')",
            "restore('weights.pt')",
            "builtins.eval('1')",
            "from . import sibling",  # relative imports are the repo's own files
            "o.path.join('a', 'b')",
            "getattr(self, name)",
        ]
    )
    findings = scan_python_source(source, "m.py")
    assert [(finding.status, finding.message.split(",")[0]) for finding in findings] == [
        ("fail", "m.py:2 imports torch.load"),
        ("fail", "m.py:3 imports urllib.request"),
        ("fail", "m.py:4 imports builtins"),
        ("fail", "m.py:5 calls os.system()"),
        ("fail", "m.py:6 calls torch.load()"),
        ("fail", "m.py:7 calls builtins.eval()"),
        ("warn", "m.py:10 calls getattr() with an attribute name computed at run time; check every name it can take."),
    ]
    assert all(f.check == "code-safety" and f.path == "m.py" for f in findings)
    (broken,) = scan_python_source("def f(:\n", "broken.py")
    assert broken.message.startswith("broken.py:1 is not valid Python")


#: Ways to reach code by a name the source never spells out, each with the words of the finding it must produce.
OBFUSCATED = {
    "getattr-on-builtins": (
        "import builtins\ngetattr(builtins, 'ex' + 'ec')(PAYLOAD)",
        "on builtins with an attribute",
    ),
    "getattr-on-os": ("import os\ngetattr(os, 'sys' + 'tem')('true')", "on os with an attribute name computed"),
    "importlib": ("import importlib\nimportlib.import_module('sub' + 'process')", "calls importlib.import_module()"),
    "renamed-import": ("load = __builtins__['__imp' + 'ort__']", "uses __builtins__"),
    "alias-of-eval": ("run = eval\nrun(CODE)", "uses eval"),
    "globals-lookup": ("globals()['__builtins__']", "calls globals()"),
    "sys-modules": ("import sys\nsys.modules['os'].system('true')", "uses sys.modules"),
    "code-object": ("(lambda: 0).__code__.replace()", "reads .__code__"),
    "subclasses": ("().__class__.__base__.__subclasses__()", "reads .__subclasses__"),
    "blob": ("import base64\nbase64.b64decode('cHJpbnQoMSk=')", "imports base64"),
    "hex-blob": ("bytes.fromhex('7072696e74283129')", "calls bytes.fromhex()"),
    "rot13": ("'cevag(1)'.encode('rot13')", "'rot13' codec"),
    "ctypes": ("import ctypes", "runs native code"),
    "marshal": ("import marshal", "loads code objects"),
    "compile": ("compile(CODE, 'x', 'exec')", "calls compile()"),
    "module-namespace": ("import os\nos.__dict__['sys' + 'tem']('true')", "os.__dict__"),
    "getattr-on-import": ("getattr(__import__('os'), name)('true')", "calls __import__()"),
}


@pytest.mark.parametrize("name", OBFUSCATED)
def test_the_scan_flags_names_built_at_run_time(name):
    source, words = OBFUSCATED[name]
    failures = [f.message for f in scan_python_source(source, "evil.py") if f.status == "fail"]
    assert any(words in message for message in failures), failures


def _plant_payload(repo: Path, payload: str) -> None:
    """A pipeline module that subclasses the repo's own (so it loads) and runs `payload` when it is imported;
    `custom_pipelines` points at it, as an attacker's repo would."""
    (repo / "pipeline_extra.py").write_text(
        "from .pipeline_hubheads import HubheadsTextClassificationPipeline\n"
        f"{payload}\n"
        "class ExtraPipeline(HubheadsTextClassificationPipeline):\n    pass\n"
    )
    config = json.loads((repo / "config.json").read_text())
    config["custom_pipelines"]["text-classification"]["impl"] = "pipeline_extra.ExtraPipeline"
    (repo / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("name", ["getattr-on-builtins", "importlib", "renamed-import", "alias-of-eval"])
@pytest.mark.parametrize("allowed", [False, True], ids=["default", "allow-unknown-code"])
def test_an_obfuscated_payload_is_refused_and_never_executed(exports, tmp_path, name, allowed):
    marker = tmp_path / "executed"
    write_marker = f"open({str(marker)!r}, 'w').write('pwned')"
    payload = {
        "getattr-on-builtins": f"import builtins\ngetattr(builtins, 'ex' + 'ec')({write_marker!r})",
        "importlib": f"import importlib\nimportlib.import_module('o' + 's').system('touch {marker}')",
        "renamed-import": f"load = __builtins__['__imp' + 'ort__']\nload('o' + 's').system('touch {marker}')",
        "alias-of-eval": f"run = eval\nrun({write_marker!r})",
    }[name]
    repo = _copy(exports, "binary", tmp_path)
    _plant_payload(repo, payload)
    report = verify_repo(repo, allow_unknown_code=allowed)  # with the smoke run
    assert not report.ok and "code-safety" in _failed(report), report.format()
    assert [f.path for f in _findings(report, "code-safety", "fail")][0] == "pipeline_extra.py"
    assert ("unknown-code" in _failed(report)) is not allowed
    assert (
        report.findings[-1].check == "smoke-run" and "nothing of the repo was executed" in report.findings[-1].message
    )
    assert not marker.exists(), "verify executed the payload"


def test_allowed_unknown_code_runs_without_credentials_or_the_users_home(exports, tmp_path, monkeypatch):
    """What the scan cannot see runs in the smoke run only once allowed, and then without the user's secrets: no
    token in the environment, an empty throwaway HOME, the Hub offline. It can still write by absolute path: verify is
    a review aid, not a sandbox (README says so)."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    seen = tmp_path / "seen.json"
    repo = _copy(exports, "binary", tmp_path)
    _plant_payload(repo, f"import json, os\nopen({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))")
    refused = verify_repo(repo)
    assert _failed(refused) == {"unknown-code"} and not seen.exists()
    report = verify_repo(repo, allow_unknown_code=True)
    assert report.ok, report.format()
    assert "ExtraPipeline" in _findings(report, "smoke-run", "ok")[0].message
    environment = json.loads(seen.read_text())
    assert not {"HF_TOKEN", "AWS_SECRET_ACCESS_KEY"} & set(environment)
    assert "hf_secret_token" not in seen.read_text() and "aws-secret" not in seen.read_text()
    assert environment["HOME"] != str(Path.home()) and "hubheads-verify-" in environment["HOME"]
    assert environment["HF_HUB_OFFLINE"] == "1"


def _link_out(repo: Path, tmp_path: Path) -> Path:
    secret = tmp_path / "secrets.txt"
    secret.write_text("AWS_SECRET_ACCESS_KEY=do-not-upload\n")
    (repo / "notes.txt").symlink_to(secret)
    return secret


def test_a_symlink_out_of_the_repo_fails(exports, tmp_path):
    repo = _copy(exports, "binary", tmp_path)
    secret = _link_out(repo, tmp_path)
    (repo / "card.md").symlink_to("README.md")  # inside the repo, but to nothing
    (repo / "vocab.txt").write_text("a\n")
    (repo / "copy.txt").symlink_to(repo / "vocab.txt")  # inside the repo: fine
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "extra").symlink_to(outside, target_is_directory=True)
    report = verify_repo(repo, smoke=False)
    assert _failed(report) == {"symlinks"}, report.format()
    messages = {f.path: f.message for f in _findings(report, "symlinks", "fail")}
    assert set(messages) == {"notes.txt", "card.md", "extra"}
    assert f"notes.txt is a symlink to {secret.resolve()}, outside the repo" in messages["notes.txt"]
    assert "symlink to nothing" in messages["card.md"]


def test_released_files_record_the_current_modeling_files():
    current = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((ROOT / "modeling").glob("*.py"))
        if path.name != "__init__.py"
    }
    assert modeling_file_hashes() == current
    assert load_released_files().get(__version__) == current, (
        f"modeling/ differs from the hashes recorded for hubheads {__version__} in "
        "src/hubheads/data/released_files.json, so `hubheads verify` would call fresh exports modified: run "
        f"`python -m hubheads.verify --record` (bump the version first if {__version__} is already released)."
    )


def test_record_release_adds_a_version_and_keeps_the_others(tmp_path, monkeypatch):
    path = tmp_path / "released_files.json"
    path.write_text(json.dumps({"0.0.1": {"pipeline_hubheads.py": "0" * 64}}))
    monkeypatch.setattr(verify_module, "RELEASED_FILES", path)
    assert record_release("0.2.0") == path
    assert load_released_files() == {"0.0.1": {"pipeline_hubheads.py": "0" * 64}, "0.2.0": modeling_file_hashes()}


def test_files_from_an_older_release_match_it_and_mixed_versions_warn(exports, tmp_path, monkeypatch):
    current = modeling_file_hashes()
    older = {**current, "configuration_hubheads.py": "0" * 64}
    newer = {**current, "pipeline_hubheads.py": "1" * 64}
    path = tmp_path / "released_files.json"
    path.write_text(json.dumps({"0.0.9": older, "0.0.10": newer}))
    monkeypatch.setattr(verify_module, "RELEASED_FILES", path)
    report = verify_repo(exports["binary"], smoke=False)
    assert report.ok
    assert {f.message for f in _findings(report, "hubheads-files", "ok")} == {
        "configuration_hubheads.py, handler.py match hubheads 0.0.10.",
        "pipeline_hubheads.py match hubheads 0.0.9.",
    }
    (mixed,) = _findings(report, "hubheads-files", "warn")
    assert "different versions (0.0.10, 0.0.9)" in mixed.message


def test_cli_verify_exit_codes_and_json(exports, tmp_path, capsys):
    from hubheads_cli import main

    assert main(["verify", str(exports["binary"]), "--no-smoke"]) == 0
    assert "OK:" in capsys.readouterr().out
    repo = _copy(exports, "binary", tmp_path)
    _edit_config(repo, best_threshold_global=1.7)
    assert main(["verify", str(repo), "--no-smoke", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {f["check"] for f in report["findings"] if f["status"] == "fail"} == {"thresholds"}
    unknown = _copy(exports, "multi-task", tmp_path)
    (unknown / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    assert main(["verify", str(unknown), "--no-smoke"]) == 1
    assert "FAIL  unknown-code" in capsys.readouterr().out
    assert main(["verify", str(unknown), "--no-smoke", "--allow-unknown-code"]) == 0


#: The buffer pattern of Alibaba-NLP/new-impl (gte-multilingual-base's code), written for transformers 4.x: rotary
#: `inv_freq` and, through a helper `__init__` calls, `cos_cached`/`sin_cached`, and the embeddings' `position_ids`,
#: all non-persistent, with an `_init_weights` that touches only Linear, Embedding and LayerNorm.
NEW_IMPL_BUFFERS = """import torch
from torch import nn
from transformers import PreTrainedModel


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._set_cos_sin_cache(max_position_embeddings, torch.get_default_dtype())

    def _set_cos_sin_cache(self, seq_len, dtype):
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos().to(dtype), persistent=False)
        self.register_buffer("sin_cached", emb.sin().to(dtype), persistent=False)


class NewEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings), persistent=False)


class NewPreTrainedModel(PreTrainedModel):
    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
"""
#: (owner, buffer) of each `register_buffer` in NEW_IMPL_BUFFERS, in line order.
NEW_IMPL_UNRESTORED = [
    ("RotaryEmbedding", "inv_freq"),
    ("RotaryEmbedding", "cos_cached"),
    ("RotaryEmbedding", "sin_cached"),
    ("NewEmbeddings", "position_ids"),
]


def _register_lines(source: str) -> list[int]:
    return [number for number, line in enumerate(source.splitlines(), 1) if "register_buffer(" in line]


def test_a_buffer_left_uninitialised_on_transformers_5_fails_with_file_line_and_name(exports, tmp_path, monkeypatch):
    monkeypatch.setattr(verify_module, "run_stock_pipelines", _consumer_crash)  # must not be reached
    repo = _copy(exports, "binary", tmp_path)
    (repo / "modeling_new.py").write_text(NEW_IMPL_BUFFERS)
    unloaded = verify_repo(repo, smoke=False, allow_unknown_code=True)  # a file no load runs: warnings
    assert unloaded.ok and len(_findings(unloaded, "buffer-init", "warn")) == len(NEW_IMPL_UNRESTORED)
    assert all("no load of this repo runs the file" in f.message for f in _findings(unloaded, "buffer-init", "warn"))
    _edit_config(repo, auto_map={"AutoModel": "modeling_new.NewPreTrainedModel"})
    report = verify_repo(repo, allow_unknown_code=True)
    assert _failed(report) == {"buffer-init"}, report.format()
    failures = _findings(report, "buffer-init", "fail")
    expected = zip(_register_lines(NEW_IMPL_BUFFERS), NEW_IMPL_UNRESTORED, strict=True)
    starts = [
        f"modeling_new.py:{line} {owner} registers the non-persistent buffer `{name}`"
        for line, (owner, name) in expected
    ]
    assert [finding.message[: len(start)] for finding, start in zip(failures, starts)] == starts, report.format()
    for finding in failures:
        assert finding.path == "modeling_new.py"
        assert "transformers >= 5.0" in finding.message and "uninitialised memory" in finding.message
        assert "`_init_weights`" in finding.message and "`forward`" in finding.message
        assert "persistent=True" in finding.message and "the repo does not load there" in finding.message
    assert report.findings[-1].check == "smoke-run" and "Skipped" in report.findings[-1].message


ROPE = """import torch
from torch import nn
from transformers import PreTrainedModel


class RotaryEmbedding(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq", self.compute_inv_freq(), persistent=False)

    def compute_inv_freq(self):
        return 1.0 / (10000.0 ** (torch.arange(0, self.dim, 2).float() / self.dim))

    def forward(self, positions):
        return torch.outer(positions, self.inv_freq)


class TinyPreTrainedModel(PreTrainedModel):
    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(std=0.02)
"""
RESTORE_AT = "        if isinstance(module, nn.Linear):\n"


def _restore(line: str):
    return lambda source: source.replace(RESTORE_AT, f"        {line}\n{RESTORE_AT}")


#: ROPE as written for 4.x and changed, each with whether the buffer-init check must flag it.
ROPE_VARIANTS = {
    "as-written": (lambda source: source, True),
    "persistent-from-a-variable": (lambda source: source.replace("persistent=False", "persistent=keep"), True),
    "name-from-a-variable": (lambda source: source.replace('"inv_freq", self', "name, self"), True),
    "restored-in-place": (_restore("module.inv_freq.copy_(module.compute_inv_freq())"), False),
    "restored-as-transformers-5-does": (_restore("init.copy_(module.inv_freq, module.compute_inv_freq())"), False),
    "restored-by-a-method": (
        lambda source: _restore("module.reset_buffers()")(source).replace(
            "    def forward(",
            "    def reset_buffers(self):\n        self.inv_freq = self.compute_inv_freq()\n\n    def forward(",
        ),
        False,
    ),
    "persistent": (lambda source: source.replace(", persistent=False", ""), False),
    "computed-in-forward": (
        lambda source: source.replace(
            '        self.register_buffer("inv_freq", self.compute_inv_freq(), persistent=False)\n', ""
        ).replace("positions, self.inv_freq)", "positions, self.compute_inv_freq())"),
        False,
    ),
}


@pytest.mark.parametrize("variant", ROPE_VARIANTS)
def test_the_buffer_check_flags_only_buffers_left_unrestored(exports, tmp_path, variant):
    change, flagged = ROPE_VARIANTS[variant]
    source = change(ROPE)
    assert source != ROPE or variant == "as-written"
    repo = _copy(exports, "binary", tmp_path)
    (repo / "modeling_rope.py").write_text(source)
    _edit_config(repo, auto_map={"AutoModel": "modeling_rope.TinyPreTrainedModel"})
    report = verify_repo(repo, smoke=False, allow_unknown_code=True)
    if flagged:
        (failure,) = _findings(report, "buffer-init", "fail")
        assert failure.message.startswith(f"modeling_rope.py:{_register_lines(source)[0]} RotaryEmbedding registers")
    else:
        assert report.ok, report.format()
        (ok,) = _findings(report, "buffer-init", "ok")
        assert ok.message.startswith("1 unknown Python file(s) read")


def test_another_repos_code_that_leaves_buffers_unrestored_is_a_warning(exports, tmp_path, hf_home, monkeypatch):
    """The author cannot fix code in another repo: a warning that says consumers on transformers 5 cannot run the
    repo and names the route out; a code repo that is not cached is said to be unread, one that restores passes."""
    cache = _offline_cache(hf_home, monkeypatch)
    code = tmp_path / "new-impl"
    code.mkdir()
    (code / "modeling.py").write_text(
        NEW_IMPL_BUFFERS + "\n\nclass NewForSequenceClassification(NewPreTrainedModel):\n    pass\n"
    )
    commit = install_in_offline_cache(code, "Alibaba-NLP/new-impl", cache_dir=cache)
    fixed = tmp_path / "fixed-impl"
    fixed.mkdir()
    (fixed / "modeling.py").write_text(ROPE_VARIANTS["restored-in-place"][0](ROPE))
    install_in_offline_cache(fixed, "org/fixed-impl", cache_dir=cache)
    repo = _copy(exports, "binary", tmp_path)
    auto_map = {
        "AutoModelForSequenceClassification": "Alibaba-NLP/new-impl--modeling.NewForSequenceClassification",
        "AutoModel": "org/fixed-impl--modeling.TinyPreTrainedModel",
        "AutoConfig": "org/uncached--configuration.XConfig",
    }
    _edit_config(repo, model_type="new", auto_map=auto_map)
    report = verify_repo(repo, smoke=False)
    assert report.ok, report.format()
    warnings = _findings(report, "buffer-init", "warn")
    (broken,) = [f for f in warnings if "Alibaba-NLP/new-impl" in f.message]
    assert broken.path == "config.json" and f"cached commit {commit[:12]}" in broken.message
    sites = zip(_register_lines(NEW_IMPL_BUFFERS), NEW_IMPL_UNRESTORED, strict=True)
    for line, (owner, name) in sites:
        assert f"modeling.py:{line} {owner}.{name}" in broken.message
    assert "will not run for consumers on transformers >= 5.0" in broken.message
    assert "without --keep-remote-code" in broken.message and "point `auto_map` at them" in broken.message
    (unread,) = [f for f in warnings if "org/uncached" in f.message]
    assert (
        "no Python files in the local Hugging Face cache" in unread.message
        and "hf download org/uncached" in unread.message
    )
    (ok,) = _findings(report, "buffer-init", "ok")
    assert "org/fixed-impl's code" in ok.message


def test_hubheads_own_files_restore_every_buffer():
    """Every file hubheads writes into repos passes the buffer rule, so an export never trips its own check."""
    package = resources.files("hubheads.modeling")
    trees = {entry.name: ast.parse(entry.read_text()) for entry in package.iterdir() if entry.name.endswith(".py")}
    assert trees and code_scan.unrestored_buffers(trees) == []


#: `_init_weights` bodies (after `def _init_weights(self, module):`) and the buffers of NEW_IMPL_BUFFERS each leaves
#: unrestored: the rule reads writes by attribute name, through the functions `_init_weights` calls.
RESTORING_BODIES = {
    "copies-one-from-another": (
        "module.inv_freq.copy_(module.position_ids)",
        {"cos_cached", "sin_cached", "position_ids"},
    ),
    "calls-the-helper-init-calls": (
        "module._set_cos_sin_cache(8, torch.float32)",
        {"inv_freq", "position_ids"},
    ),
    "assigns-data-and-slices": (
        "module.inv_freq.data = x\n        module.position_ids[:] = y\n        setattr(module, 'cos_cached', z)",
        {"sin_cached"},
    ),
    "torch-init-functions": (
        "nn.init.zeros_(module.inv_freq)\n        zeros_(module.position_ids)",
        {"cos_cached", "sin_cached"},
    ),
}


@pytest.mark.parametrize("body", RESTORING_BODIES)
def test_the_buffer_rule_reads_writes_by_name(body):
    text, unrestored = RESTORING_BODIES[body]
    source = (
        NEW_IMPL_BUFFERS
        + f"\n\nclass Other(NewPreTrainedModel):\n    def _init_weights(self, module):\n        {text}\n"
    )
    found = code_scan.unrestored_buffers({"modeling.py": ast.parse(source)})
    assert {buffer.name for buffer in found} == unrestored


def test_the_buffer_rule_reads_how_a_buffer_is_registered():
    source = (
        "class M(nn.Module):\n"
        "    def __init__(self):\n"
        "        self.register_buffer('a', torch.ones(1), False)\n"  # persistent given by position
        "        self.register_buffer('b', None, persistent=False)\n"  # no tensor: nothing to fill
        "        self.register_buffer(name='c', tensor=torch.ones(1), persistent=True)\n"
        "        self.register_buffer(f'd{i}', torch.ones(1), persistent=False)\n"  # a computed name is never restored
        "\n"
        "    def forward(self):\n"
        "        self.register_buffer('e', torch.ones(1), persistent=False)\n"  # filled when it runs, not when built
    )
    found = code_scan.unrestored_buffers({"m.py": ast.parse(source)})
    assert [(buffer.line, buffer.owner, buffer.name) for buffer in found] == [(3, "M", "a"), (6, "M", "f'd{i}'")]
