"""A fake OpenAI-compatible server on 127.0.0.1: chat and completions, with 429, 500 and slow answers on demand."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = ["you", "are", "a", "lovely", "stupid", "idiot", "friend", "day", "hate", "great", "and", "the"]


def fake_completion(prompt: str, seed: Any, max_tokens: int) -> str:
    """A deterministic 'model': words picked by a hash of prompt and seed."""
    h = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    return " " + " ".join(WORDS[b % len(WORDS)] for b in h[: min(max_tokens, 8)])


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.fail_429 = 0  # answer the next N requests with 429
        self.fail_500 = 0
        self.slow = 0  # the next N requests sleep `delay` seconds
        self.delay = 0.0
        self.every_delay = 0.0  # every request sleeps this long
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake.lock:
                    fake.requests.append(body)
                    fake.auth.append(self.headers.get("Authorization", ""))
                    if fake.fail_429 > 0:
                        fake.fail_429 -= 1
                        status = 429
                    elif fake.fail_500 > 0:
                        fake.fail_500 -= 1
                        status = 500
                    else:
                        status = 200
                    sleep = fake.every_delay
                    if fake.slow > 0 and status == 200:
                        fake.slow -= 1
                        sleep = fake.delay
                if sleep:
                    time.sleep(sleep)
                if status == 429:
                    self._send(429, {"error": "rate limited"}, {"Retry-After": "0"})
                    return
                if status == 500:
                    self._send(500, {"error": "boom"})
                    return
                if self.path.endswith("/chat/completions"):
                    prompt = body["messages"][-1]["content"]
                    text = fake_completion(prompt, body.get("seed"), body.get("max_tokens", 16))
                    self._send(
                        200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
                    )
                elif self.path.endswith("/completions"):
                    text = fake_completion(body["prompt"], body.get("seed"), body.get("max_tokens", 16))
                    self._send(200, {"choices": [{"index": 0, "text": text}]})
                else:
                    self._send(404, {"error": "not found"})

        return H
