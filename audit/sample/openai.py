"""Any OpenAI-compatible endpoint (Azure AI Foundry, vLLM, TGI, Ollama, llama.cpp server).

The API key is read from an environment variable whose *name* the user gives; the key itself
never reaches settings, cache keys, logs, errors or reports.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from audit.config import Sampling
from audit.errors import CollectionError, UsageError
from audit.redact import redact_url
from audit.suites import Prompt

log = logging.getLogger("audit")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class EndpointError(CollectionError):
    """The endpoint kept failing after retries, or refused the request."""


class OpenAIBackend:
    """Chat or completions requests, bounded concurrency, retries with backoff on 429, 5xx and timeouts."""

    name = "openai"

    def __init__(self, options: dict[str, str], **_: Any) -> None:
        unknown = set(options) - {
            "base_url",
            "model",
            "mode",
            "api_key_env",
            "concurrency",
            "timeout",
            "max_retries",
        }
        if unknown:
            raise UsageError(
                f"unknown openai backend option(s): {', '.join(sorted(unknown))}",
                "options: base_url, model, mode, api_key_env, concurrency, timeout, max_retries",
            )
        if not options.get("base_url") or not options.get("model"):
            raise UsageError(
                "the openai backend needs base_url and model",
                "--backend-option base_url=http://localhost:8000/v1 --backend-option model=NAME",
            )
        self.base_url = options["base_url"].strip()
        self.shown_url = redact_url(self.base_url)  # what reports, logs, errors and cache keys see
        self.model = options["model"]
        self.mode = options.get("mode", "chat")
        if self.mode not in {"chat", "completions"}:
            raise UsageError(
                f"mode must be chat or completions, not '{self.mode}'", "--backend-option mode=chat"
            )
        self.api_key_env = options.get("api_key_env")
        self._key: str | None = None
        if self.api_key_env:
            self._key = os.environ.get(self.api_key_env)
            if not self._key:
                raise UsageError(
                    f"environment variable {self.api_key_env} is empty or unset",
                    f"export {self.api_key_env}=... (the key itself is never written anywhere)",
                )
        try:
            self.concurrency = max(1, int(options.get("concurrency", "4")))
            self.timeout = float(options.get("timeout", "60"))
            self.max_retries = max(0, int(options.get("max_retries", "5")))
        except ValueError as exc:
            raise UsageError(
                f"bad openai backend option: {exc}",
                "concurrency and max_retries are integers, timeout seconds",
            ) from None

    def settings(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": self.shown_url, "model": self.model, "mode": self.mode}

    def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        import base64
        from urllib.parse import unquote, urlsplit, urlunsplit

        parts = urlsplit(self.base_url)
        route = "chat/completions" if self.mode == "chat" else "completions"
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/{route}", parts.query, ""))
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        elif parts.username is not None:  # credentials in the URL: HTTP Basic, as a browser would
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-given endpoint
                    result: dict[str, Any] = json.loads(resp.read())
                    return result
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if status not in RETRY_STATUS or attempt == self.max_retries:
                    if status in (401, 403):
                        hint = "check api_key_env and the key's permissions"
                    elif status in RETRY_STATUS:
                        hint = "the server is overloaded or failing: retry later, or raise max_retries"
                    else:
                        hint = "check base_url, model and mode"
                    raise EndpointError(
                        f"endpoint {self.shown_url} answered HTTP {status} for model {self.model}", hint
                    ) from None
                wait = (
                    float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else delay
                )
            except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
                if attempt == self.max_retries:
                    reason = getattr(exc, "reason", exc)
                    raise EndpointError(
                        f"endpoint {self.shown_url} failed: {type(exc).__name__}: {reason}",
                        "check that the server is up; raise --backend-option timeout=SECONDS",
                    ) from None
                wait = delay
            wait = min(wait, 30.0) * (1 + 0.1 * random.random())
            log.debug("retrying endpoint request in %.1fs (attempt %d)", wait, attempt + 1)
            time.sleep(wait)
            delay = min(delay * 2, 8.0)
        raise EndpointError("unreachable", "")

    def _one(self, prompt: Prompt, sampling: Sampling, seed: int) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
        }
        if self.mode == "chat":
            body["messages"] = [{"role": "user", "content": prompt.text}]
        else:
            body["prompt"] = prompt.text
        result = self._request(body)
        try:
            choice = result["choices"][0]
            text = choice["message"]["content"] if self.mode == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(
                "endpoint answered without choices[0] text", f"is mode={self.mode} right for this server?"
            ) from None
        return str(text or "")

    def generate_many(
        self, suite: str, prompts: list[Prompt], sampling: Sampling, seeds: dict[str, int]
    ) -> Iterator[tuple[Prompt, list[str]]]:
        k = sampling.samples_per_prompt
        jobs = [(p, i) for p in prompts for i in range(k)]
        with ThreadPoolExecutor(self.concurrency) as pool:
            # Every sample is its own request; `concurrency` of them are in flight at once.
            results = pool.map(lambda job: self._one(job[0], sampling, seeds[job[0].id] + job[1]), jobs)
            outputs: list[str] = []
            for (p, i), text in zip(jobs, results, strict=True):
                outputs.append(text)
                if i == k - 1:
                    yield p, outputs
                    outputs = []
