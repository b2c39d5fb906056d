"""A small OpenAI-compatible chat-completions client that never hangs a long campaign.

Why not the ``openai`` package: one more heavy dependency for one POST, and its timeouts are per
socket operation, so a server that trickles bytes can hold a call for ever. A campaign runs for
hours or days against endpoints of every quality (OpenAI, a local ``vllm serve``, Ollama), so
this client guarantees three things instead:

* **A total deadline per attempt.** ``timeout_s`` bounds connect + send + wait + the whole body.
  The socket timeout is set to the time left before each step, the body is read in chunks with
  the clock checked between them, and a watchdog timer shuts the socket down at the deadline so
  that even a byte-by-byte trickle of headers cannot outlive it.
* **Deterministic retries.** Timeouts, dropped connections, 429, 5xx and garbage replies are
  retried after ``backoff_s * 2**attempt`` seconds (capped at ``max_backoff_s``), or after the
  server's ``Retry-After`` when it gives one (same cap). No jitter, so runs are reproducible and
  tests can inject ``sleep``. Errors a retry cannot fix (400/401/403/404, an exhausted quota) are
  raised at once.
* **Errors a user can act on.** Every failure is an :class:`LLMError` with a ``kind``, whether it
  was ``retryable``, the HTTP ``status`` if any, and a message that names the URL and the likely
  fix, with the server's own error text (truncated) included.

The client keeps no connection or mutable state between calls, so one instance may be shared by
several threads. Only the standard library is used; proxies from ``$HTTP(S)_PROXY`` are *not*
honoured (local servers are the common case and a proxy would break them).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["ChatClient", "ChatResult", "LLMError", "ERROR_KINDS"]

log = logging.getLogger(__name__)

ERROR_KINDS = ("timeout", "connection", "auth", "rate_limit", "server", "bad_request", "garbage")

_CHUNK = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024  # a chat reply is kilobytes; anything this big is a broken server
_MAX_ERROR_BODY = 64 * 1024
_SNIPPET = 300  # characters of a server's error text kept in our messages


class LLMError(Exception):
    """A chat call failed; ``kind`` says how, ``retryable`` whether trying again could help.

    ``kind`` is one of :data:`ERROR_KINDS`. ``status`` is the HTTP status when the server
    answered with one, else ``None``. The campaign records the message as the proposal's error.
    """

    def __init__(self, kind: str, message: str, *, retryable: bool, status: int | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown LLMError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"LLMError(kind={self.kind!r}, status={self.status!r}, retryable={self.retryable}, {self.message!r})"


@dataclass
class ChatResult:
    """One successful completion, with what a campaign logs about the call's cost and speed."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float  # wall time of the attempt that succeeded
    total_s: float  # all attempts plus the backoff between them
    attempts: int
    model: str  # as the server reports it, else the model requested
    finish_reason: str | None
    usage_estimated: bool = False  # True when the server sent no usage and tokens are len(text) // 4


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


class _Deadline:
    """The time left in one attempt, and a watchdog that shuts the socket when it runs out."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.start = time.monotonic()
        self.end = self.start + timeout_s
        self.expired = False
        self._conn: http.client.HTTPConnection | None = None
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return self.end - time.monotonic()

    def passed(self) -> bool:
        return self.expired or self.left() <= 0

    def attach(self, conn: http.client.HTTPConnection) -> None:
        self._conn = conn

    def arm_socket(self) -> None:
        """Set the socket's own timeout to the time left, so a single blocked read ends too."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            sock.settimeout(max(self.left(), 0.001))

    def _fire(self) -> None:
        self.expired = True
        sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def _snippet(text: str, limit: int = _SNIPPET) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _server_message(body: bytes) -> str:
    """The error text a server put in its body: OpenAI ``{"error": {"message"}}``, vLLM/Ollama variants, or raw."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _snippet(text)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg")
            if msg:
                return _snippet(str(msg))
        elif isinstance(err, str) and err:
            return _snippet(err)
        if isinstance(data.get("message"), str):
            return _snippet(data["message"])
        if data.get("detail"):
            return _snippet(str(data["detail"]))
    return _snippet(text)


def _error_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return f"{err.get('code') or ''} {err.get('type') or ''}"
    return ""


def _retry_after(headers: dict[str, str]) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms`` (OpenAI), ``Retry-After`` seconds or HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class ChatClient:
    """Chat completions from any OpenAI-compatible endpoint, with a hard deadline and retries.

    ``base_url`` is used exactly as given, ``/v1`` included when the server wants it:
    ``https://api.openai.com/v1``, ``http://host:8000/v1`` (vLLM), ``http://localhost:11434/v1``
    (Ollama). A query string on it (Azure's ``?api-version=``) is kept on every request.

    ``max_retries`` is the number of retries after the first attempt, so a call makes at most
    ``max_retries + 1`` attempts. ``sleep`` is injectable so tests (and a campaign that wants to
    stop promptly) control the backoff. ``max_tokens_param`` names the body field for the token
    limit: newer OpenAI reasoning models reject ``max_tokens`` and want ``max_completion_tokens``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        extra_headers: dict[str, str] | None = None,
        max_tokens_param: str = "max_tokens",
        key_source: str = "$OPENAI_API_KEY",
    ) -> None:
        self.key_source = key_source  # where the user sets the key, named in 401/403 messages
        parts = urllib.parse.urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port]/path, got {base_url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not model:
            raise ValueError("model must be a non-empty string")
        self.base_url = base_url.strip().rstrip("/")
        self.model = model
        self.api_key = api_key or None
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.sleep = sleep
        self.extra_headers = dict(extra_headers or {})
        self.max_tokens_param = max_tokens_param
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._query = parts.query

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient({self.base_url!r}, model={self.model!r}, timeout_s={self.timeout_s})"

    # ------------------------------------------------------------------ public API

    def chat(
        self,
        messages: list[dict],
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ChatResult:
        """Send ``messages`` and return the first choice's text; raise :class:`LLMError` when that fails.

        Options left as ``None`` are not sent, so the server's defaults apply (some models
        reject e.g. ``temperature``).
        """
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": False}
        if temperature is not None:
            body["temperature"] = temperature
        if top_p is not None:
            body["top_p"] = top_p
        if max_tokens is not None:
            body[self.max_tokens_param] = max_tokens
        if seed is not None:
            body["seed"] = seed
        payload = json.dumps(body).encode("utf-8")

        def parse(reply: _Reply, latency: float) -> ChatResult:
            return self._parse_chat(reply, messages, latency)

        return self._with_retries("POST", "/chat/completions", payload, parse)

    def list_models(self) -> list[str]:
        """Model ids the server offers (``GET /models``): a cheap health check before a campaign starts."""

        def parse(reply: _Reply, latency: float) -> list[str]:
            data = self._json(reply, "/models")
            items = data.get("data") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise LLMError(
                    "garbage",
                    f"reply from {self._url('/models')} has no 'data' list: "
                    f"{_snippet(reply.body.decode('utf-8', 'replace'))}",
                    retryable=True,
                    status=reply.status,
                )
            return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]

        return self._with_retries("GET", "/models", None, parse)

    # ------------------------------------------------------------------ retries

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        return min(self.backoff_s * (2**attempt), self.max_backoff_s)

    def _with_retries(
        self, method: str, path: str, payload: bytes | None, parse: Callable[[_Reply, float], Any]
    ) -> Any:
        started = time.monotonic()
        last: LLMError | None = None
        for attempt in range(self.max_retries + 1):
            t0 = time.monotonic()
            retry_after: float | None = None
            try:
                reply = self._request(method, path, payload)
                latency = time.monotonic() - t0
                if not 200 <= reply.status < 300:
                    retry_after = _retry_after(reply.headers)
                    raise self._status_error(reply, path)
                result = parse(reply, latency)
            except LLMError as err:
                last = err
                if not err.retryable or attempt == self.max_retries:
                    break
                delay = self._delay(attempt, retry_after)
                log.warning(
                    "LLM call failed (attempt %d/%d, %s): %s; retrying in %.2f s",
                    attempt + 1,
                    self.max_retries + 1,
                    err.kind,
                    err.message,
                    delay,
                )
                self.sleep(delay)
                continue
            if isinstance(result, ChatResult):
                result.attempts = attempt + 1
                result.total_s = time.monotonic() - started
            return result
        assert last is not None
        if last.retryable and self.max_retries > 0:
            raise LLMError(
                last.kind,
                f"{last.message} (gave up after {self.max_retries + 1} attempts)",
                retryable=last.retryable,
                status=last.status,
            ) from last
        raise last

    # ------------------------------------------------------------------ one attempt

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}" if not self._query else f"{self.base_url.split('?')[0]}{path}?{self._query}"

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "evosearch-llm-client/1", "Connection": "close"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(self.extra_headers)
        return headers

    def _request(self, method: str, path: str, payload: bytes | None) -> _Reply:
        """One HTTP exchange under a total deadline; every low-level failure becomes an :class:`LLMError`."""
        url = self._url(path)
        target = f"{self._prefix}{path}" + (f"?{self._query}" if self._query else "")
        deadline = _Deadline(self.timeout_s)
        conn: http.client.HTTPConnection
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        deadline.attach(conn)
        try:
            conn.connect()
            deadline.arm_socket()
            if deadline.passed():
                raise TimeoutError
            conn.request(method, target, body=payload, headers=self._headers(payload is not None))
            deadline.arm_socket()
            resp = conn.getresponse()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            limit = _MAX_BODY if 200 <= resp.status < 300 else _MAX_ERROR_BODY
            chunks: list[bytes] = []
            size = 0
            while True:
                if deadline.passed():
                    raise TimeoutError
                deadline.arm_socket()
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    if resp.status >= 400:
                        break  # an error page: the start is enough to explain it
                    raise LLMError(
                        "garbage", f"reply from {url} is larger than {limit} bytes", retryable=True, status=resp.status
                    )
            if deadline.passed():
                # The watchdog may have cut the body short, which reads as a normal end of stream.
                raise TimeoutError
            expected = headers.get("content-length", "")
            if expected.isdigit() and size < int(expected) and resp.status < 400:
                raise http.client.IncompleteRead(b"".join(chunks), int(expected) - size)
            return _Reply(resp.status, headers, b"".join(chunks))
        except LLMError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise LLMError(
                "connection",
                f"TLS certificate of {url} did not verify ({exc.verify_message}); check the host name in base_url",
                retryable=False,
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, url, deadline) from exc
        finally:
            deadline.cancel()
            conn.close()

    def _transport_error(self, exc: BaseException, url: str, deadline: _Deadline) -> LLMError:
        if deadline.passed() or isinstance(exc, TimeoutError | socket.timeout):
            return LLMError(
                "timeout",
                f"no complete reply from {url} within {self.timeout_s:g} s; the server may be overloaded or the "
                f"model too slow for timeout_s={self.timeout_s:g}",
                retryable=True,
            )
        where = self.base_url
        if isinstance(exc, ConnectionRefusedError):
            return LLMError("connection", f"connection refused at {where} — is the server running?", retryable=True)
        if isinstance(exc, socket.gaierror):
            return LLMError(
                "connection",
                f"cannot resolve host {self._host!r} of {where} ({exc.strerror}); check base_url",
                retryable=True,
            )
        if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
            return LLMError(
                "connection", f"{where} closed the connection before replying ({type(exc).__name__})", retryable=True
            )
        if isinstance(exc, http.client.IncompleteRead):
            return LLMError("connection", f"reply from {url} was cut short ({exc!r})", retryable=True)
        if isinstance(exc, http.client.HTTPException):
            return LLMError(
                "garbage",
                f"{where} did not answer with valid HTTP ({type(exc).__name__}: {_snippet(str(exc))}); "
                "is base_url pointing at an OpenAI-compatible server?",
                retryable=True,
            )
        if isinstance(exc, ssl.SSLError):
            return LLMError(
                "connection", f"TLS error talking to {where}: {exc}; does the server speak https?", retryable=False
            )
        return LLMError("connection", f"cannot reach {where}: {type(exc).__name__}: {exc}", retryable=True)

    def _status_error(self, reply: _Reply, path: str) -> LLMError:
        """An :class:`LLMError` for a non-2xx reply, with the fix a user is most likely to need."""
        url = self._url(path)
        status = reply.status
        detail = _server_message(reply.body) if reply.body else ""
        said = f": {detail}" if detail else ""
        if status in (401, 403):
            hint = (
                f"check the API key in {self.key_source}"
                if self.api_key
                else f"the server wants an API key and none was given; set it in {self.key_source}"
            )
            return LLMError("auth", f"{status} from {url}: {hint}{said}", retryable=False, status=status)
        if status == 429:
            code = _error_code(reply.body)
            if "insufficient_quota" in code or "billing" in code:
                return LLMError(
                    "rate_limit",
                    f"429 from {url}: quota exhausted, retrying will not help{said}",
                    retryable=False,
                    status=status,
                )
            return LLMError("rate_limit", f"429 from {url}: rate limited{said}", retryable=True, status=status)
        if status == 408:
            return LLMError(
                "timeout", f"408 from {url}: the server timed out the request{said}", retryable=True, status=status
            )
        if status >= 500:
            return LLMError("server", f"{status} from {url}: server error{said}", retryable=True, status=status)
        if 300 <= status < 400:
            where = reply.headers.get("location", "elsewhere")
            return LLMError(
                "bad_request",
                f"{status} from {url}: redirected to {where}; put the final URL in base_url (https? /v1?)",
                retryable=False,
                status=status,
            )
        if status == 404:
            hint = f"check base_url (does it need /v1?) and that model {self.model!r} is served"
            return LLMError("bad_request", f"404 from {url}: {hint}{said}", retryable=False, status=status)
        return LLMError("bad_request", f"{status} from {url}: request rejected{said}", retryable=False, status=status)

    # ------------------------------------------------------------------ parsing

    def _json(self, reply: _Reply, path: str) -> Any:
        try:
            return json.loads(reply.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise LLMError(
                "garbage",
                f"reply from {self._url(path)} is not JSON ({exc.__class__.__name__}): "
                f"{_snippet(reply.body.decode('utf-8', 'replace')) or '<empty body>'}",
                retryable=True,
                status=reply.status,
            ) from exc

    def _parse_chat(self, reply: _Reply, messages: list[dict], latency: float) -> ChatResult:
        path = "/chat/completions"
        data = self._json(reply, path)

        def garbage(why: str) -> LLMError:
            return LLMError(
                "garbage",
                f"reply from {self._url(path)} {why}: {_snippet(reply.body.decode('utf-8', 'replace'))}",
                retryable=True,
                status=reply.status,
            )

        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise garbage("has no choices[0]")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict) or "content" not in message:
            raise garbage("has no choices[0].message.content")
        text = message["content"]
        finish_reason = choice.get("finish_reason")
        finish_reason = finish_reason if isinstance(finish_reason, str) else None
        if not isinstance(text, str):
            why = f"has choices[0].message.content of type {type(text).__name__}, not a string"
            if message.get("refusal"):
                why += f" (refusal: {_snippet(str(message['refusal']), 120)})"
            elif finish_reason:
                why += f" (finish_reason={finish_reason})"
            raise garbage(why)
        usage = data.get("usage")
        prompt_tokens = completion_tokens = None
        if isinstance(usage, dict):
            prompt_tokens = _as_int(usage.get("prompt_tokens"))
            completion_tokens = _as_int(usage.get("completion_tokens"))
        estimated = prompt_tokens is None or completion_tokens is None
        if estimated:
            prompt_chars = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
            prompt_tokens = prompt_chars // 4 if prompt_tokens is None else prompt_tokens
            completion_tokens = len(text) // 4 if completion_tokens is None else completion_tokens
        model = data.get("model")
        return ChatResult(
            text=text,
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
            latency_s=latency,
            total_s=latency,
            attempts=1,
            model=model if isinstance(model, str) and model else self.model,
            finish_reason=finish_reason,
            usage_estimated=estimated,
        )
