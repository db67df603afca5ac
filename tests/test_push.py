"""`push_folder` against the real huggingface_hub, with only its HTTP transport replaced by a fake Hub.

The Hub is unreachable from the machines these tests run on, so ONLY the HTTP transport is replaced. huggingface_hub
2.x sends every request through the shared `httpx2.Client` of `get_session()` (httpx2 is the HTTP library it imports);
the `hub` fixture uses `set_client_factory` to make that client one built like huggingface_hub's default client (same
request hook, redirects, timeout) but over an `httpx2.MockTransport` whose handler, `FakeHub`, records each request and
answers as the Hub's API does. Everything above the transport is the real huggingface_hub code: `HfApi.create_repo`,
`create_branch` and `upload_folder`, its planning (allow and ignore patterns, the preupload call, sha256 hashing, the
LFS batch, upload and verify calls) and the ndjson commit payload. The fixture restores the previous client factory
and closes the cached client afterwards.

Three settings are pinned so the path is the same everywhere: `HF_HUB_DISABLE_XET`, because with `hf_xet` installed
huggingface_hub uploads through Xet storage, which hf_xet reaches from Rust beneath any Python transport (the LFS path
it takes instead goes through the transport); `HF_HUB_OFFLINE` off, since offline mode refuses every request before the
transport; and the cache file of huggingface_hub's user-agent telemetry (`/api/agent-harnesses`, fetched once a
process, answered by the fake Hub and left out of the asserted sequences) moved into the test's tmp_path.

The default verification starts a Python subprocess (the smoke run), so most tests pass `smoke=False`; one runs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
import tiny
from huggingface_hub import constants, set_client_factory
from huggingface_hub.utils import _http

from hubheads import __version__, export_model, verify
from hubheads.hub import PushResult, push_folder

# huggingface_hub's LFS upload passes raw bytes as `data=`, which httpx2 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

LFS_HOST = "lfs.fake-hub.test"
STRAY_FILES = {"train.log", "checkpoint-500/trainer_state.json", "checkpoint-500/model.safetensors"}
TELEMETRY_PATH = "/api/agent-harnesses"  # huggingface_hub 2.x fetches this registry once a process for its user agent


@dataclass
class FakeHub:
    """Answers huggingface_hub's requests as the Hub does, and records them.

    Model repos only. New repos get the Hub's default `.gitattributes`, so `*.safetensors` files are LFS files and the
    rest are regular files. The commit id is the sha1 of the commit payload, like a git id.
    """

    endpoint: str
    repos: set[str] = field(default_factory=set)
    requests: list[httpx2.Request] = field(default_factory=list)
    lfs_uploads: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)

    @property
    def sent(self) -> list[httpx2.Request]:
        """Every request but the user-agent telemetry (sent once a process, so only by the first test), in order."""
        return [request for request in self.requests if request.url.path != TELEMETRY_PATH]

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of each request `sent`."""
        return [(request.method, request.url.path) for request in self.sent]

    def last(self, path_pattern: str) -> httpx2.Request:
        """The last request whose path matches `path_pattern`."""
        return [request for request in self.sent if re.search(path_pattern, request.url.path)][-1]

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path, body = request.url.path, request.read()
        if request.url.host == LFS_HOST and request.method == "PUT":
            oid = path.rsplit("/", 1)[-1]
            if hashlib.sha256(body).hexdigest() != oid:
                return httpx2.Response(400, json={"error": "content does not match the oid"})
            self.lfs_uploads[oid] = body
            return httpx2.Response(200)
        if request.url.host != httpx2.URL(self.endpoint).host:
            return httpx2.Response(404, json={"error": f"unknown host {request.url.host}"})
        if path == TELEMETRY_PATH:
            return httpx2.Response(200, json={"standardEnvVars": [], "harnesses": {}})
        if path == "/api/repos/create":
            payload = json.loads(body)
            repo_id = f"{payload['organization']}/{payload['name']}"
            if repo_id in self.repos:
                error = {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo_id}"}
                return httpx2.Response(409, json=error)
            self.repos.add(repo_id)
            return httpx2.Response(200, json={"url": f"{self.endpoint}/{repo_id}"})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/branch/([^/]+)", path):
            return httpx2.Response(200, json={}) if match[1] in self.repos else self._no_repo(match[1])
        if re.fullmatch(r"/api/models/[^/]+/[^/]+/preupload/[^/]+", path):
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(".safetensors") else "regular"}
                for f in files
            ]
            return httpx2.Response(200, json={"files": [{**mode, "shouldIgnore": False} for mode in modes]})
        if match := re.fullmatch(r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path):
            objects = json.loads(body)["objects"]
            verify_action = {"href": f"{self.endpoint}/{match[1]}.git/info/lfs/objects/verify"}
            actions = [
                {**o, "actions": {"upload": {"href": f"https://{LFS_HOST}/{o['oid']}"}, "verify": verify_action}}
                for o in objects
            ]
            return httpx2.Response(200, json={"transfer": "basic", "objects": actions})
        if re.fullmatch(r"/[^/]+/[^/]+\.git/info/lfs/objects/verify", path):
            oid = json.loads(body)["oid"]
            return httpx2.Response(200, json={}) if oid in self.lfs_uploads else httpx2.Response(404, json={})
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path):
            if match[1] not in self.repos:
                return self._no_repo(match[1])
            lines = [json.loads(line) for line in body.decode().splitlines()]
            oid = hashlib.sha1(body).hexdigest()
            self.commits.append({"revision": match[2], "lines": lines, "params": dict(request.url.params)})
            pr_url = f"{self.endpoint}/{match[1]}/discussions/1" if request.url.params.get("create_pr") else None
            commit_url = f"{self.endpoint}/{match[1]}/commit/{oid}"
            return httpx2.Response(200, json={"commitOid": oid, "commitUrl": commit_url, "pullRequestUrl": pr_url})
        return httpx2.Response(404, json={"error": f"fake Hub has no route {request.method} {path}"})

    @staticmethod
    def _no_repo(repo_id: str) -> httpx2.Response:
        return httpx2.Response(
            404, json={"error": f"Repository {repo_id} not found"}, headers={"X-Error-Code": "RepoNotFound"}
        )


@pytest.fixture
def hub(monkeypatch, tmp_path) -> Iterator[FakeHub]:
    """huggingface_hub with its HTTP transport replaced by a `FakeHub`; the previous client is restored afterwards."""
    fake = FakeHub(endpoint=constants.ENDPOINT)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the LFS path, which goes through the transport
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agent_harnesses.json"), raising=False)
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", _http.default_client_factory)

    def client() -> httpx2.Client:  # `default_client_factory`, with the fake Hub as transport
        return httpx2.Client(
            transport=httpx2.MockTransport(fake),
            event_hooks={"request": [_http.hf_request_event_hook]},
            follow_redirects=True,
            timeout=None,
        )

    set_client_factory(client)
    try:
        yield fake
    finally:
        set_client_factory(previous)  # also closes the fake client
        _http.close_session()


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


def committed_files(commit: dict) -> dict[str, dict]:
    return {line["value"]["path"]: line for line in commit["lines"] if line["key"] != "header"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_commits_exactly_the_export_once(hub, repo):
    result = push_folder(repo, "org/name", token="hf_fake", smoke=False)

    weights_oid = sha256(repo / "model.safetensors")
    assert hub.calls == [
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
    hub.repos.add("org/name")  # create_repo answers 409, which exist_ok accepts
    result = push_folder(repo, "org/name", branch="dev", private=True, message="v2 thresholds", smoke=False)
    assert hub.calls == [
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


def test_push_as_pull_request(hub, repo):
    result = push_folder(repo, "org/name", create_pr=True, smoke=False)
    (commit,) = hub.commits
    assert commit["revision"] == "main" and commit["params"] == {"create_pr": "1"}
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

    monkeypatch.setattr(verify, "verify_repo", recording_verify_repo)
    result = push_folder(repo, "org/name")
    (report,) = reports
    assert [(f.check, f.status) for f in report.findings if f.check == "smoke-run"] == [("smoke-run", "ok")]
    assert len(hub.commits) == 1 and result.commit_oid in result.usage


def test_cli_push_prints_the_commit_and_the_pinned_line(hub, repo, monkeypatch, capsys):
    from hubheads.cli import main

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
