"""A fake OpenAI-compatible server on 127.0.0.1: chat and completions, with faults on demand.

Faults (`FakeOpenAI.script`, taken one per request in order, or `flaky_every`/`flaky_fault` for a
fault on every N-th request): `500`, `429` (Retry-After: 0), `429-retry-after` (Retry-After:
`retry_after`), `429-bare` (no Retry-After), `hang` (sleeps `hang_seconds`, released by `stop()`),
`malformed` (a JSON body cut short, with a correct Content-Length), `html` (a 200 HTML page),
`reset` (TCP RST before any byte), `close-mid-body` (headers and half the body, then close:
IncompleteRead), `huge` (an answer of `huge_chars` characters), `null` (`content: null`, a refusal).
`honour_n` makes it return n choices for `n`; `latency` plus `per_sample` × n is slept per request.
The old switches (`fail_429`, `fail_500`, `slow`/`delay`, `every_delay`) still work.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = ["you", "are", "a", "lovely", "stupid", "idiot", "friend", "day", "hate", "great", "and", "the"]
FAULTS = {
    "500",
    "429",
    "429-retry-after",
    "429-bare",
    "hang",
    "malformed",
    "html",
    "reset",
    "close-mid-body",
    "huge",
    "null",
}


def fake_completion(prompt: str, seed: Any, max_tokens: int) -> str:
    """A deterministic 'model': words picked by a hash of prompt and seed."""
    h = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    return " " + " ".join(WORDS[b % len(WORDS)] for b in h[: min(max_tokens, 8)])


def fake_choice(prompt: str, seed: Any, max_tokens: int, index: int) -> str:
    """Choice `index` of a request with `n`: choice 0 is what a single request with that seed answers."""
    return fake_completion(prompt, seed if index == 0 else f"{seed}/{index}", max_tokens)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops concurrent connects (1 s SYN retries)

    def handle_error(self, request: Any, client_address: Any) -> None:  # faults are on purpose: stay quiet
        pass


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.fail_429 = 0  # answer the next N requests with 429
        self.fail_500 = 0
        self.slow = 0  # the next N requests sleep `delay` seconds
        self.delay = 0.0
        self.every_delay = 0.0  # every request sleeps this long
        self.script: list[str] = []  # faults for the next requests, in order ("ok" for none)
        self.flaky_every = 0  # every N-th request (N, 2N, ...) gets `flaky_fault`
        self.flaky_fault = "close-mid-body"
        self.fault_all = ""  # every request gets this fault
        self.honour_n = False
        self.refuse_n = False  # answer a request with n > 1 by HTTP 400, as some servers do
        self.latency = 0.0  # seconds per request ...
        self.per_sample = 0.0  # ... plus this much per choice asked for (n)
        self.hang_seconds = 60.0
        self.retry_after = "1"
        self.huge_chars = 10 * 1024 * 1024
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self.lock:
            return len(self.requests)

    def stop(self) -> None:
        self.stopped.set()  # releases hanging requests
        self.server.shutdown()
        self.server.server_close()

    def _fault(self) -> str:
        """The fault for the request just counted (called under the lock)."""
        n = len(self.requests)
        if self.script:
            return self.script.pop(0)
        if self.fault_all:
            return self.fault_all
        if self.flaky_every and n % self.flaky_every == 0:
            return self.flaky_fault
        if self.fail_429 > 0:
            self.fail_429 -= 1
            return "429"
        if self.fail_500 > 0:
            self.fail_500 -= 1
            return "500"
        return "ok"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers do: no 40 ms delayed-ACK stalls
            wbufsize = 1 << 16  # headers and body leave in one write (flushed after each request)

            def log_message(self, *args: Any) -> None:
                pass

            def _raw(
                self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._raw(status, json.dumps(body).encode(), "application/json", headers)

            def _reset(self) -> None:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def do_GET(self) -> None:  # noqa: N802 - the request counter, for a server in another process
                if self.path.startswith("/_stats"):
                    self._send(200, {"requests": fake.count, "max_in_flight": fake.max_in_flight})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake.lock:
                    fake.requests.append(body)
                    fake.auth.append(self.headers.get("Authorization", ""))
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.paths.append(self.path)
                    fault = fake._fault()
                    sleep = fake.every_delay
                    if fake.slow > 0 and fault == "ok":
                        fake.slow -= 1
                        sleep = fake.delay
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                n = int(body.get("n") or 1) if fake.honour_n else 1
                sleep += fake.latency + fake.per_sample * n
                try:
                    if sleep:
                        fake.stopped.wait(sleep)
                    self._answer(body, fault, n)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _answer(self, body: dict[str, Any], fault: str, n: int) -> None:
                if fake.refuse_n and int(body.get("n") or 1) > 1:
                    self._send(
                        400, {"error": {"message": "n > 1 is not supported", "type": "invalid_request"}}
                    )
                    return
                if fault == "hang":
                    fake.stopped.wait(fake.hang_seconds)
                    self._reset()
                    return
                if fault == "reset":
                    self._reset()
                    return
                if fault == "429":
                    self._send(429, {"error": "rate limited"}, {"Retry-After": "0"})
                    return
                if fault == "429-retry-after":
                    self._send(429, {"error": "rate limited"}, {"Retry-After": fake.retry_after})
                    return
                if fault == "429-bare":
                    self._send(429, {"error": "rate limited"})
                    return
                if fault == "500":
                    self._send(500, {"error": "boom"})
                    return
                if fault == "html":
                    self._raw(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
                    return
                if fault == "malformed":
                    self._raw(
                        200, b'{"choices": [{"index": 0, "message": {"content": "cut', "application/json"
                    )
                    return
                route = self.path.partition("?")[0]
                chat = route.endswith("/chat/completions")
                if not chat and not route.endswith("/completions"):
                    self._send(404, {"error": "not found"})
                    return
                prompt = body["messages"][-1]["content"] if chat else body["prompt"]
                choices = []
                for i in range(n):
                    text: str | None = fake_choice(prompt, body.get("seed"), body.get("max_tokens", 16), i)
                    if fault == "huge":
                        text = "x" * fake.huge_chars
                    elif fault == "null":
                        text = None
                    if chat:
                        message: dict[str, Any] = {"role": "assistant", "content": text}
                        if text is None:
                            message["refusal"] = "I can't help with that."
                        choices.append({"index": i, "message": message, "finish_reason": "stop"})
                    else:
                        choices.append({"index": i, "text": text, "finish_reason": "stop"})
                data = json.dumps({"object": "chat.completion", "choices": choices}).encode()
                if fault == "close-mid-body":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()  # headers and half the body reach the client, then the close
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._raw(200, data, "application/json")

        return H


def serve_main(argv: list[str] | None = None) -> None:
    """Serve from its own process (benchmarks): prints the base URL, then serves until killed."""
    import argparse
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--honour-n", action="store_true")
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--per-sample", type=float, default=0.0)
    ap.add_argument("--flaky-every", type=int, default=0)
    args = ap.parse_args(argv)
    server = FakeOpenAI()
    server.honour_n, server.latency, server.per_sample = args.honour_n, args.latency, args.per_sample
    server.flaky_every = args.flaky_every
    sys.stdout.write(server.url + "\n")
    sys.stdout.flush()
    server.stopped.wait()


if __name__ == "__main__":
    serve_main()
