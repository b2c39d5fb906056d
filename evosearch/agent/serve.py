"""``evosearch agent serve``: a local OpenAI-compatible chat server over a transformers model (and a LoRA adapter).

Why: a campaign asks its models through :mod:`evosearch.propose.llm_client`, which speaks the
OpenAI chat-completions protocol. A proposer fine-tuned with ``evosearch agent sft|grpo`` is a
base model plus a PEFT adapter on disk; serving it here lets a campaign (or ``evosearch llm
check``) use it like any other endpoint, with no vLLM and no network. It is meant for one
campaign on one machine, not for throughput: requests are answered by a thread each, but
generation is serialised by a lock (one model, one device, and ``seed`` stays reproducible).

What it speaks:

* ``GET /v1/models`` (and ``/v1/models/NAME``): the served names. With an adapter, the
  adapter's name (``model_name``, else the adapter folder's name) comes first and is the
  default; the base model is served too, under its folder's name, with the adapter disabled,
  so a fine-tuned proposer can be compared with its base from one server.
* ``POST /v1/chat/completions``: ``model``, ``messages``, ``temperature``, ``top_p``,
  ``max_tokens`` or ``max_completion_tokens``, ``n``, ``seed``. The prompt is the tokenizer's
  chat template with the generation prompt; ``usage`` holds real token counts (the prompt once,
  the completions summed over the ``n`` choices, each up to and including its end token);
  ``finish_reason`` is ``stop`` when the model ended its turn, ``length`` when the token limit
  (``max_tokens``, ``max_new_tokens_cap`` or the context) cut it. ``stream`` is refused.
* Errors as OpenAI sends them, ``{"error": {"message", "type", "param", "code"}}``: 400 for a
  bad request (bad JSON, no messages, an unknown model, a value out of range), 404 for an
  unknown path, 411/413 for a body without a length or over 1 MiB, 500 if generation fails.

It binds 127.0.0.1 by default, and bound to loopback it answers only requests whose ``Host``
is a loopback name, so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evosearch.loopback import host_header_is_loopback, is_loopback

__all__ = ["EXTRA_HINT", "ChatRequest", "ChatServer", "RequestError", "ServedModel", "load_served_model",
           "make_server", "missing_extra", "quiet_progress", "serve_forever"]

EXTRA_HINT = "pip install 'evosearch[agent]'"
MAX_BODY = 1024 * 1024  # a campaign's prompt is tens of kilobytes; a megabyte is a broken or hostile client
MAX_DRAIN = 64 * 1024 * 1024  # an oversized body up to this is read and dropped before the 413 is sent
MAX_N = 16
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def missing_extra() -> str | None:
    """One line naming what to install when torch, transformers or peft cannot be imported, else None."""
    missing = []
    for module in ("torch", "transformers", "peft"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return f"{', '.join(missing)} not installed: {EXTRA_HINT}" if missing else None


# -- requests ------------------------------------------------------------------------------------


class RequestError(Exception):
    """A request the server refuses; becomes an OpenAI-style error body with ``status``."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    @property
    def kind(self) -> str:
        return "server_error" if self.status >= 500 else "invalid_request_error"

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ChatRequest:
    """A checked chat-completions request: every field in range, the messages as plain role/content pairs."""

    model: str
    messages: list[dict[str, str]]
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None
    n: int = 1
    seed: int | None = None


def _number(data: dict, key: str, default: float, low: float, high: float, *, low_open: bool = False) -> float:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(400, f"'{key}' must be a number, got {json.dumps(value)[:50]}", param=key)
    if not (low < value if low_open else low <= value) or value > high:
        bounds = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise RequestError(400, f"'{key}' must be in {bounds}, got {value}", param=key)
    return float(value)


def _integer(data: dict, key: str, low: int, high: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(400, f"'{key}' must be an integer, got {json.dumps(value)[:50]}", param=key)
    if value < low or (high is not None and value > high):
        raise RequestError(400, f"'{key}' must be between {low} and {high}" if high is not None
                           else f"'{key}' must be at least {low}, got {value}", param=key)
    return value


def _content(value: Any, index: int) -> str:
    """A message's text: a string, or OpenAI's list of ``{"type": "text", "text": ...}`` parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                       and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    raise RequestError(400, f"messages[{index}].content must be a string or a list of text parts",
                       param=f"messages[{index}].content")


def _messages(value: Any) -> list[dict[str, str]]:
    if value is None:
        raise RequestError(400, "'messages' is required: a list of {role, content}", param="messages")
    if not isinstance(value, list) or not value:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content}", param="messages")
    checked = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(400, f"messages[{index}] must be an object with a role among "
                               f"{', '.join(ROLES)}", param=f"messages[{index}]")
        checked.append({"role": ROLES[message["role"]], "content": _content(message.get("content"), index)})
    return checked


def parse_request(raw: bytes, names: list[str]) -> ChatRequest:
    """The request in ``raw``, checked against the served ``names``; a :class:`RequestError` says what is wrong."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(400, f"the body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise RequestError(400, "the body must be a JSON object")
    model = data.get("model", names[0])
    if model not in names:
        raise RequestError(400, f"the model {json.dumps(model)[:100]} is not served here; served: "
                           f"{', '.join(names)}", param="model", code="model_not_found")
    if data.get("stream"):
        raise RequestError(400, "streaming is not supported by this server: send \"stream\": false", param="stream")
    limit = _integer(data, "max_completion_tokens", 1)
    limit = _integer(data, "max_tokens", 1) if limit is None else limit
    return ChatRequest(model=model, messages=_messages(data.get("messages")),
                       temperature=_number(data, "temperature", 1.0, 0.0, 2.0),
                       top_p=_number(data, "top_p", 1.0, 0.0, 1.0, low_open=True), max_tokens=limit,
                       n=_integer(data, "n", 1, MAX_N) or 1, seed=_integer(data, "seed", 0, 2**64 - 1))


# -- the model -----------------------------------------------------------------------------------


def _check_folder(path: Path, what: str, marker: str, hint: str) -> Path:
    if not path.exists():
        raise ValueError(f"{what} path {path} does not exist")
    if not (path / marker).is_file():
        raise ValueError(f"{path} is not a {what} folder (no {marker}): {hint}")
    return path


def _device(requested: str) -> str:
    import torch

    from evosearch.devices import check

    check(requested)  # a DeviceError (a ValueError) that says why
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


@dataclass
class ServedModel:
    """A model and its tokenizer, ready to answer; ``names`` maps each served name to whether the adapter is on."""

    model: Any
    tokenizer: Any
    names: dict[str, bool]
    device: str
    context: int | None  # the model's maximum positions, when its config says
    eos_ids: frozenset[int]
    pad_id: int
    max_new_tokens_cap: int = 2048
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def default_name(self) -> str:
        return next(iter(self.names))

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat template's rendering with the generation prompt, tokenized as vLLM does (no extra specials)."""
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as err:  # a template that refuses these messages (e.g. a system role): the client's to fix
            raise RequestError(400, f"the chat template refused the messages: {err}", param="messages") from None
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def complete(self, request: ChatRequest) -> dict:
        """The OpenAI response body for ``request``.

        All of it runs under the lock, tokenizing included: a fast tokenizer shared by threads can
        fail with "Already borrowed" when transformers adjusts its settings during a call.
        """
        with self.lock:
            ids = self.prompt_ids(request.messages)
            room = self.context - len(ids) if self.context else self.max_new_tokens_cap
            if room <= 0:
                raise RequestError(400, f"the messages hold {len(ids)} tokens, the model's context is "
                                   f"{self.context}", param="messages", code="context_length_exceeded")
            limit = min(request.max_tokens or self.max_new_tokens_cap, self.max_new_tokens_cap, room)
            rows = self._generate(ids, request, limit)
            choices, completion_tokens = [], 0
            for index, row in enumerate(rows):
                text, used, reason = self._finish(row, limit)
                completion_tokens += used
                choices.append({"index": index, "message": {"role": "assistant", "content": text},
                                "logprobs": None, "finish_reason": reason})
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": request.model, "choices": choices,
                "usage": {"prompt_tokens": len(ids), "completion_tokens": completion_tokens,
                          "total_tokens": len(ids) + completion_tokens}}

    def _generate(self, ids: list[int], request: ChatRequest, limit: int) -> list[list[int]]:
        """``n`` continuations of ``ids`` (the prompt repeated, so greedy decoding takes ``n`` too)."""
        import torch
        from transformers import GenerationConfig

        if request.seed is not None:
            torch.manual_seed(request.seed)
        sample = request.temperature > 0
        config = GenerationConfig(max_new_tokens=limit, do_sample=sample, eos_token_id=sorted(self.eos_ids),
                                  pad_token_id=self.pad_id, **({"temperature": request.temperature,
                                                                "top_p": request.top_p, "top_k": 0} if sample else {}))
        inputs = torch.tensor([ids] * request.n, device=self.device)
        adapter_on = self.names[request.model]
        off = contextlib.nullcontext() if adapter_on or not hasattr(self.model, "disable_adapter") \
            else self.model.disable_adapter()
        with torch.inference_mode(), off:
            out = self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                      generation_config=config)
        return [row[len(ids):].tolist() for row in out]

    def _finish(self, row: list[int], limit: int) -> tuple[str, int, str]:
        """(text, tokens used, finish reason) of one generated row: it ends at the first end token."""
        for position, token in enumerate(row):
            if token in self.eos_ids:
                return self.tokenizer.decode(row[:position], skip_special_tokens=True), position + 1, "stop"
        return self.tokenizer.decode(row, skip_special_tokens=True), len(row), "length" if len(row) >= limit else "stop"


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """No progress bars or library deprecation notices meanwhile: a server's output is its own lines.

    (PEFT's loading trips a transformers ``FutureWarning`` that no user of this command can act on.)
    """
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _load(loader: Callable[[], Any], path: Path, what: str) -> Any:
    try:
        with quiet_progress():
            return loader()
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
        raise ValueError(f"cannot load the {what} in {path}: {str(err).splitlines()[0] if str(err) else err!r}") \
            from err


def load_served_model(model_path: str | Path, *, adapter: str | Path | None = None, model_name: str | None = None,
                      device: str = "auto", max_new_tokens_cap: int = 2048) -> ServedModel:
    """Load the base model (and the adapter on it) from local folders; a ValueError naming the path if it cannot."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = _check_folder(Path(model_path).expanduser(), "model", "config.json",
                         "give a local folder written by save_pretrained")
    lora = None if adapter is None else _check_folder(Path(adapter).expanduser(), "PEFT adapter", "adapter_config.json",
                                                      "give a folder a PEFT adapter was saved to")
    if max_new_tokens_cap < 1:
        raise ValueError(f"max_new_tokens_cap must be at least 1, got {max_new_tokens_cap}")
    where = _device(device)
    # The adapter's folder holds the tokenizer it was trained with, when the trainer saved one.
    tok_dir = lora if lora is not None and (lora / "tokenizer_config.json").is_file() else base
    tokenizer = _load(lambda: AutoTokenizer.from_pretrained(tok_dir, local_files_only=True), tok_dir, "tokenizer")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"the tokenizer in {tok_dir} has no chat template: serve an instruct/chat model")
    dtype = torch.float32 if where == "cpu" else "auto"
    model = _load(lambda: AutoModelForCausalLM.from_pretrained(base, local_files_only=True, dtype=dtype), base,
                  "model")
    base_name = Path(base).resolve().name
    names = {model_name or base_name: True}
    if lora is not None:
        from peft import PeftModel

        model = _load(lambda: PeftModel.from_pretrained(model, lora, local_files_only=True), lora, "adapter")
        names = {model_name or Path(lora).resolve().name: True}
        names.setdefault(base_name, False)
    model.to(where).eval()
    eos = model.generation_config.eos_token_id if model.generation_config is not None else None
    eos_ids = {*(eos if isinstance(eos, list) else [eos]), tokenizer.eos_token_id} - {None}
    if not eos_ids:
        raise ValueError(f"neither the model in {base} nor its tokenizer names an end-of-sequence token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
    context = getattr(model.config, "max_position_embeddings", None)
    return ServedModel(model=model, tokenizer=tokenizer, names=names, device=where, context=context,
                       eos_ids=frozenset(eos_ids), pad_id=pad, max_new_tokens_cap=max_new_tokens_cap)


# -- HTTP ----------------------------------------------------------------------------------------



class ChatServer(ThreadingHTTPServer):
    """One served model; ``log`` gets a line per request (the CLI prints them, tests leave it None)."""

    daemon_threads = True

    def __init__(self, served: ServedModel, host: str, port: int, log: Callable[[str], None] | None = None) -> None:
        self.served = served
        self.log = log
        self.loopback = is_loopback(host)
        if ":" in host:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__((host, port), ChatHandler)

    @property
    def url(self) -> str:
        """The base URL a client wants: ``http://HOST:PORT/v1``."""
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer
    server_version = "evosearch-agent"  # HTTP/1.0: one request per connection, so an unread body never lingers
    timeout = 60  # seconds a socket read or write may block: a client that stalls mid-request frees its thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        """Silence http.server's own stderr lines; requests are reported through ``server.log``."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path.rstrip("/")
        names = list(self.server.served.names)
        status, note = 200, ""
        try:
            if self.server.loopback and not self._host_allowed():
                raise RequestError(403, "this server answers only to localhost")
            if self.command == "GET" and path == "/v1/models":
                self._send(200, {"object": "list", "data": [self._model_card(n) for n in names]})
            elif self.command == "GET" and path.startswith("/v1/models/") and path[len("/v1/models/"):] in names:
                self._send(200, self._model_card(path[len("/v1/models/"):]))
            elif self.command == "POST" and path == "/v1/chat/completions":
                request = parse_request(self._body(), names)
                reply = self._complete(request)
                self._send(200, reply)
                usage = reply["usage"]
                note = f" {request.model} {usage['prompt_tokens']}+{usage['completion_tokens']} tokens"
            else:
                raise RequestError(404, f"no such endpoint: {self.command} {path or '/'}", code="unknown_url")
        except RequestError as err:
            status, note = err.status, f" {err.message}"
            self._send(err.status, err.body())
        if self.server.log is not None:
            self.server.log(f"{self.command} {path or '/'} {status}{note} ({time.monotonic() - started:.2f} s)")

    def _complete(self, request: ChatRequest) -> dict:
        try:
            return self.server.served.complete(request)
        except RequestError:
            raise
        except Exception as err:  # a failed generation is the server's fault: say so, keep serving
            raise RequestError(500, f"generation failed: {type(err).__name__}: {err}") from err

    def _model_card(self, name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "evosearch"}

    def _host_allowed(self) -> bool:
        return host_header_is_loopback(self.headers.get("Host", ""))

    def _body(self) -> bytes:
        """The request body, refused before reading when it has no length or is over :data:`MAX_BODY`."""
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a Content-Length header is required")
        if not length.strip().isdigit():
            raise RequestError(400, f"bad Content-Length {length[:40]!r}")
        size = int(length)
        if size > MAX_BODY:
            self._discard(size)
            raise RequestError(413, f"the body is {size} bytes; at most {MAX_BODY} are accepted")
        return self.rfile.read(size)

    def _discard(self, size: int) -> None:
        """Read and drop an oversized body, so the client, still sending, gets the 413 and not a broken pipe.

        Memory stays bounded (a chunk at a time); past :data:`MAX_DRAIN` the connection is simply closed.
        """
        left = size if size <= MAX_DRAIN else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 64 * 1024))
            if not chunk:
                return
            left -= len(chunk)

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client left; nothing to tell it


def make_server(model_path: str, *, adapter: str | None = None, host: str = "127.0.0.1", port: int = 0,
                model_name: str | None = None, max_new_tokens_cap: int = 2048, device: str = "auto",
                log: Callable[[str], None] | None = None) -> tuple[ChatServer, str]:
    """Load the model, then bind (so a port that answers is ready): the server, not yet serving, and its base URL.

    Run ``server.serve_forever()`` (in a thread, in tests); ``server.shutdown()`` and
    ``server.server_close()`` stop it. A model or adapter that cannot be loaded is a ValueError
    naming the path; a port that cannot be bound, an OSError.
    """
    served = load_served_model(model_path, adapter=adapter, model_name=model_name, device=device,
                               max_new_tokens_cap=max_new_tokens_cap)
    server = ChatServer(served, host, port, log=log)
    return server, server.url


def serve_forever(model_path: str, *, adapter: str | None = None, host: str = "127.0.0.1", port: int = 8000,
                  model_name: str | None = None, max_new_tokens_cap: int = 2048, device: str = "auto",
                  log: Callable[[str], None] | None = None,
                  ready: Callable[[ChatServer, str], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C); ``ready(server, url)`` is called once the port is bound."""
    server, url = make_server(model_path, adapter=adapter, host=host, port=port, model_name=model_name,
                              max_new_tokens_cap=max_new_tokens_cap, device=device, log=log)
    try:
        if ready is not None:
            ready(server, url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
