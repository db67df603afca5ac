"""A fake Hugging Face Hub behind the real huggingface_hub client, for the tests of `push_folder`.

The Hub is unreachable from the machines these tests run on, so ONLY the HTTP transport is replaced. huggingface_hub
2.x sends every request through the shared `httpx2.Client` of `get_session()` (httpx2 is the HTTP library it imports);
`fake_hub` uses `set_client_factory` to make that client one built like huggingface_hub's default client (same request
hook, redirects, timeout) but over an `httpx2.MockTransport` whose handler, `FakeHub`, records each request and answers
as the Hub's API does. Everything above the transport is the real huggingface_hub code: `HfApi.create_repo`,
`create_branch`, `list_repo_files` (the paginated tree listing), `hf_hub_download` (HEAD then GET on `/resolve/`, the
cache layout) and `upload_folder`, its planning (allow, ignore and delete patterns, the preupload call, sha256 hashing,
the LFS batch, upload and verify calls) and the ndjson commit payload. `fake_hub` restores the previous client factory
and closes the cached client afterwards.

`FakeHub` keeps the files of every revision of every repo (`files`, path -> bytes), so a test can seed a repo as it is
published (`publish`), push onto it, and read what each branch and pull request holds afterwards. Commits are applied
as the Hub applies them: a pull request (`create_pr=1`) lands on a new `refs/pr/N` built from main, a new branch starts
as a copy of main (or of its `startingPoint`), deleting a file that does not exist fails the commit.

Four settings are pinned so the path is the same everywhere: `HF_HUB_DISABLE_XET`, because with `hf_xet` installed
huggingface_hub uploads through Xet storage, which hf_xet reaches from Rust beneath any Python transport (the LFS path
it takes instead goes through the transport); `HF_HUB_OFFLINE` off, since offline mode refuses every request before the
transport; the download cache (`HF_HUB_CACHE`, read by huggingface_hub at import and at call time from its
`constants`), moved into the test's tmp_path so `hf_hub_download` never writes to ~/.cache; and the cache file of
huggingface_hub's user-agent telemetry (`/api/agent-harnesses`, fetched once a process, answered by the fake Hub and
left out of the recorded `sent` requests) moved into the tmp_path too.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pytest

# The fake Hub replaces huggingface_hub 2.x's transport; with an older huggingface_hub (the dependency floors'
# environment) the modules that use it are skipped, and `push_folder` refuses to run (tests/test_floors.py).
httpx2 = pytest.importorskip("httpx2", reason="the fake Hub needs huggingface_hub 2.x (push needs it too)")
from huggingface_hub import constants, set_client_factory  # noqa: E402
from huggingface_hub.utils import _http  # noqa: E402

#: huggingface_hub's LFS upload passes raw bytes as `data=`, which httpx2 deprecates; not ours to fix.
IGNORE_LFS_DATA_WARNING = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

LFS_HOST = "lfs.fake-hub.test"  # the storage host: LFS uploads (PUT) and downloads (GET, redirected to from /resolve/)
TELEMETRY_PATH = "/api/agent-harnesses"  # huggingface_hub 2.x fetches this registry once a process for its user agent
#: The patterns of the `.gitattributes` the Hub gives a new repo: matching files are stored with LFS.
LFS_PATTERNS = (
    "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy *.npz *.onnx "
    "*.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* *.tar.* *.tar *.tflite *.tgz "
    "*.wasm *.xz *.zip *.zst *tfevents*"
).split()
PAGE_SIZE = 1000  # the Hub's page size of a tree listing without expand=True


def git_blob_sha1(content: bytes) -> str:
    """The git id of a blob, as the Hub gives it for regular files (`oid`, `ETag`)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(content: bytes) -> bytes:
    """The git-lfs pointer file of `content`, which git stores in its place."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(content)}\nsize {len(content)}\n".encode()


def sha256(data: bytes | Path) -> str:
    """The sha256 of bytes, or of a file's content."""
    return hashlib.sha256(data.read_bytes() if isinstance(data, Path) else data).hexdigest()


def is_lfs_path(path: str) -> bool:
    """Whether the Hub's default `.gitattributes` stores `path` with LFS."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path if "/" in pattern else name, pattern) for pattern in LFS_PATTERNS)


def committed_files(commit: dict) -> dict[str, dict]:
    """The lines of a recorded commit that add a file (`file`, `lfsFile`), by path."""
    return {line["value"]["path"]: line for line in commit["lines"] if line["key"] in ("file", "lfsFile")}


def deleted_paths(commit: dict) -> list[str]:
    """The paths a recorded commit deletes (`deletedFile`, and `deletedFolder` with a trailing `/`), in order."""
    return [
        line["value"]["path"] + ("/" if line["key"] == "deletedFolder" else "")
        for line in commit["lines"]
        if line["key"] in ("deletedFile", "deletedFolder")
    ]


def _error(status: int, code: str | None, message: str, **headers: str) -> httpx2.Response:
    if code is not None:
        headers["X-Error-Code"] = code
    return httpx2.Response(status, json={"error": message}, headers={"X-Error-Message": message, **headers})


@dataclass
class FakeHub:
    """Answers huggingface_hub's requests as the Hub does, and records them.

    Model repos only. Files matching the Hub's default `.gitattributes` (`LFS_PATTERNS`: `*.safetensors`, `*.bin`,
    `*.h5`, `*.onnx`, ...) are LFS files, the rest are regular files; the `.gitattributes` a push uploads does not
    change that, nor does the Hub's initial commit of a new repo (which is not modelled: a new repo's main is empty).
    A commit id is the sha1 of the commit payload, like a git id; a published revision's is the sha1 of its files.

    Attributes:
        repos: the repo ids that exist.
        files: `(repo_id, revision) -> {path: content}`, for every branch and pull request (`refs/pr/N`).
        heads: `(repo_id, revision) -> commit id` of each revision in `files`.
        snapshots: `(repo_id, commit id) -> {path: content}`, every commit, so a commit id resolves as a revision.
        requests: every request received, in order (see `sent`).
        lfs_uploads: `sha256 -> content` of the LFS objects the client uploaded (PUT to the storage host).
        lfs_store: `sha256 -> content` of every LFS object the storage holds: published ones and uploads.
        commits: one dict per commit request: `repo_id`, `revision` (as requested), `ref` (the revision it landed on,
            `refs/pr/N` for a pull request), `oid`, `params` (the query parameters), `lines` (the ndjson payload).
        page_size: entries per page of a tree listing; the Hub's is 1000, a test may lower it to page.
        gated: repos whose files the client may not read: every GET or HEAD on them answers 403 `GatedRepo`.
        read_only: repos the client may read but not write: every POST on them answers 403.
    """

    endpoint: str
    repos: set[str] = field(default_factory=set)
    files: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    heads: dict[tuple[str, str], str] = field(default_factory=dict)
    snapshots: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    requests: list[httpx2.Request] = field(default_factory=list)
    lfs_uploads: dict[str, bytes] = field(default_factory=dict)
    lfs_store: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    page_size: int = PAGE_SIZE
    gated: set[str] = field(default_factory=set)  # repos whose files this token may not read (403 GatedRepo)
    read_only: set[str] = field(default_factory=set)  # repos this token may not write (403 on every POST)
    cache_dir: Path | None = None  # huggingface_hub's download cache while `fake_hub` is active

    # --- what tests read ---

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

    def tree(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """A copy of the files of `repo_id` at `revision` (a branch, `refs/pr/N` or a commit id)."""
        files = self._revision(repo_id, revision)
        if files is None:
            raise KeyError(f"the fake Hub has no revision {revision!r} of {repo_id!r}")
        return dict(files)

    # --- what tests seed ---

    def publish(self, repo_id: str, files: dict[str, bytes], revision: str = "main") -> str:
        """Make `repo_id` exist with exactly `files` at `revision` (as if pushed earlier); return the commit id."""
        self.repos.add(repo_id)
        files = dict(files)
        for path, content in files.items():
            if is_lfs_path(path):
                self.lfs_store[sha256(content)] = content
        listing = json.dumps({path: sha256(content) for path, content in sorted(files.items())})
        oid = hashlib.sha1(f"{repo_id}@{revision}:{listing}".encode()).hexdigest()
        self._set(repo_id, revision, files, oid)
        return oid

    # --- the transport ---

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        body = request.read()
        raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if request.url.host == LFS_HOST:
            return self._storage(request, body)
        if request.url.host != httpx2.URL(self.endpoint).host:
            return httpx2.Response(404, json={"error": f"unknown host {request.url.host}"})
        if raw_path == TELEMETRY_PATH:
            return httpx2.Response(200, json={"standardEnvVars": [], "harnesses": {}})
        if raw_path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        if raw_path == "/api/validate-yaml":
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        routes = [
            ("POST", r"/api/models/([^/]+/[^/]+)/branch/([^/]+)", self._create_branch),
            ("GET", r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.+))?", self._list_tree),
            ("GET", r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", self._repo_info),
            ("POST", r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", self._preupload),
            ("POST", r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", self._commit),
            ("POST", r"/([^/]+/[^/]+)\.git/info/lfs/objects/batch", self._lfs_batch),
            ("POST", r"/([^/]+/[^/]+)\.git/info/lfs/objects/verify", self._lfs_verify),
            ("HEAD", r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self._resolve),
            ("GET", r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self._resolve),
        ]
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, raw_path)
            if match and request.method == method:
                args = [unquote(group) if group is not None else None for group in match.groups()]
                if args[0] not in self.repos:
                    return _error(404, "RepoNotFound", f"Repository {args[0]} not found")
                if args[0] in self.gated and method in ("GET", "HEAD"):
                    return _error(403, "GatedRepo", f"Access to model {args[0]} is restricted.")
                if args[0] in self.read_only and method == "POST":
                    return _error(403, None, f"You don't have the rights to write to {args[0]}.")
                return handler(request, body, *args)
        return httpx2.Response(404, json={"error": f"fake Hub has no route {request.method} {request.url.path}"})

    # --- state ---

    def _revision(self, repo_id: str, revision: str) -> dict[str, bytes] | None:
        if repo_id not in self.repos:
            return None
        if (repo_id, revision) not in self.files and revision == "main":  # a repo made with `repos.add` or create
            self._set(repo_id, "main", {}, hashlib.sha1(f"{repo_id} initial commit".encode()).hexdigest())
        return self.files.get((repo_id, revision), self.snapshots.get((repo_id, revision)))

    def _head(self, repo_id: str, revision: str) -> str:
        return self.heads.get((repo_id, revision), revision)  # a commit id is its own head

    def _set(self, repo_id: str, revision: str, files: dict[str, bytes], oid: str) -> None:
        self.files[(repo_id, revision)] = files
        self.heads[(repo_id, revision)] = oid
        self.snapshots[(repo_id, oid)] = files

    @staticmethod
    def _no_revision(revision: str) -> httpx2.Response:
        return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    # --- handlers ---

    def _create_repo(self, payload: dict) -> httpx2.Response:
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            error = {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo_id}"}
            return httpx2.Response(409, json=error)
        self.repos.add(repo_id)
        self._revision(repo_id, "main")
        return httpx2.Response(200, json={"url": f"{self.endpoint}/{repo_id}"})

    def _create_branch(self, request: httpx2.Request, body: bytes, repo_id: str, branch: str) -> httpx2.Response:
        if (repo_id, branch) in self.files:
            return _error(409, None, "Reference already exists")
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        files = self._revision(repo_id, start)
        if files is None:
            return self._no_revision(start)
        self._set(repo_id, branch, dict(files), self._head(repo_id, start))
        return httpx2.Response(200, json={})

    def _repo_info(self, request: httpx2.Request, body: bytes, repo_id: str, revision: str | None) -> httpx2.Response:
        files = self._revision(repo_id, revision or "main")
        if files is None:
            return self._no_revision(revision)
        siblings = [{"rfilename": path} for path in sorted(files)]
        sha = self._head(repo_id, revision or "main")
        return httpx2.Response(200, json={"id": repo_id, "sha": sha, "private": False, "siblings": siblings})

    def _list_tree(
        self, request: httpx2.Request, body: bytes, repo_id: str, revision: str, folder: str | None
    ) -> httpx2.Response:
        files = self._revision(repo_id, revision)
        if files is None:
            return self._no_revision(revision)
        recursive = request.url.params.get("recursive") == "true"
        prefix = f"{folder.strip('/')}/" if folder else ""
        if prefix and not any(path.startswith(prefix) for path in files):
            return _error(404, "EntryNotFound", f"{folder} does not exist on {revision}")
        folders, entries = set(), []
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            depth = len(parts) - 1 if recursive else min(1, len(parts) - 1)
            folders.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
            if recursive or len(parts) == 1:
                entries.append(self._file_entry(path, files[path]))
        tree = [{"type": "directory", "oid": git_blob_sha1(p.encode()), "size": 0, "path": p} for p in sorted(folders)]
        tree += entries
        start = int(request.url.params.get("cursor", "0"))
        page, headers = tree[start : start + self.page_size], {}
        if start + self.page_size < len(tree):
            next_url = request.url.copy_set_param("cursor", str(start + self.page_size))
            headers["Link"] = f'<{next_url}>; rel="next"'
        return httpx2.Response(200, json=page, headers=headers)

    def _file_entry(self, path: str, content: bytes) -> dict:
        if sha256(content) not in self.lfs_store:
            return {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": path}
        pointer = lfs_pointer(content)
        lfs = {"oid": sha256(content), "size": len(content), "pointerSize": len(pointer)}
        return {"type": "file", "oid": git_blob_sha1(pointer), "size": len(content), "path": path, "lfs": lfs}

    def _resolve(
        self, request: httpx2.Request, body: bytes, repo_id: str, revision: str, path: str
    ) -> httpx2.Response:
        files = self._revision(repo_id, revision)
        if files is None:
            return self._no_revision(revision)
        commit = {"X-Repo-Commit": self._head(repo_id, revision)}
        if path not in files:
            return _error(404, "EntryNotFound", f"{path} does not exist on {revision}", **commit)
        content = files[path]
        if sha256(content) in self.lfs_store:  # the Hub redirects to its storage, naming the object in X-Linked-*
            headers = {
                **commit,
                "ETag": f'"{git_blob_sha1(lfs_pointer(content))}"',
                "X-Linked-Etag": f'"{sha256(content)}"',
                "X-Linked-Size": str(len(content)),
                "Location": f"https://{LFS_HOST}/{sha256(content)}",
            }
            return httpx2.Response(302, headers=headers)
        headers = {**commit, "ETag": f'"{git_blob_sha1(content)}"', "Content-Length": str(len(content))}
        return httpx2.Response(200, headers=headers, content=content if request.method == "GET" else None)

    def _storage(self, request: httpx2.Request, body: bytes) -> httpx2.Response:
        oid = request.url.path.rsplit("/", 1)[-1]
        if request.method == "PUT":
            if sha256(body) != oid:
                return httpx2.Response(400, json={"error": "content does not match the oid"})
            self.lfs_uploads[oid] = self.lfs_store[oid] = body
            return httpx2.Response(200)
        if request.method == "GET" and oid in self.lfs_store:
            return httpx2.Response(200, content=self.lfs_store[oid])
        return httpx2.Response(404, json={"error": f"no object {oid}"})

    def _preupload(self, request: httpx2.Request, body: bytes, repo_id: str, revision: str) -> httpx2.Response:
        files = self._revision(repo_id, revision)
        if files is None:
            return self._no_revision(revision)
        answers = []
        for file in json.loads(body)["files"]:
            mode = "lfs" if is_lfs_path(file["path"]) else "regular"
            answer = {"path": file["path"], "uploadMode": mode, "shouldIgnore": False}
            if file["path"] in files:  # the Hub names the remote file, so unchanged files are left out of the commit
                content = files[file["path"]]
                answer["oid"] = sha256(content) if mode == "lfs" else git_blob_sha1(content)
            answers.append(answer)
        return httpx2.Response(200, json={"files": answers})

    def _lfs_batch(self, request: httpx2.Request, body: bytes, repo_id: str) -> httpx2.Response:
        verify_action = {"href": f"{self.endpoint}/{repo_id}.git/info/lfs/objects/verify"}
        objects = []
        for obj in json.loads(body)["objects"]:
            if obj["oid"] in self.lfs_store:  # already stored: the Hub sends no actions, the client uploads nothing
                objects.append(obj)
            else:
                upload = {"href": f"https://{LFS_HOST}/{obj['oid']}"}
                objects.append({**obj, "actions": {"upload": upload, "verify": verify_action}})
        return httpx2.Response(200, json={"transfer": "basic", "objects": objects})

    def _lfs_verify(self, request: httpx2.Request, body: bytes, repo_id: str) -> httpx2.Response:
        oid = json.loads(body)["oid"]
        return httpx2.Response(200, json={}) if oid in self.lfs_store else httpx2.Response(404, json={})

    def _commit(self, request: httpx2.Request, body: bytes, repo_id: str, revision: str) -> httpx2.Response:
        base = self._revision(repo_id, revision)
        if base is None:
            return self._no_revision(revision)
        lines = [json.loads(line) for line in body.decode().splitlines()]
        if not lines or lines[0]["key"] != "header":
            return httpx2.Response(400, json={"error": "the first line must be the header"})
        parent = lines[0]["value"].get("parentCommit")
        if parent is not None and parent != self._head(repo_id, revision):
            return httpx2.Response(412, json={"error": "A commit has happened since. Please refresh and try again."})
        files = dict(base)
        for line in lines[1:]:
            key, path = line["key"], line["value"]["path"]
            if key == "file":
                files[path] = base64.b64decode(line["value"]["content"])
            elif key == "lfsFile":
                if line["value"]["oid"] not in self.lfs_store:
                    return httpx2.Response(422, json={"error": f"LFS object of {path} was not uploaded"})
                files[path] = self.lfs_store[line["value"]["oid"]]
            elif key == "deletedFile":
                if path not in files:
                    return _error(404, "EntryNotFound", f"A file with this name doesn't exist: {path}")
                del files[path]
            elif key == "deletedFolder":
                inside = [name for name in files if name.startswith(path.rstrip("/") + "/")]
                if not inside:
                    return _error(404, "EntryNotFound", f"A folder with this name doesn't exist: {path}")
                for name in inside:
                    del files[name]
            else:
                return httpx2.Response(400, json={"error": f"unknown commit line {key!r}"})
        oid = hashlib.sha1(body).hexdigest()
        pr_url, ref = None, revision
        if request.url.params.get("create_pr"):
            number = 1 + sum(1 for repo, rev in self.files if repo == repo_id and rev.startswith("refs/pr/"))
            pr_url, ref = f"{self.endpoint}/{repo_id}/discussions/{number}", f"refs/pr/{number}"
        self._set(repo_id, ref, files, oid)
        params = dict(request.url.params)
        self.commits.append(
            {"repo_id": repo_id, "revision": revision, "ref": ref, "oid": oid, "params": params, "lines": lines}
        )
        commit_url = f"{self.endpoint}/{repo_id}/commit/{oid}"
        return httpx2.Response(200, json={"commitOid": oid, "commitUrl": commit_url, "pullRequestUrl": pr_url})


@contextmanager
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """huggingface_hub with its HTTP transport replaced by a `FakeHub` and its download cache in `tmp_path`; the
    previous client is restored afterwards. Test modules wrap it in their `hub` fixture."""
    fake = FakeHub(endpoint=constants.ENDPOINT, cache_dir=tmp_path / "hf_cache" / "hub")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the LFS path, which goes through the transport
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(fake.cache_dir.parent))  # for anything that reads the environment at call time
    monkeypatch.setenv("HF_HUB_CACHE", str(fake.cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake.cache_dir))  # what hf_hub_download reads
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
