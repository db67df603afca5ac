"""`hubheads export` and `export_model`: what lands in the folder, what is kept, what is refused, atomicity."""

import json
import os
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import tiny
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification

from hubheads import DecisionThresholds, __version__, atomic, export_model, repo_files
from hubheads import export as export_module
from hubheads_cli import main


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    return tiny.save_checkpoint(tmp_path / "ckpt")


def test_export_writes_a_hub_ready_folder(checkpoint, tmp_path):
    out = tmp_path / "repo"
    report = export_model(checkpoint, out, threshold=0.7000000000000001, lang_thresholds={"it": 0.7})
    assert report.out_dir == out and report.pipeline_declared
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "postprocessing.json"):
        assert (out / name).is_file(), name
    for name in ("pipeline_hubheads.py", "configuration_hubheads.py"):
        shipped = resources.files("hubheads.modeling").joinpath(name).read_bytes()
        assert (out / name).read_bytes() == shipped, f"{name} must be the package's copy, byte for byte"
    config = _config(out)
    assert config["best_threshold_global"] == 0.7000000000000001
    assert config["thresholds_by_lang"] == {"it": 0.7}
    assert config["hubheads_version"] == __version__
    assert config["custom_pipelines"]["text-classification"] == {
        "impl": "pipeline_hubheads.HubheadsTextClassificationPipeline",
        "pt": ["AutoModelForSequenceClassification"],
        "tf": [],
        "type": "text",
    }
    postprocessing = json.loads((out / "postprocessing.json").read_text())
    assert DecisionThresholds.from_dict(postprocessing).to_dict() == report.thresholds
    assert postprocessing["problem_type"] == "single_label_classification"
    # The weights are the checkpoint's, untouched, and the config still loads with the stock classes.
    original, exported = load_file(checkpoint / "model.safetensors"), load_file(out / "model.safetensors")
    assert original.keys() == exported.keys() and all((original[k] == exported[k]).all() for k in original)
    assert DecisionThresholds.from_config(AutoConfig.from_pretrained(out)).to_dict() == report.thresholds
    assert not list(tmp_path.glob(".repo.*")), "no staging folder may be left behind"


def test_a_model_that_configures_nothing_stays_a_plain_repo(checkpoint, tmp_path):
    report = export_model(checkpoint, tmp_path / "repo")
    config = _config(tmp_path / "repo")
    assert not report.pipeline_declared and "custom_pipelines" not in config
    assert not list((tmp_path / "repo").glob("*.py"))
    original = _config(checkpoint)
    assert {k: v for k, v in config.items() if k != "hubheads_version"} == original


def test_thresholds_in_the_source_are_kept_and_options_override(checkpoint, tmp_path):
    config = _config(checkpoint)
    config.update(default_threshold=0.5, best_threshold_global=0.7000000000000001, thresholds_by_lang={"it": 0.7})
    (checkpoint / "config.json").write_text(json.dumps(config))
    (checkpoint / "postprocessing.json").write_text(json.dumps({"thresholds_by_lang": {"es": 0.55, "it": 0.2}}))
    report = export_model(checkpoint, tmp_path / "repo", lang_thresholds={"en": 0.4})
    assert report.thresholds == {
        "default_threshold": 0.5,
        "best_threshold_global": 0.7000000000000001,
        "thresholds_by_lang": {"es": 0.55, "it": 0.7, "en": 0.4},  # config.json wins over postprocessing.json
    }
    report = export_model(checkpoint, tmp_path / "repo", threshold=0.6, force=True)
    assert report.thresholds["best_threshold_global"] == 0.6


def test_multi_label_switch_and_label_thresholds(tmp_path):
    checkpoint = tiny.save_checkpoint(
        tmp_path / "ckpt", num_labels=len(tiny.MULTI_LABELS), id2label=dict(enumerate(tiny.MULTI_LABELS))
    )
    with pytest.raises(ValueError, match="multi-label"):
        export_model(checkpoint, tmp_path / "repo", label_thresholds={"sarcasm": 0.4})
    with pytest.raises(ValueError, match="sarcsm"):
        export_model(checkpoint, tmp_path / "repo", multi_label=True, label_thresholds={"sarcsm": 0.4})
    report = export_model(checkpoint, tmp_path / "repo", multi_label=True, label_thresholds={"sarcasm": 0.4})
    config = _config(tmp_path / "repo")
    assert config["problem_type"] == "multi_label_classification"
    assert config["label_thresholds"] == {"sarcasm": 0.4} and report.pipeline_declared
    # A multi-label model needs the pipeline even without thresholds: the stock one returns only the top label.
    assert export_model(checkpoint, tmp_path / "repo2", multi_label=True).pipeline_declared


def test_in_memory_model_and_tokenizer(tmp_path):
    model, tokenizer = tiny.build_model("bert"), tiny.build_tokenizer()
    export_model(model, tmp_path / "repo", tokenizer=tokenizer, threshold=0.65)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "repo")
    encoded = tokenizer(tiny.sample_texts(3), return_tensors="pt", padding=True)
    assert (loaded(**encoded).logits == model(**encoded).logits).all()
    with pytest.raises(ValueError, match="tokenizer"):
        export_model(model, tmp_path / "repo2")


def test_tokenizers_saved_by_transformers_5_are_named_for_4x(checkpoint, tmp_path):
    export_model(checkpoint, tmp_path / "repo", threshold=0.6)
    tokenizer_config = json.loads((tmp_path / "repo" / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] in {"PreTrainedTokenizerFast", "BertTokenizer"}


def test_a_non_empty_out_is_refused_without_force_and_replaced_with_it(checkpoint, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        export_model(checkpoint, out, threshold=0.6)
    assert (out / "notes.txt").read_text() == "mine"
    export_model(checkpoint, out, threshold=0.6, force=True)
    assert not (out / "notes.txt").exists() and _config(out)["best_threshold_global"] == 0.6
    (tmp_path / "empty").mkdir()
    export_model(checkpoint, tmp_path / "empty")  # an empty folder is fine
    with pytest.raises(ValueError, match="replace SRC"):
        export_model(checkpoint, checkpoint, force=True)


def test_an_interrupted_export_leaves_nothing_behind(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "repo"
    export_model(checkpoint, out, threshold=0.6)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_copy = repo_files.copy_resource

    def copy_then_fail(package, name, destination):
        if name == "pipeline_hubheads.py":
            raise KeyboardInterrupt  # the user hit Ctrl-C in the middle of the write
        return real_copy(package, name, destination)

    monkeypatch.setattr(repo_files, "copy_resource", copy_then_fail)
    with pytest.raises(KeyboardInterrupt):
        export_model(checkpoint, out, threshold=0.9, force=True)
    with pytest.raises(KeyboardInterrupt):
        export_model(checkpoint, tmp_path / "new", threshold=0.9)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "the previous export must survive intact"
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "repo"]


def test_exported_folder_is_readable_like_the_source(checkpoint, tmp_path):
    export_model(checkpoint, tmp_path / "repo", threshold=0.6)
    assert oct((tmp_path / "repo").stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_pickle_only_checkpoints_are_refused_with_a_conversion_hint(checkpoint, tmp_path):
    (checkpoint / "model.safetensors").rename(checkpoint / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"(?s)pickle weights \(pytorch_model.bin\).*save_pretrained"):
        export_model(checkpoint, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_pickles_and_trainer_leftovers_next_to_safetensors_are_left_out(checkpoint, tmp_path):
    for name in ("training_args.bin", "optimizer.pt", "results.tar.gz"):
        (checkpoint / name).write_bytes(b"\x80\x04pickle")
    (checkpoint / "checkpoint-500").mkdir()
    report = export_model(checkpoint, tmp_path / "repo")
    assert set(report.skipped) == {"training_args.bin", "optimizer.pt", "results.tar.gz", "checkpoint-500"}
    assert not any((tmp_path / "repo" / name).exists() for name in report.skipped)


@pytest.mark.parametrize(
    "setup, match",
    [
        (lambda c: (c / "config.json").unlink(), "no config.json"),
        (lambda c: (c / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda c: (c / "model.safetensors").unlink(), "no \\*.safetensors"),
        (lambda c: [(c / n).unlink() for n in ("tokenizer.json", "tokenizer_config.json")], "no tokenizer"),
    ],
)
def test_broken_sources_are_refused(checkpoint, tmp_path, setup, match):
    setup(checkpoint)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        export_model(checkpoint, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_cli_export(checkpoint, tmp_path, capsys):
    out = tmp_path / "repo"
    args = ["export", str(checkpoint), str(out), "--threshold", "0.7", "--lang-threshold", "it=0.6"]
    assert main(args + ["--default-threshold", "0.5", "--lang-threshold", "ES=0.55"]) == 0
    assert "declares the hubheads pipeline" in capsys.readouterr().out
    config = _config(out)
    assert (config["default_threshold"], config["best_threshold_global"]) == (0.5, 0.7)
    assert config["thresholds_by_lang"] == {"it": 0.6, "es": 0.55}
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert main(args + ["--force", "--lang-threshold", "it=1.6"]) == 2
    assert "thresholds_by_lang['it']" in capsys.readouterr().err
    assert _config(out)["thresholds_by_lang"] == {"it": 0.6, "es": 0.55}, "a refused export changes nothing"


def test_cli_export_tokenizer_option(checkpoint, tmp_path):
    tokenizer_dir = tmp_path / "tok"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        tokenizer_dir.mkdir(exist_ok=True)
        (checkpoint / name).rename(tokenizer_dir / name)
    assert main(["export", str(checkpoint), str(tmp_path / "repo")]) == 2
    assert main(["export", str(checkpoint), str(tmp_path / "repo"), "--tokenizer", str(tokenizer_dir)]) == 0
    assert (tmp_path / "repo" / "tokenizer.json").is_file()


@pytest.mark.parametrize(
    "bad", [["--lang-threshold", "it"], ["--lang-threshold", "it=high"], ["--threshold", "x"], ["--bogus"]]
)
def test_cli_rejects_malformed_options(checkpoint, tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as exited:  # argparse's way out: exit status 2, a usage line and the error
        main(["export", str(checkpoint), str(tmp_path / "repo"), *bad])
    assert exited.value.code == 2 and "error:" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_the_console_script_runs():
    script = Path(sys.executable).parent / "hubheads"  # the installed console script, in a fresh process
    completed = subprocess.run([str(script), "export", "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "usage: hubheads export" in completed.stdout


@pytest.mark.parametrize("command", [[], ["export"], ["tune"], ["card"], ["verify"], ["push"], ["import-weights"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0 and f"usage: hubheads {' '.join(command)}".strip() in capsys.readouterr().out


def test_options_override_source_thresholds_whatever_the_case_of_the_language(checkpoint, tmp_path):
    config = _config(checkpoint)
    config["thresholds_by_lang"] = {"it": 0.7}
    (checkpoint / "config.json").write_text(json.dumps(config))
    report = export_model(checkpoint, tmp_path / "repo", lang_thresholds={"IT": 0.8, "Es": 0.6})
    assert report.thresholds["thresholds_by_lang"] == {"it": 0.8, "es": 0.6}


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_a_failed_swap_puts_the_previous_export_back(checkpoint, tmp_path, monkeypatch, mode):
    out = tmp_path / "repo"
    export_model(checkpoint, out, threshold=0.6)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # moving the new folder into place fails (e.g. the disk is full)
            raise OSError("disk full")
        return real_replace(src, dst)

    def exchange(first, second):
        if mode == "fallback":
            return False  # no atomic exchange here: two renames
        raise OSError("disk full")

    monkeypatch.setattr(atomic, "exchange", exchange)
    monkeypatch.setattr(export_module.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        export_model(checkpoint, out, threshold=0.9, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "repo"]


def test_exported_files_follow_the_umask_not_save_pretrained_private_modes(tmp_path):
    import os
    import stat

    from tiny import build_model, build_tokenizer

    export_model(build_model(), tmp_path / "repo", tokenizer=build_tokenizer(), threshold=0.6)
    umask = os.umask(0)
    os.umask(umask)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in (tmp_path / "repo").iterdir()}
    assert modes and all(mode == 0o666 & ~umask for mode in modes.values()), modes


# Runs `hubheads export` in a child process and kills it with SIGKILL at one step of the write: the real process, the
# real signal, the real file system. `mode` "fallback" takes away the atomic exchange, as on a system without one.
_KILLED_EXPORT = r"""
import os, signal, sys
from hubheads import atomic, export
from hubheads_cli import main

step, mode, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
exchange, copy2, rmtree, replace = atomic.exchange, export.shutil.copy2, export.shutil.rmtree, os.replace
if mode == "fallback":
    atomic.exchange = lambda first, second: False
elif step == "exchanged":
    atomic.exchange = lambda first, second: exchange(first, second) and kill()
if step == "copying":
    export.shutil.copy2 = lambda *args, **kwargs: (copy2(*args, **kwargs), kill())
if step == "staged":
    atomic.swap_into_place = lambda staging, out: kill()
if step == "moved-aside":
    os.replace = lambda source, target: (replace(source, target), str(target).endswith("previous") and kill())
if step == "before-cleanup":  # the old folder, moved aside or exchanged, is about to be deleted
    dying = lambda path: ".old-" in str(path) or ".tmp-" in str(path)
    export.shutil.rmtree = lambda path, *args, **kwargs: kill() if dying(path) else rmtree(path, *args, **kwargs)
sys.exit(main(argv))
"""
#: Where each kill leaves OUT: the previous export, the new one, or (only without an atomic exchange) missing until the
#: next run puts the previous one back.
KILL_STEPS = {
    ("exchange", "copying"): "old",
    ("exchange", "staged"): "old",
    ("exchange", "exchanged"): "new",
    ("exchange", "before-cleanup"): "new",
    ("fallback", "copying"): "old",
    ("fallback", "staged"): "old",
    ("fallback", "moved-aside"): "missing",
    ("fallback", "before-cleanup"): "new",
}


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("mode, step", KILL_STEPS, ids=[f"{mode}-{step}" for mode, step in KILL_STEPS])
def test_a_killed_export_leaves_out_whole_and_the_next_run_cleans_up(checkpoint, tmp_path, mode, step):
    out, reference = tmp_path / "repo", tmp_path / "reference"
    export_model(checkpoint, out, threshold=0.6)
    export_model(checkpoint, reference, threshold=0.9)
    old, new = _files(out), _files(reference)
    argv = ["export", str(checkpoint), str(out), "--threshold", "0.9", "--force"]
    child = subprocess.run([sys.executable, "-c", _KILLED_EXPORT, step, mode, *argv], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    state = KILL_STEPS[mode, step]
    if state == "missing":
        assert not out.exists() and any(tmp_path.glob(".repo.old-*"))
        atomic.recover(out)  # what the next run beside OUT does first
        state = "old"
    assert _files(out) == (old if state == "old" else new)
    leftovers = [path.name for path in tmp_path.glob(".repo.*")]
    assert all(name.startswith((".repo.tmp-", ".repo.old-")) for name in leftovers), leftovers
    assert main(argv) == 0
    assert _files(out) == new
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt", "reference", "repo"], "leftovers remain"
