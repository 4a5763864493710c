"""A fake Hugging Face Hub: a real HTTP server on 127.0.0.1 speaking the API paths huggingface_hub uses.

Serves model and dataset repos with several commits, `model_info`/`dataset_info` JSON and
`resolve` downloads, with switches per repo for 404, gated (401/403), 500 and slow answers.
No huggingface_hub internals are mocked: the library talks HTTP to this server.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

GOOD_TOKEN = "hf_fake_good_token_0123456789"


@dataclass
class Repo:
    repo_id: str
    repo_type: str  # "model" or "dataset"
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    status: int | None = None  # force this HTTP status on every request (e.g. 500)
    api_status: int | None = None  # force a status on the info API only
    gated: bool = False  # 403 GatedRepo unless the request carries GOOD_TOKEN
    delay: float = 0.0  # seconds to wait before answering

    def commit(
        self, files: dict[str, bytes | str], ref: str = "main", info: dict[str, Any] | None = None
    ) -> str:
        data = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
        digest = hashlib.sha1(
            repr(sorted(data.items())).encode() + ref.encode() + str(len(self.commits)).encode()
        )
        sha = digest.hexdigest()
        self.commits[sha] = data
        self.refs[ref] = sha
        if info:
            self.info.update(info)
        return sha

    def resolve(self, rev: str) -> str | None:
        if rev in self.refs:
            return self.refs[rev]
        if rev in self.commits:
            return rev
        return None


class FakeHub:
    """The server and its repos. Thread-safe enough for concurrent dataset fetches."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.repos.clear()
            self.requests.clear()

    def add(
        self, repo_id: str, files: dict[str, bytes | str], *, repo_type: str = "model", **kw: Any
    ) -> Repo:
        repo = Repo(
            repo_id,
            repo_type,
            **{k: v for k, v in kw.items() if k in {"status", "api_status", "gated", "delay"}},
        )
        repo.commit(files, info=kw.get("info"))
        with self.lock:
            self.repos[(repo_type, repo_id)] = repo
        return repo

    def add_model(self, repo_id: str, files: dict[str, bytes | str], **kw: Any) -> Repo:
        return self.add(repo_id, files, repo_type="model", **kw)

    def add_dataset(self, repo_id: str, card: str | bytes, **kw: Any) -> Repo:
        return self.add(repo_id, {"README.md": card}, repo_type="dataset", **kw)

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        with self.lock:
            return self.repos.get((repo_type, repo_id))


_RESOLVE = re.compile(r"^/(?:(?P<type>datasets|spaces)/)?(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_API = re.compile(r"^/api/(?P<type>models|datasets)/(?P<repo>.+?)(?:/revision/(?P<rev>[^/]+))?$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default logging
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str | None = None, message: str = "") -> None:
            headers = {"Content-Type": "application/json"}
            if code:
                headers["X-Error-Code"] = code
            if message:
                headers["X-Error-Message"] = message
            self._send(status, json.dumps({"error": message or code or "error"}).encode(), headers)

        def _authorised(self) -> bool:
            return self.headers.get("Authorization", "") == f"Bearer {GOOD_TOKEN}"

        def _gate(self, repo: Repo) -> bool:
            """Apply the repo's switches; True when an error was sent."""
            if repo.delay:
                time.sleep(repo.delay)
            if repo.status:
                self._error(repo.status, None, "forced error")
                return True
            if repo.gated and not self._authorised():
                self._error(403, "GatedRepo", "Access to this repo is restricted")
                return True
            return False

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            with hub.lock:
                hub.requests.append((self.command, path, "Authorization" in self.headers))
            if path.startswith("/api/") and (m := _API.match(path)):
                self._api(m)
            elif m := _RESOLVE.match(path):
                self._resolve(m)
            else:
                self._error(404, None, "not found")

        def _lookup(
            self, m: re.Match[str], default_rev: str | None = None, api: bool = False
        ) -> tuple[Repo, str] | None:
            """The repo and resolved commit a request names, or None after sending the error."""
            repo = hub.get("dataset" if m["type"] == "datasets" else "model", unquote(m["repo"]))
            if repo is None:
                self._error(404 if self._authorised() else 401, "RepoNotFound", "Repository not found")
                return None
            if self._gate(repo):
                return None
            if api and repo.api_status:
                self._error(repo.api_status, None, "forced API error")
                return None
            sha = repo.resolve(unquote(m["rev"]) if m["rev"] else str(default_rev))
            if sha is None:
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return None
            return repo, sha

        def _api(self, m: re.Match[str]) -> None:
            found = self._lookup(m, default_rev="main", api=True)
            if found is None:
                return
            repo, sha = found
            info: dict[str, Any] = {
                "id": repo.repo_id,
                "sha": sha,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "lastModified": "2026-10-01T12:00:00.000Z",
                "createdAt": "2025-01-01T00:00:00.000Z",
                "downloads": 1234,
                "likes": 56,
                "tags": [],
                "siblings": [{"rfilename": f} for f in sorted(repo.commits[sha])],
            }
            info.update(repo.info)
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})

        def _resolve(self, m: re.Match[str]) -> None:
            found = self._lookup(m)
            if found is None:
                return
            repo, sha = found
            files = repo.commits[sha]
            name = unquote(m["path"])
            if name not in files:
                self._error(404, "EntryNotFound", "Entry not found")
                return
            body = files[name]
            etag = hashlib.sha256(body).hexdigest()
            self._send(
                200,
                body,
                {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"},
            )

    return Handler
