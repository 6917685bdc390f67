"""A loopback fake of the Hugging Face Hub's file endpoints, for tests without internet.

Serves HEAD and GET on /{org}/{name}/resolve/{revision}/{filename} from 127.0.0.1 the way
huggingface_hub's hf_hub_download expects (see file_download.get_hf_file_metadata and
utils/_http.hf_raise_for_status): 200 with X-Repo-Commit, ETag and Content-Length; 404 with
X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound (the last with X-Repo-Commit);
401 RepoNotFound for a private repo asked without a token, 403 with the wrong token.

    hub = FakeHub()
    commit = hub.commit("org/name", {"config.json": b"{...}"}, branch="main", tags=["v1"])
    with hub.serving():            # then point huggingface_hub.constants.ENDPOINT at hub.url
        ...
    hub.requests                   # [(method, path), ...] seen, to assert that none were made
    hub.gate.clear()               # answers wait until hub.gate.set() (a slow download)
"""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class FakeRepo:
    branches: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> files
    token: str | None = None  # private repo: the one token allowed to read it


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._server: ThreadingHTTPServer | None = None
        self.gate = threading.Event()  # cleared: every answer waits (at most 60 s) until it is set
        self.gate.set()

    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main",
               tags: tuple[str, ...] | list[str] = (), private_token: str | None = None) -> str:
        """Add a commit holding exactly `files` on `branch` (created if new); returns its hash."""
        repo = self.repos.setdefault(repo_id, FakeRepo())
        if private_token is not None:
            repo.token = private_token
        h = hashlib.sha1(f"{repo_id}:{len(repo.commits)}".encode())
        for name in sorted(files):
            h.update(name.encode() + hashlib.sha256(files[name]).digest())
        sha = h.hexdigest()
        repo.commits[sha] = dict(files)
        repo.branches[branch] = sha
        for tag in tags:
            repo.branches[tag] = sha
        return sha

    # ---- HTTP --------------------------------------------------------------------------
    def _answer(self, method: str, path: str, auth: str | None) -> tuple[int, dict[str, str], bytes]:
        self.requests.append((method, path))
        self.gate.wait(60)
        parts = path.split("?")[0].split("/")
        # "", org, name, "resolve", revision, *filename
        if len(parts) < 6 or parts[3] != "resolve":
            return 404, {}, b"not a resolve url"
        repo_id, revision, filename = f"{parts[1]}/{parts[2]}", unquote(parts[4]), "/".join(parts[5:])
        repo = self.repos.get(repo_id)
        if repo is not None and repo.token is not None and auth != f"Bearer {repo.token}":
            if auth is None:  # the Hub answers 401 RepoNotFound for a private repo and no token
                return 401, {"X-Error-Code": "RepoNotFound",
                             "X-Error-Message": "Invalid username or password."}, b""
            return 403, {"X-Error-Message": "Access denied for this token"}, b""
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound",
                         "X-Error-Message": "Repository not found"}, b""
        commit = revision if revision in repo.commits else repo.branches.get(revision)
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound",
                         "X-Error-Message": "Invalid rev id: " + revision}, b""
        files = repo.commits[commit]
        if filename not in files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit,
                         "X-Error-Message": "Entry not found"}, b""
        body = files[filename]
        return 200, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                     "Content-Type": "application/octet-stream"}, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _respond(self, with_body: bool) -> None:
                status, headers, body = hub._answer(self.command, self.path,
                                                    self.headers.get("authorization"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
                self._respond(with_body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._respond(with_body=True)

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        return Handler

    @contextmanager
    def serving(self):
        """Serve on 127.0.0.1 at a free port (self.url) until the block ends."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
