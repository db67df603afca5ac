"""`push_folder` onto a repo already published on the Hub, through the real huggingface_hub and a `FakeHub`.

The published repo is one as found on the Hub: a plain DistilBERT classifier (config.json without `custom_pipelines`,
so consumers load it without `trust_remote_code`), pickle-era weights next to it (pytorch_model.bin,
training_args.bin, tf_model.h5, rust_model.ot), an ONNX export in a subfolder and its author's README.md. The folder
pushed is a hubheads export with thresholds, whose config.json declares the hubheads pipeline (remote code).

A push that would leave legacy files behind (the repo would fail `hubheads verify`) is refused unless they are deleted
in the same commit (`delete_legacy=True`); a push that adds remote code to a main branch consumers load without it is
refused unless it goes to a pull request or a branch, or `allow_breaking_main=True`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny
from fakehub import (
    IGNORE_LFS_DATA_WARNING,
    LFS_HOST,
    FakeHub,
    committed_files,
    deleted_paths,
    sha256,
)
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from hubheads import export_model, install_in_offline_cache
from hubheads.push import push_folder
from hubheads.repo_files import PICKLE_SUFFIXES
from hubheads.verify import verify_repo

pytestmark = IGNORE_LFS_DATA_WARNING

REPO_ID = "org/name"
LEGACY = ["pytorch_model.bin", "rust_model.ot", "tf_model.h5", "training_args.bin"]  # sorted, as push_folder lists
AUTHOR_README = b"---\nlicense: mit\n---\n# org/name\n\nA DistilBERT classifier, fine-tuned by its author.\n"


@pytest.fixture
def repo(tmp_path) -> Path:
    """The folder to push: an export with a threshold, so its config.json declares the hubheads pipeline."""
    out = tmp_path / "repo"
    export_model(tiny.save_checkpoint(tmp_path / "ckpt"), out, threshold=0.6)
    assert "custom_pipelines" in json.loads((out / "config.json").read_text())
    return out


@pytest.fixture
def published(hub, repo) -> dict[str, bytes]:
    """`REPO_ID` as published before hubheads: a plain config, legacy weights, an ONNX export and a README."""
    config = json.loads((repo / "config.json").read_text())
    hubheads_keys = ("custom_pipelines", "auto_map", "hubheads_version")
    plain = {key: value for key, value in config.items() if key not in hubheads_keys and "threshold" not in key}
    files = {
        "config.json": json.dumps(plain, indent=2).encode(),
        "pytorch_model.bin": b"PK\x03\x04 pickled state dict",
        "training_args.bin": b"PK\x03\x04 pickled TrainingArguments",
        "tf_model.h5": b"\x89HDF\r\n\x1a\n keras weights",
        "rust_model.ot": b"rust-bert weights",
        "onnx/model.onnx": b"\x08\x07 onnx graph",
        "README.md": AUTHOR_README,
    }
    hub.publish(REPO_ID, files)
    return files


def exported(folder: Path) -> dict[str, bytes]:
    """The files of an export, as `push_folder` uploads them (the export is flat)."""
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def without_legacy(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name: content for name, content in files.items() if name not in LEGACY}


def pickles(files: dict[str, bytes]) -> list[str]:
    return sorted(name for name in files if name.lower().endswith(PICKLE_SUFFIXES))


def commit_calls(hub: FakeHub) -> list[tuple[str, str]]:
    return [call for call in hub.calls if "/commit/" in call[1]]


def test_pushing_onto_main_is_refused_while_legacy_files_remain(hub, repo, published):
    with pytest.raises(ValueError, match="--delete-legacy") as refused:
        push_folder(repo, REPO_ID, smoke=False)
    message = str(refused.value)
    assert all(name in message for name in LEGACY), message
    assert "onnx/model.onnx" not in message and "README.md" not in message
    assert hub.calls == [  # the repo was read, nothing was created or committed
        ("GET", "/api/models/org/name/tree/main"),
        ("HEAD", "/org/name/resolve/main/config.json"),
        ("GET", "/org/name/resolve/main/config.json"),
    ]
    assert hub.commits == [] and hub.lfs_uploads == {} and hub.tree(REPO_ID) == published
    assert not (hub.cache_dir / "models--org--name").exists(), "config.json was read, not cached for the user"


def test_deleting_legacy_files_on_main_is_still_refused_when_it_breaks_consumers(hub, repo, published):
    with pytest.raises(ValueError, match="--create-pr") as refused:
        push_folder(repo, REPO_ID, delete_legacy=True, smoke=False)
    assert "--branch" in str(refused.value) and "--allow-breaking-main" in str(refused.value)
    assert not any(method == "POST" for method, _ in hub.calls), "nothing may be created or committed"
    assert hub.commits == [] and hub.tree(REPO_ID) == published


def test_a_pull_request_deletes_the_legacy_files_in_its_one_commit(hub, repo, published):
    result = push_folder(repo, REPO_ID, create_pr=True, delete_legacy=True, smoke=False)

    assert hub.calls == [
        ("GET", "/api/models/org/name/tree/main"),
        ("HEAD", "/org/name/resolve/main/config.json"),
        ("GET", "/org/name/resolve/main/config.json"),
        ("POST", "/api/repos/create"),  # 409, which exist_ok accepts
        ("GET", "/api/models/org/name/tree/main"),  # upload_folder matches delete_patterns against the repo
        ("POST", "/api/models/org/name/preupload/main"),
        ("POST", "/org/name.git/info/lfs/objects/batch"),
        ("PUT", f"/{sha256(repo / 'model.safetensors')}"),
        ("POST", "/org/name.git/info/lfs/objects/verify"),
        ("POST", "/api/models/org/name/commit/main"),
    ]
    (commit,) = hub.commits
    assert commit["params"] == {"create_pr": "1"} and commit["ref"] == "refs/pr/1"
    assert sorted(deleted_paths(commit)) == LEGACY, "exactly the legacy files, not the ONNX export nor the README"
    assert set(committed_files(commit)) == set(exported(repo)), "README.md is not in the folder, so not uploaded"
    assert result.deleted == LEGACY
    assert result.stale == ["onnx/model.onnx"], "an export of the previous weights, kept and reported"
    assert result.pr_url == f"{constants.ENDPOINT}/{REPO_ID}/discussions/1" and result.commit_oid == commit["oid"]
    assert hub.tree(REPO_ID) == published, "main is unchanged until the pull request is merged"
    assert hub.tree(REPO_ID, "refs/pr/1") == without_legacy(published) | exported(repo)


def _install(files: dict[str, bytes], folder: Path, cache: Path, revision: str) -> None:
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    install_in_offline_cache(folder, REPO_ID, cache_dir=cache, revision=revision)


def test_a_branch_without_the_legacy_files_passes_verify_while_main_still_fails(
    hub, repo, published, tmp_path, monkeypatch
):
    result = push_folder(repo, REPO_ID, branch="hubheads", delete_legacy=True, smoke=False)

    assert commit_calls(hub) == [("POST", "/api/models/org/name/commit/hubheads")]
    (commit,) = hub.commits
    assert commit["ref"] == "hubheads" and sorted(deleted_paths(commit)) == LEGACY and result.deleted == LEGACY
    branch = hub.tree(REPO_ID, "hubheads")
    assert pickles(branch) == [] and branch["onnx/model.onnx"] == published["onnx/model.onnx"]
    assert branch == without_legacy(published) | exported(repo)
    assert hub.tree(REPO_ID) == published and pickles(hub.tree(REPO_ID)) == LEGACY
    assert result.revision == "hubheads" and result.usage.endswith(f'revision="{result.commit_oid}")')

    # What a consumer downloads of each revision, verified from an offline cache as `hubheads verify` does.
    cache = tmp_path / "consumer" / "hub"
    _install(branch, tmp_path / "branch-files", cache, "hubheads")
    _install(hub.tree(REPO_ID), tmp_path / "main-files", cache, "main")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # snapshot_download reads the constants at call time
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    report = verify_repo(REPO_ID, revision="hubheads", smoke=False)
    assert report.ok, report.format()
    main = verify_repo(REPO_ID, smoke=False)
    assert not main.ok and "weights" in {finding.check for finding in main.findings if finding.status == "fail"}
    flagged = {finding.path for finding in main.findings if finding.check == "weights" and finding.status == "fail"}
    assert set(LEGACY) <= flagged, main.format()


def test_a_new_repo_is_pushed_without_either_refusal(hub, repo):
    result = push_folder(repo, "org/new", smoke=False)
    assert hub.calls[0] == ("GET", "/api/models/org/new/tree/main")  # 404 RepoNotFound
    assert not any(path.startswith("/org/new/resolve/") for _, path in hub.calls), "no config.json to read"
    assert commit_calls(hub) == [("POST", "/api/models/org/new/commit/main")]
    (commit,) = hub.commits
    assert deleted_paths(commit) == [] and result.deleted == [] and result.stale == []
    assert hub.tree("org/new") == exported(repo) and result.trust_remote_code


def test_a_hubheads_repo_is_pushed_onto_main_again_without_flags(hub, repo):
    previous = exported(repo) | {"config.json": (repo / "config.json").read_text().replace("0.6", "0.5").encode()}
    hub.publish(REPO_ID, previous)  # an earlier hubheads push: main already needs remote code
    result = push_folder(repo, REPO_ID, smoke=False)
    (commit,) = hub.commits
    assert set(committed_files(commit)) == {"config.json"}, "the Hub names unchanged files, which are left out"
    assert hub.tree(REPO_ID) == exported(repo) and result.deleted == []


def test_allow_breaking_main_deletes_the_legacy_files_in_one_commit_on_main(hub, repo, published):
    result = push_folder(repo, REPO_ID, delete_legacy=True, allow_breaking_main=True, smoke=False)
    assert commit_calls(hub) == [("POST", "/api/models/org/name/commit/main")]
    (commit,) = hub.commits
    assert commit["ref"] == "main" and "create_pr" not in commit["params"]
    assert sorted(deleted_paths(commit)) == LEGACY and result.deleted == LEGACY
    assert hub.tree(REPO_ID) == without_legacy(published) | exported(repo)
    assert result.revision == "main" and result.pr_url is None and result.commit_oid == hub.heads[(REPO_ID, "main")]


def test_the_fake_hub_lists_and_serves_files_as_the_hub_does(hub, published):
    """The requests `push_folder` reads a repo with, answered by the fake Hub: paginated listings, regular and LFS
    downloads into the test's cache, and the errors huggingface_hub maps to its exceptions."""
    api = HfApi(token="hf_fake")
    hub.page_size = 3
    assert sorted(api.list_repo_files(REPO_ID)) == sorted(published)
    assert hub.calls.count(("GET", "/api/models/org/name/tree/main")) == 3, "8 entries (with onnx/) in pages of 3"
    (onnx,) = [entry for entry in api.list_repo_tree(REPO_ID, recursive=True) if entry.path == "onnx/model.onnx"]
    assert onnx.lfs.sha256 == sha256(published["onnx/model.onnx"]) and onnx.size == len(published["onnx/model.onnx"])

    readme = Path(api.hf_hub_download(REPO_ID, "README.md"))
    assert readme.read_bytes() == AUTHOR_README and hub.cache_dir in readme.parents
    onnx_path = Path(api.hf_hub_download(REPO_ID, "onnx/model.onnx"))
    assert onnx_path.read_bytes() == published["onnx/model.onnx"]
    (storage,) = [request for request in hub.sent if request.url.host == LFS_HOST]  # the redirect, followed
    assert storage.method == "GET" and "authorization" not in storage.headers, "no token to the storage host"
    assert (hub.cache_dir / "models--org--name" / "refs" / "main").read_text() == hub.heads[(REPO_ID, "main")]

    hub.publish(REPO_ID, {"README.md": b"# proposed\n"}, revision="refs/pr/1")  # a revision with slashes
    assert api.list_repo_files(REPO_ID, revision="refs/pr/1") == ["README.md"]
    assert Path(api.hf_hub_download(REPO_ID, "README.md", revision="refs/pr/1")).read_bytes() == b"# proposed\n"
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files(REPO_ID, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.hf_hub_download(REPO_ID, "README.md", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        api.hf_hub_download(REPO_ID, "no-such-file.json")
    with pytest.raises(RepositoryNotFoundError):
        api.list_repo_files("org/no-such-repo")
    with pytest.raises(RepositoryNotFoundError):
        api.hf_hub_download("org/no-such-repo", "config.json")


def test_a_gated_repo_is_refused_before_anything_is_created(hub, repo, published):
    hub.gated.add(REPO_ID)
    with pytest.raises(ValueError, match="org/name exists but is gated.*accept its conditions"):
        push_folder(repo, REPO_ID, create_pr=True, delete_legacy=True, smoke=False)
    assert hub.calls == [("GET", "/api/models/org/name/tree/main")] and hub.commits == []
