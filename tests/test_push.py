"""`push_folder` against the real huggingface_hub, with only its HTTP transport replaced by a fake Hub (`fakehub`).

Every push first lists the target repo (`list_repo_files`, which 404s with RepoNotFound for a new repo, and falls back
to main for a branch not created yet) and, when the repo has a config.json, downloads it (HEAD and GET on `/resolve/`)
before creating the repo, the branch, and committing. See tests/test_push_in_place.py for pushes onto published repos.

The default verification starts a Python subprocess (the smoke run), so most tests pass `smoke=False`; one runs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tiny
from fakehub import IGNORE_LFS_DATA_WARNING, LFS_HOST, committed_files, sha256
from huggingface_hub import constants

from hubheads import __version__, export_model, push, verify
from hubheads.push import PushResult, push_folder

pytestmark = IGNORE_LFS_DATA_WARNING

STRAY_FILES = {"train.log", "checkpoint-500/trainer_state.json", "checkpoint-500/model.safetensors"}


@pytest.fixture
def repo(tmp_path) -> Path:
    """A clean export with thresholds (so it ships the pipeline files), plus files an export never writes."""
    out = tmp_path / "repo"
    export_model(tiny.save_checkpoint(tmp_path / "ckpt"), out, threshold=0.6, lang_thresholds={"it": 0.7})
    (out / "train.log").write_text("step 500 loss 0.1\n")
    (out / "checkpoint-500").mkdir()  # a trainer checkpoint: files the patterns match, but in a subfolder
    (out / "checkpoint-500" / "trainer_state.json").write_text('{"global_step": 500}')
    shutil.copyfile(out / "model.safetensors", out / "checkpoint-500" / "model.safetensors")
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} >= STRAY_FILES
    return out


def exported_files(folder: Path) -> set[str]:
    """The files `export_model` wrote into `folder`."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - STRAY_FILES


def test_push_commits_exactly_the_export_once(hub, repo):
    result = push_folder(repo, "org/name", token="hf_fake", smoke=False)

    weights_oid = sha256(repo / "model.safetensors")
    assert hub.calls == [
        ("GET", "/api/models/org/name/tree/main"),  # 404 RepoNotFound: a new repo, nothing to check
        ("POST", "/api/repos/create"),
        ("POST", "/api/models/org/name/preupload/main"),
        ("POST", "/org/name.git/info/lfs/objects/batch"),
        ("PUT", f"/{weights_oid}"),
        ("POST", "/org/name.git/info/lfs/objects/verify"),
        ("POST", "/api/models/org/name/commit/main"),
    ]
    create = json.loads(hub.last("/api/repos/create").content)
    assert (create["organization"], create["name"]) == ("org", "name")
    assert not create.get("private") and create.get("visibility", "public") == "public"
    for request in hub.sent:
        expected = None if request.url.host == LFS_HOST else "Bearer hf_fake"  # no token to the storage host
        assert request.headers.get("authorization") == expected, request.url
    assert dict(hub.sent[0].url.params) == {"recursive": "true", "expand": "false"}

    (commit,) = hub.commits
    assert commit["revision"] == "main" and "create_pr" not in commit["params"]
    assert commit["lines"][0] == {
        "key": "header",
        "value": {"summary": f"Upload hubheads repo (hubheads {__version__})", "description": ""},
    }
    files = committed_files(commit)
    assert set(files) == exported_files(repo) and not STRAY_FILES & set(files)
    assert {"config.json", "model.safetensors", "pipeline_hubheads.py", ".gitattributes"} <= set(files)
    weights_size = (repo / "model.safetensors").stat().st_size
    assert files["model.safetensors"] == {
        "key": "lfsFile",
        "value": {"path": "model.safetensors", "algo": "sha256", "oid": weights_oid, "size": weights_size},
    }
    assert hub.lfs_uploads == {weights_oid: (repo / "model.safetensors").read_bytes()}
    for name, line in files.items():
        if name != "model.safetensors":
            assert line["key"] == "file" and base64.b64decode(line["value"]["content"]) == (repo / name).read_bytes()

    oid = hashlib.sha1(hub.last("/commit/").content).hexdigest()
    assert hub.tree("org/name") == {name: (repo / name).read_bytes() for name in exported_files(repo)}
    assert hub.heads[("org/name", "main")] == oid
    assert result == PushResult(
        repo_id="org/name",
        commit_oid=oid,
        commit_url=f"{constants.ENDPOINT}/org/name/commit/{oid}",
        revision="main",
        pr_url=None,
        trust_remote_code=True,
    )
    assert result.usage == (
        f'pipeline("text-classification", model="org/name", trust_remote_code=True, revision="{oid}")'
    )


def test_push_to_a_branch_of_an_existing_private_repo(hub, repo):
    v1 = json.loads((repo / "config.json").read_text()) | {"best_threshold_global": 0.5}
    published = {"config.json": json.dumps(v1).encode(), "README.md": b"# v1\n"}
    hub.publish("org/name", published)  # create_repo answers 409, which exist_ok accepts
    result = push_folder(repo, "org/name", branch="dev", private=True, message="v2 thresholds", smoke=False)
    assert hub.calls == [
        ("GET", "/api/models/org/name/tree/dev"),  # 404 RevisionNotFound: the branch starts from main
        ("GET", "/api/models/org/name/tree/main"),
        ("HEAD", "/org/name/resolve/main/config.json"),
        ("GET", "/org/name/resolve/main/config.json"),
        ("POST", "/api/repos/create"),
        ("POST", "/api/models/org/name/branch/dev"),
        ("POST", "/api/models/org/name/preupload/dev"),
        ("POST", "/org/name.git/info/lfs/objects/batch"),
        ("PUT", f"/{sha256(repo / 'model.safetensors')}"),
        ("POST", "/org/name.git/info/lfs/objects/verify"),
        ("POST", "/api/models/org/name/commit/dev"),
    ]
    create = json.loads(hub.last("/api/repos/create").content)
    assert create.get("private") is True or create.get("visibility") == "private"
    assert json.loads(hub.last("/objects/batch$").content)["ref"] == {"name": "dev"}
    (commit,) = hub.commits
    assert commit["lines"][0]["value"]["summary"] == "v2 thresholds"
    assert result.revision == "dev" and result.commit_oid in result.usage and result.pr_url is None
    assert hub.tree("org/name") == published, "main is left as it was"
    exported = {name: (repo / name).read_bytes() for name in exported_files(repo)}
    assert hub.tree("org/name", "dev") == published | exported
    assert not (hub.cache_dir / "models--org--name").exists(), "config.json is read in a scratch folder, not cached"


def test_push_as_pull_request(hub, repo):
    result = push_folder(repo, "org/name", create_pr=True, smoke=False)
    (commit,) = hub.commits
    assert commit["revision"] == "main" and commit["params"] == {"create_pr": "1"} and commit["ref"] == "refs/pr/1"
    assert hub.tree("org/name") == {}, "main is left as it was (the fake Hub's new repos start empty)"
    assert set(hub.tree("org/name", "refs/pr/1")) == exported_files(repo)
    assert dict(hub.last("/preupload/").url.params) == {"create_pr": "1"}
    assert result.pr_url == f"{constants.ENDPOINT}/org/name/discussions/1"
    assert result.revision == "main" and f'revision="{result.commit_oid}"' in result.usage


def test_a_plain_repo_needs_no_remote_code(hub, tmp_path):
    out = tmp_path / "plain"
    export_model(tiny.save_checkpoint(tmp_path / "ckpt"), out)
    result = push_folder(out, "org/plain", smoke=False)
    assert result.usage == f'pipeline("text-classification", model="org/plain", revision="{result.commit_oid}")'


def test_a_failed_verification_sends_nothing_unless_forced(hub, repo):
    (repo / "pytorch_model.bin").write_bytes(b"pickled weights")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin(.|\n)*--force"):
        push_folder(repo, "org/name", smoke=False)
    assert hub.requests == [], "nothing may be sent"
    result = push_folder(repo, "org/name", force=True, smoke=False)
    (commit,) = hub.commits
    assert "pytorch_model.bin" not in committed_files(commit), "force skips the checks, not the upload patterns"
    assert result.commit_oid == hashlib.sha1(hub.last("/commit/").content).hexdigest()


def test_a_symlink_to_a_secret_is_refused_and_never_uploaded(hub, repo, tmp_path):
    secret = tmp_path / "secrets.txt"
    secret.write_bytes(b"HF_TOKEN=hf_do_not_upload\n")
    (repo / "notes.txt").symlink_to(secret)  # *.txt is an upload pattern
    with pytest.raises(ValueError, match=r"notes\.txt is a symlink to .*secrets\.txt, outside the repo(.|\n)*--force"):
        push_folder(repo, "org/name", smoke=False)
    assert hub.requests == [], "nothing may be sent"
    push_folder(repo, "org/name", force=True, smoke=False)
    (commit,) = hub.commits
    assert "notes.txt" not in committed_files(commit) and "notes.txt" not in hub.tree("org/name")
    assert set(hub.tree("org/name")) == exported_files(repo) - {"notes.txt"}
    assert not any(b"hf_do_not_upload" in request.content for request in hub.sent), "the target's content was sent"


@pytest.mark.parametrize("repo_id", ["name", "org/name/extra", "/name", "org/", "org/na me", "org/--name"])
def test_bad_repo_ids_are_refused_before_any_request(hub, repo, repo_id):
    with pytest.raises(ValueError, match="repo_id"):
        push_folder(repo, repo_id, smoke=False)
    assert hub.requests == [], "nothing may be sent"


def test_bad_folders_and_options_are_refused_before_any_request(hub, repo, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        push_folder(repo / "config.json", "org/name", smoke=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        push_folder(tmp_path / "empty", "org/name", smoke=False)
    with pytest.raises(ValueError, match="create_pr"):
        push_folder(repo, "org/name", create_pr=True, branch="dev", smoke=False)
    assert hub.requests == [], "nothing may be sent"


@pytest.mark.consumer
def test_the_default_verification_runs_the_stock_pipeline_before_pushing(hub, repo, monkeypatch):
    reports, verify_repo = [], verify.verify_repo

    def recording_verify_repo(*args, **kwargs):
        reports.append(verify_repo(*args, **kwargs))
        return reports[-1]

    monkeypatch.setattr(push, "verify_repo", recording_verify_repo)
    result = push_folder(repo, "org/name")
    (report,) = reports
    assert [(f.check, f.status) for f in report.findings if f.check == "smoke-run"] == [("smoke-run", "ok")]
    assert len(hub.commits) == 1 and result.commit_oid in result.usage


def test_cli_push_prints_the_commit_and_the_pinned_line(hub, repo, monkeypatch, capsys):
    from hubheads_cli import main

    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    assert main(["push", str(repo), "--repo-id", "org/name", "--no-smoke", "--message", "first release"]) == 0
    out = capsys.readouterr().out
    oid = re.search(r"commit ([0-9a-f]{40})", out).group(1)
    assert oid == hashlib.sha1(hub.last("/commit/main").content).hexdigest()  # the fake Hub's commit id
    assert f'model="org/name", trust_remote_code=True, revision="{oid}"' in out
    assert b"first release" in hub.last("/commit/main").content
    (repo / "pytorch_model.bin").write_bytes(b"pickle")
    before = len(hub.sent)
    assert main(["push", str(repo), "--repo-id", "org/name", "--no-smoke"]) == 2
    assert "failed verification" in capsys.readouterr().err and len(hub.sent) == before


def test_push_uploads_the_cards_figures(hub, repo):
    from hubheads.card import write_card
    from hubheads.figures import FIGURES
    from hubheads.tune import _binary_reports

    rng = np.random.default_rng(0)
    gold = (rng.random(200) < 0.4).astype(int)
    _, reports = _binary_reports(rng.random(200) * 0.5 + gold * 0.4, gold, ["it"] * 200, ["no", "yes"], "f1", 0.5, 20)
    reports = {"kind": "binary", "data": {"rows": 200, "file": "dev.jsonl"}, **reports}
    (repo / "reports.json").write_text(json.dumps(reports))
    write_card(repo)
    push_folder(repo, "org/name", token="hf_fake", smoke=False)
    (commit,) = hub.commits
    files = committed_files(commit)
    for name in FIGURES:
        assert base64.b64decode(files[name]["value"]["content"]) == (repo / name).read_bytes()
