"""Any OpenAI-compatible endpoint (OpenAI, Azure OpenAI, Azure AI Foundry, vLLM, TGI, Ollama, llama.cpp).

Built on the official `openai` SDK (the async client): its typed errors, its retries on
connection errors, timeouts, 408/409/429/5xx with Retry-After, and its Azure client (`api-version`
query, `api-key` header). What the SDK cannot see is handled here: a body cut mid-way or one that
is not a completion (HTML, malformed JSON) is retried, a huge body is refused, an answer longer
than the per-sample limit is cut (and the cut recorded), and `content: null` is recorded as an
empty answer (a refusal).

All k samples of a prompt are asked in one request with `n=k`, under the prompt's seed. A server
that answers fewer choices (or refuses `n`) is detected once and then gets single requests, sample
i under the prompt's seed + i. The API key is read from an environment variable whose *name* the
user gives; the key never reaches settings, cache keys, logs, errors or reports, and neither do
credentials written into `base_url` (see `audit.redact`).

Requests run on an event loop in a background thread; finished prompts are handed to the caller
as they complete, so every finished sample is written before a Ctrl-C, which cancels the requests
in flight and returns within about a second.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import queue
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.config import Sampling
from audit.errors import CollectionError, UsageError
from audit.redact import redact_text, redact_url
from audit.suites import Prompt

log = logging.getLogger("audit")

CHARS_PER_TOKEN = 32  # an answer longer than max_new_tokens x 32 characters cannot be that many tokens
MIN_OUTPUT_CHARS = 512
MAX_BODY_BYTES = 64 * 1024 * 1024  # a larger response body is refused, not read
CANCEL_GRACE_S = 1.0  # after Ctrl-C, how long cancelled requests get to close
AZURE_API_VERSION = "2024-10-21"
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com", ".azure.com")
_RETRYABLE = {408, 409, 429}

# The valid form of each option, named in the error when a value is wrong.
OPTION_FORMS = {
    "base_url": "base_url=http://HOST:PORT/v1 (an http:// or https:// URL)",
    "model": "model=NAME (the deployment name on Azure)",
    "mode": "mode=chat or mode=completions",
    "api_type": "api_type=auto, openai or azure",
    "api_version": "api_version=2024-10-21 (Azure only)",
    "api_key_env": "api_key_env=VARIABLE (the name of the variable that holds the key)",
    "concurrency": "concurrency=N, an integer from 1 to 256",
    "timeout": "timeout=SECONDS, a finite number above 0 and at most 3600",
    "max_retries": "max_retries=N, an integer from 0 to 50",
    "n_per_request": "n_per_request=auto, always or never",
    "max_output_chars": "max_output_chars=N (characters kept per answer) or auto",
}


class EndpointError(CollectionError):
    """The endpoint kept failing after retries, or refused the request."""


class Answer(str):
    """One sample's text plus what happened to it (`flags`, copied into its sample record)."""

    flags: dict[str, Any]

    def __new__(cls, text: str, **flags: Any) -> Answer:
        obj = super().__new__(cls, text)
        obj.flags = flags
        return obj


class OpenAIOptions(BaseModel):
    """Options of the openai backend (`--backend-option KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    # Each description is the option's valid form: the registry names it when a value is wrong.
    base_url: str = Field(description="an http:// or https:// URL with a host, e.g. http://HOST:PORT/v1")
    model: str = Field(min_length=1, description="the model name (the deployment name on Azure OpenAI)")
    mode: Literal["chat", "completions"] = Field("chat", description="chat or completions")
    api_type: Literal["auto", "openai", "azure"] = Field(
        "auto", description="auto (by the host name), openai, or azure (api-version query, api-key header)"
    )
    api_version: str | None = Field(None, description=f"the Azure api-version (default {AZURE_API_VERSION})")
    api_key_env: str | None = Field(None, description="the NAME of the environment variable holding the key")
    concurrency: int = Field(
        4, ge=1, le=256, description="requests in flight at once, an integer from 1 to 256"
    )
    timeout: float = Field(
        60.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="seconds per request, a finite number above 0, at most 3600",
    )
    max_retries: int = Field(
        5,
        ge=0,
        le=50,
        description="retries per request (connection errors, 408/409/429/5xx, bad bodies), 0 to 50",
    )
    n_per_request: Literal["auto", "always", "never"] = Field(
        "auto", description="auto, always or never: ask all k samples in one request (n=k); auto falls back"
    )
    max_output_chars: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="characters kept per answer, or auto (max_new_tokens x 32, at least 512)",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        try:
            parts = urlsplit(value)
            host = parts.hostname
            _ = parts.port  # a port that is not a number in 0-65535 raises here, as a usage error
        except ValueError:
            host = None
            parts = None
        if parts is None or parts.scheme not in {"http", "https"} or not host:
            raise ValueError("not an http:// or https:// URL with a host (and a valid port)")
        return value

    @field_validator("max_output_chars", "api_version", "api_key_env", mode="before")
    @classmethod
    def _auto(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in {"", "auto"} else value


def parse_options(raw: OpenAIOptions | Mapping[str, Any]) -> OpenAIOptions:
    """Validate backend options; a wrong value is a UsageError naming the option and its valid form."""
    if isinstance(raw, OpenAIOptions):
        return raw
    try:
        return OpenAIOptions.model_validate(dict(raw))
    except ValidationError as exc:
        errors = exc.errors()
        unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and e["loc"])
        if unknown:
            raise UsageError(
                f"unknown openai backend option(s): {', '.join(unknown)}",
                f"options: {', '.join(OpenAIOptions.model_fields)}",
            ) from exc
        if any(e["type"] == "missing" for e in errors):
            raise UsageError(
                "the openai backend needs base_url and model",
                "--backend-option base_url=http://localhost:8000/v1 --backend-option model=NAME",
            ) from exc
        first = errors[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise UsageError(
            f"bad openai backend option {name}: {msg}", f"use --backend-option {OPTION_FORMS.get(name, name)}"
        ) from exc


class _BadBody(Exception):
    """A 200 answer whose body is not a completion, or was cut: retried by us (the SDK cannot see it)."""


class _TooLarge(Exception):
    """A response body beyond MAX_BODY_BYTES: refused, not retried."""


def _azure_host(host: str) -> bool:
    return any(host.endswith(suffix) for suffix in _AZURE_HOSTS)


class OpenAIBackend:
    """Chat or completions requests through the `openai` SDK, n=k per prompt, bounded concurrency."""

    name = "openai"
    remote = True  # outputs come from an endpoint: no local card needed, sampling overlaps scoring
    Options = OpenAIOptions

    def __init__(self, options: OpenAIOptions | Mapping[str, Any], **context: Any) -> None:
        self.options = o = parse_options(options)
        self.model = o.model
        self.mode = o.mode
        self.base_url = o.base_url
        self.shown_url = redact_url(o.base_url)  # what reports, logs, errors and cache keys see
        parts = urlsplit(o.base_url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.api_type: Literal["openai", "azure"] = (
            o.api_type
            if o.api_type != "auto"
            else "azure"
            if (o.api_version or "api-version" in query or _azure_host(parts.hostname or ""))
            else "openai"
        )
        self.api_version = o.api_version or query.pop("api-version", None) or AZURE_API_VERSION
        if self.api_type != "azure":
            self.api_version = ""
        self._query = query  # sent with every request (never shown: it may hold a key)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{parts.port}" if parts.port else host
        self._endpoint = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._key: str | None = None
        if o.api_key_env:
            self._key = os.environ.get(o.api_key_env)
            if not self._key:
                raise UsageError(
                    f"environment variable {o.api_key_env} is empty or unset",
                    f"export {o.api_key_env}=... (the key itself is never written anywhere)",
                )
        elif self.api_type == "azure":
            raise UsageError(
                "Azure endpoints need a key",
                "--backend-option api_key_env=AZURE_OPENAI_API_KEY (the variable's name)",
            )
        self._basic: str | None = None
        if parts.username is not None:  # credentials in the URL: HTTP Basic, as a browser would
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._basic = "Basic " + base64.b64encode(pair.encode()).decode()
        self.concurrency = o.concurrency
        self.timeout = o.timeout
        self.max_retries = o.max_retries
        self._n_ok: bool | None = None if o.n_per_request == "auto" else o.n_per_request == "always"
        self.requests = 0  # requests sent, retries by the SDK not counted
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client_obj: Any = None

    # ------------------------------------------------------------------ what the cache keys see
    def settings(self) -> dict[str, Any]:
        """What determines an answer (cache keys and the report): never secrets."""
        o = self.options
        out: dict[str, Any] = {
            "backend": "openai",
            "base_url": self.shown_url,
            "model": self.model,
            "mode": self.mode,
            # n=k per request: the request's seed is the prompt's (single requests: seed + sample index)
            "n_per_request": o.n_per_request,
            "seed": "per-sample" if o.n_per_request == "never" else "per-prompt",
        }
        if self.api_type == "azure":
            out["api_type"] = "azure"
            out["api_version"] = self.api_version
        if o.max_output_chars is not None:
            out["max_output_chars"] = o.max_output_chars
        return out

    # ------------------------------------------------------------------ the client
    def _client(self) -> Any:
        import openai

        headers: dict[str, Any] = {}
        if self._basic and not self._key:
            headers["Authorization"] = self._basic
        common: dict[str, Any] = {
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "default_headers": headers or None,
            "default_query": self._query or None,
        }
        if self.api_type == "azure":
            path = urlsplit(self._endpoint).path
            if path in {"", "/", "/openai"}:  # classic Azure OpenAI: /openai/deployments/{model}/...
                root = self._endpoint[: len(self._endpoint) - len(path)]
                return openai.AsyncAzureOpenAI(
                    azure_endpoint=root, api_version=self.api_version, api_key=self._key, **common
                )
            # Azure AI Foundry (/models) and other paths: that base URL, api-version and api-key
            return openai.AsyncAzureOpenAI(
                base_url=self._endpoint, api_version=self.api_version, api_key=self._key, **common
            )
        return openai.AsyncOpenAI(base_url=self._endpoint, api_key=self._key or "unused", **common)

    # ------------------------------------------------------------------ one request
    def _limit(self, sampling: Sampling) -> int:
        o = self.options.max_output_chars
        return o if o is not None else max(MIN_OUTPUT_CHARS, sampling.max_new_tokens * CHARS_PER_TOKEN)

    def _answers(self, data: bytes, limit: int) -> list[Answer]:
        """The choices of a completion body, in index order (raises _BadBody when it is not one)."""
        try:
            body = json.loads(data)
        except (ValueError, RecursionError) as exc:
            head = data[:60].decode("utf-8", "replace").replace("\n", " ")
            raise _BadBody(f"a body that is not JSON ({head!r}...)") from exc
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            raise _BadBody("a body without choices")
        if all(isinstance(c.get("index"), int) for c in choices):
            choices = sorted(choices, key=lambda c: c["index"])
        out = []
        for c in choices:
            if self.mode == "chat":
                msg = c.get("message")
                if not isinstance(msg, dict):
                    raise _BadBody("a choice without a message")
                content = msg.get("content")
                if isinstance(content, list):  # content parts
                    content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            else:
                content = c.get("text")
            if content is None:
                out.append(Answer("", null_content=True))
            elif not isinstance(content, str):
                raise _BadBody("a choice whose content is not text")
            elif len(content) > limit:
                out.append(Answer(content[:limit], truncated_from=len(content)))
            else:
                out.append(Answer(content))
        return out

    async def _read(self, resp: Any) -> bytes:
        buf = bytearray()
        async for chunk in resp.iter_bytes():
            buf += chunk
            if len(buf) > MAX_BODY_BYTES:
                raise _TooLarge
        return bytes(buf)

    async def _request(
        self, client: Any, prompt: Prompt, sampling: Sampling, seed: int, n: int
    ) -> list[Answer]:
        """One completion request (the SDK retries transport and status faults; we retry bad bodies)."""
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
        }
        if n > 1:
            kwargs["n"] = n
        if not self._key and not self._basic:
            kwargs["extra_headers"] = {"Authorization": openai.Omit()}  # no key: no Authorization at all
        if self.mode == "chat":
            resource = client.chat.completions
            kwargs["messages"] = [{"role": "user", "content": prompt.text}]
        else:
            resource = client.completions
            kwargs["prompt"] = prompt.text
        limit = self._limit(sampling)
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            self.requests += 1
            try:
                async with resource.with_streaming_response.create(**kwargs) as resp:
                    try:
                        data = await asyncio.wait_for(self._read(resp), self.timeout)
                    except TimeoutError as exc:
                        raise _BadBody(f"a body not finished within {self.timeout:g} s") from exc
                    except _TooLarge:
                        raise
                    except Exception as exc:  # noqa: BLE001 - the transport's error while the body streams
                        raise _BadBody(f"a body cut short ({type(exc).__name__})") from exc
                return self._answers(data, limit)
            except openai.APIStatusError as exc:
                raise self._status_error(exc) from exc
            except openai.APITimeoutError as exc:
                raise EndpointError(
                    f"endpoint {self.shown_url} did not answer within {self.timeout:g} s "
                    f"({self.max_retries} retries)",
                    "check that the server is up; raise --backend-option timeout=SECONDS",
                ) from exc
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise EndpointError(
                    f"endpoint {self.shown_url} failed: {type(cause).__name__}: "
                    f"{redact_text(str(cause))[:200]} ({self.max_retries} retries)",
                    "check that the server is up and base_url is right",
                ) from exc
            except _TooLarge as exc:
                raise EndpointError(
                    f"endpoint {self.shown_url} answered more than {MAX_BODY_BYTES >> 20} MiB "
                    f"for {n} answer(s) of {sampling.max_new_tokens} tokens",
                    "check that base_url points at a model server and max_new_tokens is honoured",
                ) from exc
            except _BadBody as exc:
                what = str(exc)
                if attempt == self.max_retries:
                    raise EndpointError(
                        f"endpoint {self.shown_url} answered {what} ({self.max_retries} retries)",
                        f"is mode={self.mode} right for this server, and base_url its API root?",
                    ) from exc
                log.debug("endpoint answered %s; retrying (attempt %d)", what, attempt + 1)
                await asyncio.sleep(min(delay, 8.0) * (1 - 0.25 * random.random()))
                delay *= 2
        raise AssertionError("unreachable")

    def _status_error(self, exc: Any) -> EndpointError:
        status = int(getattr(exc, "status_code", 0))
        if status in (401, 403):
            hint = "check api_key_env and the key's permissions"
        elif status in _RETRYABLE or status >= 500:
            hint = "the server is overloaded or failing: retry later, lower concurrency, or raise max_retries"
        elif status == 404:
            hint = "check base_url (usually ending in /v1), model (the deployment name on Azure) and mode"
        else:
            hint = "check model, mode and api_version"
        detail = redact_text(str(getattr(exc, "message", "")))[:200]
        return EndpointError(
            f"endpoint {self.shown_url} answered HTTP {status} for model {self.model}: {detail}", hint
        )

    async def _prompt_samples(
        self, client: Any, sem: asyncio.Semaphore, prompt: Prompt, sampling: Sampling, seed: int
    ) -> list[Answer]:
        """The k answers of one prompt: one n=k request, then single requests for what is missing."""
        import openai

        k = sampling.samples_per_prompt
        out: list[Answer] = []
        if k > 1 and self._n_ok is not False:
            try:
                async with sem:
                    out = (await self._request(client, prompt, sampling, seed, k))[:k]
            except EndpointError as exc:
                status = getattr(exc.__cause__, "status_code", None)
                # Decided by the option, not by the shared state: with several requests in flight, the
                # first refusal flips _n_ok and the others must fall back too instead of failing the run.
                if (
                    self.options.n_per_request == "auto"
                    and isinstance(exc.__cause__, openai.APIStatusError)
                    and status in (400, 422)
                ):
                    if self._n_ok is None:  # said once, by the first refusal
                        log.info(
                            "the endpoint refuses n=%d (HTTP %s): asking one sample per request", k, status
                        )
                    self._n_ok = False
                    out = []
                else:
                    raise
            if self._n_ok is None and len(out) < k:
                log.info(
                    "the endpoint answered %d of n=%d choices: asking one sample per request", len(out), k
                )
                self._n_ok = False
            elif len(out) == k:
                self._n_ok = True if self._n_ok is None else self._n_ok

        async def single(i: int) -> Answer:
            async with sem:
                return (await self._request(client, prompt, sampling, seed + i, 1))[0]

        rest = await asyncio.gather(*(single(i) for i in range(len(out), k)))
        return out + list(rest)

    async def _produce(
        self,
        prompts: list[Prompt],
        sampling: Sampling,
        seeds: dict[str, int],
        put: Callable[[tuple[Prompt, list[str]] | BaseException], None],
    ) -> None:
        """Run the prompts, `concurrency` requests in flight, handing each finished prompt to `put`."""
        if self._client_obj is None:  # one client (and its connection pool) for the backend's life
            self._client_obj = self._client()
        client = self._client_obj
        sem = asyncio.Semaphore(self.concurrency)
        todo = list(reversed(prompts))
        running: dict[asyncio.Task[list[Answer]], Prompt] = {}
        try:
            while todo or running:
                while todo and len(running) < self.concurrency:
                    p = todo.pop()
                    task = asyncio.create_task(self._prompt_samples(client, sem, p, sampling, seeds[p.id]))
                    running[task] = p
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                failed: BaseException | None = None
                for t in done:
                    p = running.pop(t)
                    if t.exception() is not None:
                        failed = failed or t.exception()
                    else:
                        put((p, list(t.result())))
                if failed is not None:
                    put(failed)
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            put(exc)
        finally:
            for t in running:
                t.cancel()
            if running:
                await asyncio.wait(running, timeout=CANCEL_GRACE_S)

    # ------------------------------------------------------------------ the Backend protocol
    def generate_many(
        self, suite: str, prompts: list[Prompt], sampling: Sampling, seeds: dict[str, int]
    ) -> Iterator[tuple[Prompt, list[str]]]:
        """Each prompt's k answers, in the order prompts finish. Ctrl-C cancels what is in flight."""
        if not prompts:
            return
        results: queue.Queue[tuple[Prompt, list[str]] | BaseException] = queue.Queue()
        finished = threading.Event()
        loop = self._event_loop()

        async def main() -> None:
            try:
                await self._produce(prompts, sampling, seeds, results.put)
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(main(), loop)
        received = 0
        complete = False
        try:
            while received < len(prompts):
                try:
                    item = results.get(timeout=0.1)  # short waits: Ctrl-C is seen at once
                except queue.Empty as exc:
                    if finished.is_set() and results.empty():
                        raise EndpointError("the endpoint backend stopped early", "re-run with -v") from exc
                    continue
                if isinstance(item, BaseException):
                    raise item
                received += 1
                yield item
            complete = True
        finally:
            if not (complete and finished.wait(CANCEL_GRACE_S)):
                future.cancel()  # cancels the requests in flight (Ctrl-C, an error, or a closed generator)
                finished.wait(CANCEL_GRACE_S)

    def close(self) -> None:
        """Close the client's connections and stop the backend's event-loop thread (idempotent)."""
        loop, thread, client = self._loop, self._thread, self._client_obj
        self._loop, self._thread, self._client_obj = None, None, None
        if loop is None or thread is None or not thread.is_alive():
            return
        if client is not None and hasattr(client, "close"):
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        if not thread.is_alive():
            loop.close()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The backend's event loop, running in a daemon thread (started on first use)."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            self._loop = asyncio.new_event_loop()
            self._client_obj = None
            self._thread = threading.Thread(target=self._loop.run_forever, name="openai-backend", daemon=True)
            self._thread.start()
        return self._loop
