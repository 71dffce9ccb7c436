"""Captions from any OpenAI-compatible endpoint (vLLM's OpenAI server, OpenAI, gateways): ``--captioning-backend openai``.

Each window is one ``POST {base_url}/chat/completions`` whose user message holds the window's sampled
frames as base64 JPEG ``image_url`` parts, then the prompt (the form vLLM's OpenAI server and OpenAI
accept for a sequence of frames). Windows go out in parallel, at most ``concurrency`` at a time per
Python worker. 429, 408, 5xx and connection failures are retried with exponential backoff (a
``Retry-After`` header wins); a window that still fails, or that the server refuses (401, 400...),
comes back as a :class:`Caption` with ``error`` set, so the job goes on and the clip is retried by
``--retry-errors``. Only the standard library is used (``urllib``).
"""

import base64
import email.utils
import functools
import io
import json
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from curate_udfs.captioning.generation import Caption
from curate_udfs.captioning.inputs import WindowFrames

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})  # and any other 5xx
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class ApiSettings:
    """Where and how to call the endpoint; built from ``--captioning-api-*`` on the driver.

    Example::

        ApiSettings("http://gpu-box:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct", api_key="EMPTY")
    """

    base_url: str
    model: str
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 5  # tries after the first
    timeout_s: float = 120.0
    backoff_s: float = 1.0  # the first wait; doubled at each retry, up to MAX_BACKOFF_S, with jitter
    jpeg_quality: int = 90

    def __repr__(self) -> str:  # never print the key
        return f"ApiSettings(base_url={self.base_url!r}, model={self.model!r}, concurrency={self.concurrency})"


class ApiFailure(Exception):
    """One request's failure: ``retryable`` (429, 5xx, no connection) or not; ``retry_after`` seconds if the server said."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable, self.retry_after = retryable, retry_after


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds to wait: delta-seconds, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(attempt: int, base_s: float, retry_after: float | None) -> float:
    """Seconds before retry ``attempt`` (0 = the first retry): the server's ``Retry-After`` when given, else
    ``base_s * 2**attempt`` (at most :data:`MAX_BACKOFF_S`) times a random factor in [0.5, 1]."""
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF_S * 5)
    return min(MAX_BACKOFF_S, base_s * 2 ** attempt) * random.uniform(0.5, 1.0)


def frame_parts(frames: np.ndarray, quality: int = 90) -> list[dict]:
    """(N, H, W, 3) uint8 RGB frames as OpenAI ``image_url`` content parts (base64 JPEG data URLs)."""
    from PIL import Image

    parts = []
    for frame in frames:
        out = io.BytesIO()
        Image.fromarray(frame).save(out, format="JPEG", quality=quality)
        url = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def chat_request(settings: ApiSettings, frames: np.ndarray, prompt_text: str, max_output_tokens: int) -> dict:
    """The ``chat.completions`` body for one window: its frames, then the prompt; greedy."""
    content = [*frame_parts(frames, settings.jpeg_quality), {"type": "text", "text": prompt_text}]
    return {"model": settings.model, "messages": [{"role": "user", "content": content}],
            "max_tokens": max_output_tokens, "temperature": 0.0}


class OpenAICaptioner:
    """Captions windows through an OpenAI-compatible ``chat.completions`` endpoint, in parallel.

    Example::

        captioner = OpenAICaptioner(ApiSettings("http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct"))
        captions = captioner.caption(windows, "Describe the video.", max_output_tokens=512)

    ``sleep`` is how retries wait (``time.sleep``; tests may pass a recorder).
    """

    def __init__(self, settings: ApiSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings, self.sleep = settings, sleep
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="caption-api")

    def caption(self, windows: Sequence[WindowFrames], prompt_text: str, max_output_tokens: int) -> list[Caption]:
        return list(self.pool.map(lambda w: self.caption_one(w.rgb(), prompt_text, max_output_tokens), windows))

    def caption_one(self, frames: np.ndarray, prompt_text: str, max_output_tokens: int) -> Caption:
        """One window's caption, or a Caption with ``error`` when the endpoint never answered it."""
        body = json.dumps(chat_request(self.settings, frames, prompt_text, max_output_tokens)).encode()
        tries = self.settings.max_retries + 1
        for attempt in range(tries):
            try:
                return self._parse(self._post(body))
            except ApiFailure as failure:
                if not failure.retryable or attempt == tries - 1:
                    suffix = f" after {attempt + 1} tries" if failure.retryable else ""
                    return Caption(text=None, prompt_tokens=None, output_tokens=None,
                                   error=f"caption API {self.url}: {failure}{suffix}")
                self.sleep(backoff_delay(attempt, self.settings.backoff_s, failure.retry_after))
        raise AssertionError("unreachable")

    def _post(self, body: bytes) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.api_key:
            headers["Authorization"] = f"Bearer {self.settings.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            detail = e.read()[:300].decode("utf-8", "replace").strip()
            retryable = e.code in RETRYABLE_STATUSES or e.code >= 500
            raise ApiFailure(f"HTTP {e.code} {detail}".strip(), retryable,
                             retry_after_seconds(e.headers.get("Retry-After"))) from None
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise ApiFailure(f"no answer ({type(reason).__name__}: {reason})", retryable=True) from None
        except ValueError as e:  # a 200 whose body is not JSON
            raise ApiFailure(f"the answer is not JSON ({e})", retryable=True) from None

    @staticmethod
    def _parse(answer: dict) -> Caption:
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ApiFailure(f"the answer has no choices[0].message.content: {json.dumps(answer)[:200]}",
                             retryable=False) from None
        usage = answer.get("usage") or {}
        return Caption(text=(text or "").strip(), prompt_tokens=usage.get("prompt_tokens"),
                       output_tokens=usage.get("completion_tokens"))


@functools.lru_cache(maxsize=2)
def load_openai_captioner(settings: ApiSettings) -> OpenAICaptioner:
    """The API captioner for ``settings``, one per Python worker (its thread pool bounds the requests in flight)."""
    return OpenAICaptioner(settings)
