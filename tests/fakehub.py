"""A fake Hugging Face Hub: a real HTTP server on 127.0.0.1 speaking the API paths huggingface_hub uses.

Serves model and dataset repos with several commits, `model_info`/`dataset_info` JSON,
`resolve` downloads and the model search (`/api/models` with the query huggingface_hub's
`list_models` sends: filter, author, search, pipeline_tag, sort, limit, expand, paginated by a
Link header), with switches per repo for 404, listed-but-missing, gated (401/403), 429 with
Retry-After, 500 and slow answers, and a per-request latency for the whole server (`latency`).
`generate_catalog` fills it with a few hundred varied models (tasks, licences, sizes, datasets,
failure modes).
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
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

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
    missing: bool = False  # listed by the search endpoint, but 404 RepoNotFound on every request
    rate_limited: int = 0  # answer this many requests with 429 (Retry-After: retry_after) first
    retry_after: int = 1

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
        self.searches: list[list[tuple[str, str]]] = []  # query parameters of each /api/models search
        self.latency = 0.0  # seconds added to every request (the Hub's round trip)
        self.page_size = 100  # search results per page (the Link header points at the next)
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
            self.searches.clear()
            self.latency = 0.0
            self.page_size = 100

    def add(
        self, repo_id: str, files: dict[str, bytes | str], *, repo_type: str = "model", **kw: Any
    ) -> Repo:
        repo = Repo(
            repo_id,
            repo_type,
            **{
                k: v
                for k, v in kw.items()
                if k in {"status", "api_status", "gated", "delay", "missing", "rate_limited", "retry_after"}
            },
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


_SORT_KEYS = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "lastModified",
    "createdAt": "createdAt",
}
_LIST_FIELDS = (
    "id",
    "sha",
    "pipeline_tag",
    "library_name",
    "tags",
    "downloads",
    "likes",
    "lastModified",
    "createdAt",
    "gated",
    "private",
)


def listing_entry(repo: Repo) -> dict[str, Any]:
    """What the search endpoint shows of a model repo (the fields huggingface_hub's ModelInfo reads)."""
    sha = repo.refs.get("main", "")
    info = {
        "id": repo.repo_id,
        "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
        "sha": sha,
        "private": False,
        "gated": "manual" if repo.gated else False,
        "downloads": 1234,
        "likes": 56,
        "lastModified": "2026-10-01T12:00:00.000Z",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "tags": [],
    }
    info.update({k: v for k, v in repo.info.items() if k in _LIST_FIELDS})
    return info


def search(hub: FakeHub, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The Hub's model search: `filter` (tags, library, language: every one must match), `author`,
    `search` (substring of the id), `pipeline_tag`, `gated`, sorted descending by `sort`."""
    filters = [v for k, v in params if k == "filter"]
    one = {k: v for k, v in params}
    with hub.lock:
        repos = [r for (t, _), r in hub.repos.items() if t == "model"]
    out = []
    for repo in repos:
        entry = listing_entry(repo)
        tags = set(entry.get("tags") or []) | {
            str(entry.get("library_name") or ""),
            str(entry.get("pipeline_tag") or ""),
        }
        if any(f not in tags for f in filters):
            continue
        if "author" in one and not repo.repo_id.startswith(one["author"] + "/"):
            continue
        if "search" in one and one["search"].lower() not in repo.repo_id.lower():
            continue
        if "pipeline_tag" in one and entry.get("pipeline_tag") != one["pipeline_tag"]:
            continue
        if "gated" in one and bool(entry.get("gated")) != (one["gated"].lower() == "true"):
            continue
        out.append(entry)
    key = _SORT_KEYS.get(one.get("sort", ""), "")
    out.sort(key=lambda e: e["id"])
    if key:
        out.sort(key=lambda e: e.get(key) or 0, reverse=True)  # stable: ties stay in id order
    expand = [v for k, v in params if k == "expand"]
    if expand:  # the Hub returns only the asked-for fields (and the ids)
        out = [{k: v for k, v in e.items() if k in {"id", "_id", *expand}} for e in out]
    return out


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
            parts = urlsplit(self.path)
            path = parts.path
            with hub.lock:
                hub.requests.append((self.command, path, "Authorization" in self.headers))
            if hub.latency:
                time.sleep(hub.latency)
            if path == "/api/models":
                self._search(parse_qsl(parts.query, keep_blank_values=True))
            elif path.startswith("/api/") and (m := _API.match(path)):
                self._api(m)
            elif m := _RESOLVE.match(path):
                self._resolve(m)
            else:
                self._error(404, None, "not found")

        def _search(self, params: list[tuple[str, str]]) -> None:
            with hub.lock:
                hub.searches.append(params)
            found = search(hub, params)
            one = dict(params)
            offset = int(one.get("cursor", "0") or 0)
            size = min(int(one.get("limit", hub.page_size) or hub.page_size), hub.page_size)
            page = found[offset : offset + size]
            headers = {"Content-Type": "application/json"}
            if offset + size < len(found):
                rest = [(k, v) for k, v in params if k != "cursor"] + [("cursor", str(offset + size))]
                headers["Link"] = f'<{hub.url}/api/models?{urlencode(rest)}>; rel="next"'
            self._send(200, json.dumps(page).encode(), headers)

        def _lookup(
            self, m: re.Match[str], default_rev: str | None = None, api: bool = False
        ) -> tuple[Repo, str] | None:
            """The repo and resolved commit a request names, or None after sending the error."""
            repo = hub.get("dataset" if m["type"] == "datasets" else "model", unquote(m["repo"]))
            if repo is None or repo.missing:
                self._error(404 if self._authorised() else 401, "RepoNotFound", "Repository not found")
                return None
            if repo.rate_limited > 0:
                with hub.lock:
                    repo.rate_limited -= 1
                self._send(
                    429,
                    b'{"error": "rate limited"}',
                    {"Retry-After": str(repo.retry_after), "Content-Type": "application/json"},
                )
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


# ------------------------------------------------------------------ a generated catalog of models

TASKS = (
    "text-classification",
    "token-classification",
    "question-answering",
    "summarization",
    "translation",
    "text-generation",
)
LICENSES = ("apache-2.0", "mit", "bsd-3-clause", "cc-by-nc-4.0", "gpl-3.0", "llama3", "openrail", None)
LIBRARIES = ("transformers", "transformers", "transformers", "sentence-transformers", "peft")
LANGUAGES = ("en", "en", "de", "fr", "multilingual")
DATASET_LICENSES = ("cc-by-4.0", "apache-2.0", "cc-by-nc-4.0", "mit", None)
_BODY_SECTIONS = (
    ("Intended uses", "The model is intended for research and product prototypes in English text tasks."),
    ("Out-of-scope uses", "Do not use the model for medical, legal or employment decisions of any kind."),
    ("Bias, Risks, and Limitations", "The model reflects biases of its training data and fails on dialects."),
    ("Training data", "Trained on the datasets declared in the metadata, filtered for duplicates."),
    ("Evaluation", "Accuracy 0.91 and macro F1 0.89 on a held-out test split of ten thousand examples."),
    ("Citation", "Please cite the technical report of the authors when you use this model in your work."),
)


def catalog_card(
    *,
    license: str | None,  # noqa: A002 - the card's field name
    task: str,
    library: str,
    language: str,
    datasets: list[str],
    sections: int,
    title: str = "Generated model",
) -> str:
    """A model card with front matter and the first `sections` of the recommended sections."""
    import yaml

    meta: dict[str, Any] = {"pipeline_tag": task, "library_name": library, "language": [language]}
    if license:
        meta["license"] = license
    if datasets:
        meta["datasets"] = datasets
    body = [f"# {title}", "", "A generated model of the fake Hub's catalog.", ""]
    for heading, text in _BODY_SECTIONS[:sections]:
        body += [f"## {heading}", text, ""]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + "\n".join(body)


def catalog_config(params: int, context: int) -> dict[str, Any]:
    """A BERT-like config.json whose size and context length follow the parameters asked for."""
    hidden = 256 if params < 50_000_000 else 1024 if params < 1_000_000_000 else 4096
    return {
        "architectures": ["BertForSequenceClassification" if params < 1_000_000_000 else "LlamaForCausalLM"],
        "model_type": "bert" if params < 1_000_000_000 else "llama",
        "hidden_size": hidden,
        "num_hidden_layers": max(2, min(48, params // (12 * hidden * hidden) or 2)),
        "num_attention_heads": max(1, hidden // 64),
        "num_key_value_heads": max(1, hidden // 256),
        "max_position_embeddings": context,
        "vocab_size": 32000,
    }


def add_catalog_model(
    hub: FakeHub,
    repo_id: str,
    *,
    task: str = "text-classification",
    license: str | None = "apache-2.0",  # noqa: A002
    library: str = "transformers",
    language: str = "en",
    params: int = 110_000_000,
    context: int = 512,
    datasets: tuple[str, ...] = (),
    sections: int = 6,
    downloads: int = 1000,
    likes: int = 10,
    last_modified: str = "2026-09-01T00:00:00.000Z",
    **switches: Any,
) -> Repo:
    """One model of the catalog: card, config.json, Hub info (tags, safetensors total) and switches."""
    card_text = catalog_card(
        license=license,
        task=task,
        library=library,
        language=language,
        datasets=list(datasets),
        sections=sections,
        title=repo_id,
    )
    info = {
        "pipeline_tag": task,
        "library_name": library,
        "tags": [library, task, language] + ([f"license:{license}"] if license else []),
        "downloads": downloads,
        "likes": likes,
        "lastModified": last_modified,
        "safetensors": {"parameters": {"F32": params}, "total": params},
    }
    files = {
        "README.md": card_text,
        "config.json": json.dumps(catalog_config(params, context)),
        "model.safetensors": b"",
    }
    return hub.add_model(repo_id, files, info=info, **switches)


def add_catalog_dataset(hub: FakeHub, dataset_id: str, *, license: str | None, documented: bool) -> Repo:  # noqa: A002
    """A dataset card: licence, and (when documented) personal-information and bias sections."""
    import yaml

    meta: dict[str, Any] = {"task_categories": ["text-classification"]}
    if license:
        meta["license"] = license
    body = [f"# {dataset_id}", "", "A generated dataset of the fake Hub's catalog.", ""]
    if documented:
        body += [
            "## Personal and Sensitive Information",
            "The data contains no personal information: names and e-mail addresses were removed.",
            "",
            "## Bias, Risks, and Limitations",
            "The texts over-represent English news and under-represent dialects and minority groups.",
            "",
        ]
    return hub.add_dataset(dataset_id, "---\n" + yaml.safe_dump(meta) + "---\n" + "\n".join(body))


def generate_catalog(
    hub: FakeHub,
    n: int = 300,
    *,
    seed: int = 0,
    failures: bool = True,
    n_datasets: int = 20,
    slow_delay: float = 0.2,
) -> list[str]:
    """Fill the Hub with `n` varied models (and a pool of dataset cards); returns the model ids.

    Tasks, licences, libraries, languages, sizes (small to large language models), context lengths,
    declared datasets, documentation depth, downloads, likes and last-modified dates vary with a
    seeded generator. With `failures`, about one model in 23 is gated, one in 29 is listed but
    missing, and one in 31 answers slowly (`slow_delay` seconds).
    """
    import random

    rng = random.Random(seed)
    dataset_ids = [f"data/corpus-{i:02d}" for i in range(n_datasets)]
    for i, ds in enumerate(dataset_ids):
        add_catalog_dataset(
            hub, ds, license=DATASET_LICENSES[i % len(DATASET_LICENSES)], documented=i % 3 != 0
        )
    ids = []
    for i in range(n):
        task = TASKS[rng.randrange(len(TASKS))]
        params = rng.choice(
            (4_000_000, 22_000_000, 110_000_000, 340_000_000, 1_300_000_000, 7_000_000_000, 70_000_000_000)
        )
        switches: dict[str, Any] = {}
        if failures and i % 23 == 22:
            switches["gated"] = True
        elif failures and i % 29 == 28:
            switches["missing"] = True
        elif failures and i % 31 == 30:
            switches["delay"] = slow_delay
        repo_id = f"org{i % 7}/model-{i:04d}"
        add_catalog_model(
            hub,
            repo_id,
            task=task,
            license=LICENSES[rng.randrange(len(LICENSES))],
            library=LIBRARIES[rng.randrange(len(LIBRARIES))],
            language=LANGUAGES[rng.randrange(len(LANGUAGES))],
            params=params,
            context=rng.choice((512, 2048, 8192, 32768)),
            datasets=tuple(rng.sample(dataset_ids, rng.randrange(3))),
            sections=rng.randrange(7),
            downloads=rng.randrange(10, 1_000_000),
            likes=rng.randrange(0, 5000),
            last_modified=f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T00:00:00.000Z",
            **switches,
        )
        ids.append(repo_id)
    return ids
