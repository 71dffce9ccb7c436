"""A small OpenAI-compatible server on loopback, for tests and smoke tests of ``--captioning-backend openai``.

    python -m curate_udfs.testing.openai_server MODEL_DIR [--port 8000]

answers ``POST /v1/chat/completions`` the way vLLM's OpenAI server does for a user message of
``image_url`` frames (base64 data URLs) and text: the frames become one video for the VLM in
MODEL_DIR, captioned greedily through cliplake's transformers backend, with ``usage`` token counts.
Tests can also make it misbehave (``fail_first`` requests answered with a status and a
``Retry-After``, or every request failing) or answer with canned text (``answer``), so the client's
retries and parsing are exercised over real HTTP.
"""

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import numpy as np

SAMPLED_FPS = 2.0  # the rate the frames are taken to be sampled at (cliplake's default sampling rate)


def _frames(content: list[dict]) -> np.ndarray:
    from PIL import Image

    images = []
    for part in content:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            data = base64.b64decode(url.split(",", 1)[1])
            images.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    if not images:
        raise ValueError("no image_url parts in the user message")
    return np.stack(images)


class OpenAICompatibleServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) answering ``/v1/chat/completions``.

    Example::

        with OpenAICompatibleServer(model_dir=tiny_vlm) as server:
            ApiSettings(server.base_url, "tiny")        # http://127.0.0.1:PORT/v1

    ``model_dir``: a VLM checkpoint to caption with; ``answer``: instead, a function of (prompt text,
    frames) giving the reply. ``fail_first`` requests are answered ``fail_status`` (with ``Retry-After:
    retry_after`` when given); ``fail_always`` answers every request with that status. ``statuses``
    lists what each request got, ``arrivals`` when it came (``time.monotonic``).
    """

    def __init__(self, model_dir: str | None = None, *, answer: Callable[[str, np.ndarray], str] | None = None,
                 fail_first: int = 0, fail_status: int = 429, retry_after: str | None = None,
                 fail_always: int | None = None, port: int = 0):
        if (model_dir is None) == (answer is None):
            raise ValueError("give a model_dir to caption with, or an answer function")
        self.model_dir, self.answer = model_dir, answer
        self.fail_first, self.fail_status, self.retry_after, self.fail_always = fail_first, fail_status, retry_after, fail_always
        self.statuses: list[int] = []
        self.arrivals: list[float] = []
        self.prompts: list[str] = []
        self.frame_counts: list[int] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self._lock = threading.Lock()  # one generate at a time; bookkeeping
        self._captioner = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "OpenAICompatibleServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _reply(self, request: dict) -> dict:
        [message] = [m for m in request["messages"] if m["role"] == "user"]
        text = " ".join(p["text"] for p in message["content"] if p.get("type") == "text")
        frames = _frames(message["content"])
        with self._lock:
            self.prompts.append(text)
            self.frame_counts.append(len(frames))
        if self.answer is not None:
            content, prompt_tokens, output_tokens = self.answer(text, frames), len(frames) + len(text.split()), 1
        else:
            with self._lock:
                if self._captioner is None:
                    from curate_udfs.captioning.transformers_backend import TransformersCaptioner

                    self._captioner = TransformersCaptioner(self.model_dir, "cpu")
                [caption] = self._captioner.caption_frames([frames], [SAMPLED_FPS], text, int(request.get("max_tokens") or 64))
            content, prompt_tokens, output_tokens = caption.text, caption.prompt_tokens, caption.output_tokens
        return {
            "id": f"chatcmpl-{len(self.statuses)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
                      "total_tokens": prompt_tokens + output_tokens},
        }

    def _status_for_next(self) -> int:
        with self._lock:
            self.arrivals.append(time.monotonic())
            n = len(self.arrivals)
            status = self.fail_always or (self.fail_status if n <= self.fail_first else 200)
            self.statuses.append(status)
            return status

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "tiny", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                status = server._status_for_next()
                with server._lock:
                    server.authorizations.append(self.headers.get("Authorization"))
                if status != 200:
                    headers = {"Retry-After": server.retry_after} if server.retry_after is not None else {}
                    self._send(status, {"error": {"message": "try again later" if status == 429 else "server error",
                                                  "code": status}}, headers)
                    return
                try:
                    reply = server._reply(json.loads(body))
                except (ValueError, KeyError, TypeError) as e:
                    self._send(400, {"error": {"message": f"bad request: {e}"}})
                    return
                self._send(200, reply)

        return Handler


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    with OpenAICompatibleServer(options.model_dir, port=options.port) as running:
        print(f"serving {options.model_dir} at {running.base_url}", flush=True)
        try:
            running._thread.join()
        except KeyboardInterrupt:
            pass
