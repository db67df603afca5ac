"""`hubheads verify --transformers`: a repo run as its consumers would run it, on each transformers release.

Repos whose own code plants one of the known causes of breakage between transformers 4.x and 5.x (tests/planted_impl,
edited per cause) are checked on every release the suite has (the floor 4.46.1, 4.57.6, 5.0.0 and the newest: the
interpreters `make test` builds with `hubheads.release_envs`, as `verify --transformers` builds its own): each fails
on exactly the releases it breaks on, with its cause named, and passes on the others; clean repos of every kind pass
everywhere. One test builds a release environment through the cache as `verify` does (uv, seconds) and finds it
built the second time.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tiny
import torch
from conftest import release_pythons, transformers_version

from hubheads import export_model
from hubheads.release_check import check_many, read_result, write_result

pytestmark = pytest.mark.consumer

PLANTED_IMPL = Path(__file__).parent / "planted_impl"
#: Each planted cause: (how the code is edited, the releases it breaks on, words of the cause `verify` names).
CAUSES = {
    "clean": ({}, set(), ""),
    "buffers": (
        {"        if module is self:": "        if False:"},
        {5},
        "non-persistent buffers left uninitialised",
    ),
    "removed-import": (
        {"from transformers import PretrainedConfig": "from transformers.modeling_utils import PretrainedConfig"},
        {5},
        "an import transformers 5 removed",
    ),
    "v5-only": (
        {
            "from transformers import PretrainedConfig": "from transformers import PreTrainedConfig",
            "class PlantedConfig(PretrainedConfig):": "class PlantedConfig(PreTrainedConfig):",
        },
        {4},
        "code written for transformers 5",
    ),
    "no-post-init": ({"        self.post_init()\n": ""}, {5}, "no `post_init()`"),
}


def _planted_repo(folder: Path, edits: dict[str, str]) -> Path:
    """A repo whose model code is its own (tests/planted_impl, with `edits` applied to its two files)."""
    sys.path.insert(0, str(PLANTED_IMPL.parent))
    from planted_impl.configuration import PlantedConfig
    from planted_impl.modeling import PlantedForSequenceClassification

    torch.manual_seed(0)
    PlantedForSequenceClassification(PlantedConfig(vocab_size=len(tiny.VOCAB))).save_pretrained(folder)
    tokenizer = tiny.build_tokenizer()
    tokenizer.save_pretrained(folder)
    for name in ("configuration.py", "modeling.py"):
        source = (PLANTED_IMPL / name).read_text()
        for old, new in edits.items():
            source = source.replace(old, new)
        (folder / name).write_text(source)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="planted",
        tokenizer_class="PreTrainedTokenizerFast",  # transformers 4.46-4.53 need it named for remote-code configs
        auto_map={
            "AutoConfig": "configuration.PlantedConfig",
            "AutoModelForSequenceClassification": "modeling.PlantedForSequenceClassification",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"  # a class transformers 4 has too
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


@functools.cache
def _pythons() -> dict[str, str]:
    """The suite's release interpreters by their transformers version."""
    pythons = {}
    for param in release_pythons():
        (python,) = param.values
        pythons[transformers_version(python)] = python
    return pythons


CALLS = [{"inputs": tiny.sample_texts(6, seed=4)}]


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


#: Clean repos of every kind hubheads writes, checked in the same runs as the planted causes.
KINDS = {
    "per-language": tiny.build_thresholded_by_lang,
    "multi-task": tiny.build_residual_type_fusion,
    "gated-bio": tiny.build_gated_bio,
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> dict[str, object]:
    """Every planted cause and every clean kind, through one `check_many` (one process per release and run)."""
    tmp = tmp_path_factory.mktemp("causes")
    pythons = _pythons()
    newest = pythons[max(pythons, key=_key)]
    # Each author works on a release their code runs on: the newest 4.x for code that breaks on 5.x, else the newest.
    runs_on = [[version for version in pythons if _major(version) not in breaks] for _, breaks, _ in CAUSES.values()]
    authors = [pythons[max(versions, key=_key)] for versions in runs_on] + [newest] * len(KINDS)
    repos = [(_planted_repo(tmp / name, edits), CALLS) for name, (edits, _, _) in CAUSES.items()]
    for name, build in KINDS.items():
        export_model(build(), tmp / name, tokenizer=tiny.build_tokenizer())
        repos.append((tmp / name, [{"inputs": tiny.sample_texts(6, seed=5), "kwargs": {"lang": "it"}}]))
    found = check_many(repos, list(pythons), {}, pythons=pythons, author_python=authors)
    return {**dict(zip([*CAUSES, *KINDS], found)), "folders": dict(zip([*CAUSES, *KINDS], (r[0] for r in repos)))}


@pytest.mark.parametrize("cause", list(CAUSES))
def test_each_cause_fails_the_releases_it_breaks_on_and_names_itself(checked, cause):
    _, breaks_on, words = CAUSES[cause]
    report = checked[cause]
    assert len(report.rows) == len(_pythons())
    for row in report.rows:
        if _major(row.version) in breaks_on:
            assert not row.ok and words in (row.cause or ""), (row.version, row.cause)
        else:
            assert row.ok, (row.version, row.cause)
            assert row.loads and row.finite and row.stable and row.matches


def test_clean_repos_of_every_kind_pass_on_every_release(checked):
    for name in KINDS:
        report, folder = checked[name], checked["folders"][name]
        assert report.ok, f"{name}\n{report.format()}"
        write_result(folder, report)
        assert read_result(folder).passed == report.passed == list(_pythons())


def test_a_release_environment_is_built_once_and_cached(tmp_path, monkeypatch):
    if shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists():
        pytest.skip("uv is not installed here")
    from hubheads.release_envs import release_environment

    monkeypatch.setenv("HUBHEADS_CACHE", str(tmp_path))
    first = release_environment("4.57.6")
    again = release_environment("4.57.6")
    assert first.built and not again.built and first.builder == "uv"
    code = "import importlib.util, transformers; print(transformers.__version__, importlib.util.find_spec('hubheads'))"
    out = subprocess.run([str(again.python), "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["4.57.6", "None"], "that release, and no hubheads"


@pytest.fixture(scope="module")
def release_cache(tmp_path_factory) -> Path:
    """HUBHEADS_CACHE for this module's `verify --transformers` runs: environments built once, shared by its tests."""
    return tmp_path_factory.mktemp("hubheads-cache")


@pytest.mark.slow
def test_cli_verify_transformers_builds_checks_records_and_the_card_shows_it(tmp_path, release_cache, monkeypatch):
    from real_repos import cli

    monkeypatch.setenv("HUBHEADS_CACHE", str(release_cache))
    export_model(tiny.build_thresholded_by_lang(), tmp_path / "repo", tokenizer=tiny.build_tokenizer())
    code, out, err = cli(["verify", str(tmp_path / "repo"), "--transformers", "4.57.6,latest"])
    assert code == 0, out + err
    assert re.search(r"transformers +loads +finite +stable +", out) and out.count(" ok\n") >= 2, out
    report = read_result(tmp_path / "repo")
    assert (
        report is not None and report.ok and report.rows[0].version == "4.57.6" and report.rows[1].release == "latest"
    )
    assert cli(["card", str(tmp_path / "repo")])[0] == 0
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "## Tested transformers releases" in card and "| 4.57.6 | runs; the author's outputs |" in card
    (tmp_path / "repo" / "config.json").write_text(
        (tmp_path / "repo" / "config.json").read_text().replace("0.4", "0.45")
    )
    assert read_result(tmp_path / "repo") is None, "a result holds for the files it ran, not edited ones"
    assert cli(["verify", str(tmp_path / "repo"), "--transformers", "4.57.6,4.57"])[0] == 2, "a bad release is refused"


@pytest.mark.slow
def test_push_with_transformers_refuses_a_repo_that_fails_a_release(tmp_path, release_cache, monkeypatch, hub):
    from hubheads.push import push_folder

    monkeypatch.setenv("HUBHEADS_CACHE", str(release_cache))
    repo = _planted_repo(tmp_path / "repo", CAUSES["v5-only"][0])  # runs here (the newest), not on 4.x
    with pytest.raises(ValueError, match="failed verification") as refused:
        push_folder(repo, "org/planted", allow_unknown_code=True, trust_remote_code=True, transformers=["4.57.6"])
    assert "code written for transformers 5" in str(refused.value)
    assert not hub.heads, "nothing was pushed"
