"""A real, scriptable OpenAI-compatible HTTP server for tests (no mocks of any client).

It listens on 127.0.0.1 at a free port, in a background thread, and speaks enough of the
protocol for the chat client and the campaign: ``POST /v1/chat/completions`` and
``GET /v1/models``. Use it as a context manager::

    from fake_openai import FakeOpenAI

    with FakeOpenAI([{"status": 429, "headers": {"Retry-After": "0"}}, {"content": "hello"}]) as server:
        client = ChatClient(server.base_url, "fake-model")     # base_url ends with /v1
        ...
        assert server.requests[-1].json["model"] == "fake-model"

**The script.** A list of replies consumed one per chat request, in order; once it runs out the
last reply repeats (so ``[{"status": 500}]`` fails for ever). Or a callable
``(request_json) -> reply`` for dynamic replies (e.g. an LLM stand-in in a campaign test that
answers with a SEARCH/REPLACE block built from the prompt). A reply is a :class:`Reply`, a dict
of its fields, or a plain string (the completion text). Fields:

* ``content``: the completion text of a normal 200 reply (with ``usage`` unless told otherwise);
* ``status`` / ``headers``: e.g. ``{"status": 429, "headers": {"Retry-After": "0"}}``; an error
  status without a ``body`` gets an OpenAI-style ``{"error": {...}}`` body;
* ``body``: the raw body, sent as is (``"not json"``, or hand-made JSON);
* ``hang``: seconds to wait before answering (cut short when the server stops, so a hanging
  reply never holds up shutdown);
* ``trickle``: seconds between single bytes of the whole response, headers included: a server
  that is alive but never finishes, for testing total deadlines;
* ``drop``: close the connection without answering;
* ``usage``: ``True`` (word counts), ``False`` (omit the field), or a dict sent as is;
* ``finish_reason``, ``model``: override those fields of a 200 reply.

Requests to ``/v1/models`` and rejected requests (401, 404) do not consume the script. Every
request, whatever its fate, is recorded in ``server.requests`` (method, path, headers, raw body,
parsed JSON). With ``api_key`` set the server demands ``Authorization: Bearer <api_key>`` and
answers 401 otherwise, as OpenAI does. On exit the server stops serving, closes its port and
joins every handler thread; errors raised inside the server (e.g. by a script callable) are
collected in ``server.errors`` rather than printed.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAI", "RecordedRequest", "Reply"]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


@dataclass
class Reply:
    """One scripted answer to a chat request (see the module docstring for each field)."""

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes | None = None
    hang: float = 0.0
    trickle: float = 0.0
    drop: bool = False
    usage: dict | bool = True
    finish_reason: str | None = "stop"
    model: str | None = None

    @classmethod
    def coerce(cls, value: Reply | dict | str) -> Reply:
        """Accept the short forms used in scripts: a dict of fields or the completion text."""
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(content=value)
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise TypeError(f"unknown reply field(s) {sorted(unknown)}; known: {sorted(known)}")
            return cls(**value)
        raise TypeError(f"a scripted reply must be a Reply, dict or str, not {type(value).__name__}")


@dataclass
class RecordedRequest:
    """What the server received, for assertions about what a client sent."""

    method: str
    path: str
    headers: dict[str, str]  # as sent (use .header() for a case-insensitive look-up)
    body: bytes
    json: Any  # the parsed body, or None when empty or not JSON
    time: float  # time.monotonic() on arrival

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


Script = list | tuple | Callable[[Any], "Reply | dict | str"]


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on server_close so that nothing outlives the `with` block.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        import traceback

        self.fake.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that connects and sends nothing cannot hold a handler thread for ever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # -------------------------------------------------------------- entry points

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        path = self.path.split("?", 1)[0]
        fake._record(RecordedRequest(self.command, path, dict(self.headers.items()), raw, parsed, time.monotonic()))

        if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            msg = (
                "Incorrect API key provided." if self.headers.get("Authorization") else "You didn't provide an API key."
            )
            self._send_error(401, msg)
            return
        if self.command == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake-openai"} for m in fake.models]
            self._send(200, {}, json.dumps({"object": "list", "data": data}).encode())
            return
        if self.command == "POST" and path == "/v1/chat/completions":
            if not isinstance(parsed, dict):
                self._send_error(400, "We could not parse the JSON body of your request.")
                return
            try:
                reply = fake._next_reply(parsed)
            except Exception as exc:  # a broken script is the test's bug: report it loudly, as a 500
                fake.errors.append(f"script failed: {exc!r}")
                self._send_error(500, f"fake server script failed: {exc!r}")
                return
            self._answer(reply, parsed)
            return
        self._send_error(404, f"Invalid URL ({self.command} {path})")

    # -------------------------------------------------------------- replies

    def _answer(self, reply: Reply, request: dict) -> None:
        fake = self.server.fake
        if reply.hang > 0 and fake._stopping.wait(reply.hang):
            return  # shutting down: leave without answering
        if reply.drop:
            return
        if reply.body is not None:
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            self._send(reply.status, reply.headers, body, trickle=reply.trickle)
            return
        if reply.status != 200:
            self._send_error(reply.status, f"scripted error {reply.status}", reply.headers, trickle=reply.trickle)
            return
        prompt_words = sum(len(str(m.get("content") or "").split()) for m in request.get("messages") or [])
        completion_words = len(reply.content.split())
        payload: dict[str, Any] = {
            "id": f"chatcmpl-fake-{next(fake._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or request.get("model") or "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        if reply.usage is True:
            payload["usage"] = {
                "prompt_tokens": prompt_words,
                "completion_tokens": completion_words,
                "total_tokens": prompt_words + completion_words,
            }
        elif isinstance(reply.usage, dict):
            payload["usage"] = reply.usage
        self._send(200, reply.headers, json.dumps(payload).encode(), trickle=reply.trickle)

    def _send_error(self, status: int, message: str, headers: dict | None = None, *, trickle: float = 0.0) -> None:
        kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
        body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
        self._send(status, headers or {}, body, trickle=trickle)

    def _send(self, status: int, headers: dict[str, str], body: bytes, *, trickle: float = 0.0) -> None:
        """Write the whole response ourselves, so that it can also be trickled a byte at a time."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        lines = [f"HTTP/1.1 {status} {phrase}"]
        merged = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}
        merged.update(headers)
        lines += [f"{k}: {v}" for k, v in merged.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        stopping = self.server.fake._stopping
        try:
            if trickle > 0:
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    if stopping.wait(trickle):
                        return
            else:
                self.wfile.write(data)
                self.wfile.flush()
        except OSError:
            pass  # the client gave up (e.g. its deadline passed): nothing to do


class FakeOpenAI:
    """A scripted OpenAI-compatible server on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] | list[str] = ("fake-model",),
        host: str = "127.0.0.1",
    ) -> None:
        if script is None:
            script = [Reply(content="ok")]
        if callable(script):
            self._script: Callable[[Any], Any] | list[Reply] = script
        else:
            replies = [Reply.coerce(r) for r in script]  # fail in the test, not in a server thread
            if not replies:
                raise ValueError("the script needs at least one reply")
            self._script = replies
        self.api_key = api_key
        self.models = list(models)
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.replies_used = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAI:
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAI is already running")
        self._stopping.clear()
        httpd = _Server((self.host, 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers, close the port and join every thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()  # joins handler threads (block_on_close)
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAI is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The server's root, without ``/v1``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client wants as its base URL: the root plus ``/v1``."""
        return f"{self.url}/v1"

    # -------------------------------------------------------------- script and records

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat-completion requests only (not /models, not other paths)."""
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def set_script(self, script: Script) -> None:
        """Replace the script while running (the next chat request gets its first reply)."""
        new = script if callable(script) else [Reply.coerce(r) for r in script]
        with self._lock:
            self._script = new
            self.replies_used = 0

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, request_json: Any) -> Reply:
        with self._lock:
            script = self._script
            index = self.replies_used
            self.replies_used += 1
        if callable(script):
            return Reply.coerce(script(request_json))
        return script[min(index, len(script) - 1)]


def free_port_with_nothing_listening() -> int:
    """A local port that refuses connections: bound then closed, so nothing listens there now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
