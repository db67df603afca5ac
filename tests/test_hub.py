"""The offline Hub cache layout, checked with huggingface_hub's own cache readers."""

import json

import pytest
import tiny
from huggingface_hub import scan_cache_dir, try_to_load_from_cache

from hubheads import export_model, install_in_offline_cache


@pytest.fixture
def repo(tmp_path):
    export_model(tiny.save_checkpoint(tmp_path / "ckpt"), tmp_path / "repo", threshold=0.6)
    return tmp_path / "repo"


def test_huggingface_hub_reads_the_layout(repo, tmp_path):
    cache = tmp_path / "cache"
    commit = install_in_offline_cache(repo, "org/name", cache_dir=cache)
    assert len(commit) == 40 and int(commit, 16) >= 0
    info = scan_cache_dir(cache)
    assert not info.warnings
    (cached,) = info.repos
    assert cached.repo_id == "org/name" and cached.repo_type == "model"
    (revision,) = cached.revisions
    assert revision.commit_hash == commit and revision.refs == frozenset({"main"})
    assert {f.file_name for f in revision.files} == {p.name for p in repo.iterdir()}
    config_path = try_to_load_from_cache("org/name", "config.json", cache_dir=cache)
    assert json.loads(open(config_path).read())["best_threshold_global"] == 0.6


def test_the_commit_id_follows_the_content(repo, tmp_path):
    cache = tmp_path / "cache"
    first = install_in_offline_cache(repo, "org/name", cache_dir=cache)
    assert install_in_offline_cache(repo, "org/name", cache_dir=cache) == first
    (repo / "postprocessing.json").write_text("{}")
    second = install_in_offline_cache(repo, "org/name", cache_dir=cache)
    assert second != first
    assert (cache / "models--org--name" / "refs" / "main").read_text() == second
    assert {r.commit_hash for r in next(iter(scan_cache_dir(cache).repos)).revisions} == {first, second}


@pytest.mark.parametrize("repo_id", ["a/b/c", "/name", "org/"])
def test_bad_repo_ids_are_refused(repo, tmp_path, repo_id):
    with pytest.raises(ValueError, match="org/name"):
        install_in_offline_cache(repo, repo_id, cache_dir=tmp_path / "cache")


def test_the_hubs_real_shapes_install(repo, tmp_path):
    """A canonical id without an org, a code-only repo (no config.json) and a pull request's ref."""
    cache = tmp_path / "cache"
    install_in_offline_cache(repo, "distilbert-base-uncased-finetuned-sst-2-english", cache_dir=cache)
    code = tmp_path / "code"
    code.mkdir()
    (code / "modeling.py").write_text("X = 1\n")
    install_in_offline_cache(code, "Alibaba-NLP/new-impl", cache_dir=cache)
    pr = install_in_offline_cache(repo, "vinai/phobert-base", cache_dir=cache, revision="refs/pr/3")
    info = {cached.repo_id: cached for cached in scan_cache_dir(cache).repos}
    assert set(info) == {
        "distilbert-base-uncased-finetuned-sst-2-english",
        "Alibaba-NLP/new-impl",
        "vinai/phobert-base",
    }
    assert {f.file_name for r in info["Alibaba-NLP/new-impl"].revisions for f in r.files} == {"modeling.py"}
    assert try_to_load_from_cache("vinai/phobert-base", "config.json", cache_dir=cache, revision="refs/pr/3")
    assert (cache / "models--vinai--phobert-base" / "refs" / "refs" / "pr" / "3").read_text() == pr
    with pytest.raises(ValueError, match="revision"):
        install_in_offline_cache(repo, "org/name", cache_dir=cache, revision="../main")


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        install_in_offline_cache(tmp_path / "nothing", "org/name", cache_dir=tmp_path / "cache")
