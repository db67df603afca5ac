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


@pytest.mark.parametrize("repo_id", ["name", "a/b/c", "/name", "org/"])
def test_bad_repo_ids_are_refused(repo, tmp_path, repo_id):
    with pytest.raises(ValueError, match="org/name"):
        install_in_offline_cache(repo, repo_id, cache_dir=tmp_path / "cache")


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        install_in_offline_cache(tmp_path, "org/name", cache_dir=tmp_path / "cache")
