"""The chat client against a real local HTTP server: replies, retries, deadlines and errors a user can act on."""

from __future__ import annotations

import threading
import time

import pytest
from fake_openai import FakeOpenAI, Reply, free_port_with_nothing_listening

from evosearch.propose.llm_client import ChatClient, ChatResult, LLMError

MESSAGES = [{"role": "system", "content": "You write RL losses."}, {"role": "user", "content": "Improve this loss."}]


class Sleeps:
    """An injected sleep that records the backoff instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client(server: FakeOpenAI, **kwargs) -> ChatClient:
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("sleep", Sleeps())
    return ChatClient(server.base_url, "fake-model", **kwargs)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every server and every attempt's watchdog must be gone when a test ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.02)
    raise AssertionError(f"threads left running: {leaked}")


def test_a_normal_completion_reports_text_usage_and_timing():
    usage = {"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22}
    with FakeOpenAI([{"content": "def loss(b): return b.adv", "usage": usage, "model": "fake-model-2024"}]) as server:
        result = client(server).chat(MESSAGES)
    assert isinstance(result, ChatResult)
    assert result.text == "def loss(b): return b.adv"
    assert (result.prompt_tokens, result.completion_tokens) == (17, 5)
    assert not result.usage_estimated
    assert result.attempts == 1
    assert result.model == "fake-model-2024"
    assert result.finish_reason == "stop"
    assert 0 < result.latency_s <= result.total_s < 5


def test_the_request_carries_model_messages_options_and_the_bearer_key():
    with FakeOpenAI(["ok"], api_key="sk-test") as server:
        c = client(server, api_key="sk-test", extra_headers={"X-Project": "evo"})
        c.chat(MESSAGES, temperature=0.7, top_p=0.9, max_tokens=256, seed=3)
        c.chat(MESSAGES)
    first, second = server.chat_requests
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.header("authorization") == "Bearer sk-test"
    assert first.header("content-type") == "application/json"
    assert first.header("x-project") == "evo"
    body = first.json
    assert body["model"] == "fake-model" and body["messages"] == MESSAGES
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.9, 256, 3)
    # Options left unset are not sent, so the server's defaults apply.
    assert not {"temperature", "top_p", "max_tokens", "seed"} & set(second.json)


def test_base_url_is_used_exactly_as_given_and_the_token_field_is_configurable():
    with FakeOpenAI(["ok"]) as server:
        ChatClient(server.base_url + "/", "m", max_tokens_param="max_completion_tokens").chat(MESSAGES, max_tokens=9)
        with pytest.raises(LLMError) as info:  # without /v1 the server has no such path
            ChatClient(server.url, "m", max_retries=0).chat(MESSAGES)
    assert server.chat_requests[0].json["max_completion_tokens"] == 9
    assert "max_tokens" not in server.chat_requests[0].json
    assert info.value.kind == "bad_request" and info.value.status == 404
    assert "/v1" in str(info.value)
    with pytest.raises(ValueError):
        ChatClient("localhost:8000/v1", "m")


def test_429_then_success_honours_retry_after():
    sleeps = Sleeps()
    with FakeOpenAI([{"status": 429, "headers": {"Retry-After": "2"}}, {"content": "fine"}]) as server:
        result = client(server, sleep=sleeps, backoff_s=0.25).chat(MESSAGES)
    assert result.text == "fine" and result.attempts == 2
    assert sleeps.delays == [2.0]  # the server's wait, not our backoff
    assert len(server.chat_requests) == 2


def test_retry_after_is_capped_and_a_spent_quota_is_not_retried():
    sleeps = Sleeps()
    with FakeOpenAI([{"status": 429, "headers": {"Retry-After": "3600"}}, "fine"]) as server:
        client(server, sleep=sleeps, max_backoff_s=4.0).chat(MESSAGES)
    assert sleeps.delays == [4.0]
    quota = '{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": null}}'
    with FakeOpenAI([{"status": 429, "body": quota}, "fine"]) as server:
        with pytest.raises(LLMError) as info:
            client(server).chat(MESSAGES)
    assert info.value.kind == "rate_limit" and not info.value.retryable
    assert "exceeded your current quota" in str(info.value)
    assert len(server.chat_requests) == 1


def test_500_twice_then_success_backs_off_exponentially():
    sleeps = Sleeps()
    with FakeOpenAI([{"status": 500}, {"status": 502}, {"content": "third time"}]) as server:
        result = client(server, sleep=sleeps, backoff_s=0.5).chat(MESSAGES)
    assert result.text == "third time" and result.attempts == 3
    assert sleeps.delays == [0.5, 1.0]


def test_500_forever_gives_up_after_max_retries_plus_one_attempts():
    sleeps = Sleeps()
    with FakeOpenAI([{"status": 500}]) as server:
        with pytest.raises(LLMError) as info:
            client(server, sleep=sleeps, max_retries=3, backoff_s=1.0, max_backoff_s=3.0).chat(MESSAGES)
    err = info.value
    assert err.kind == "server" and err.status == 500 and err.retryable
    assert len(server.chat_requests) == 4
    assert sleeps.delays == [1.0, 2.0, 3.0]  # doubling, capped at max_backoff_s
    assert "500 from http://127.0.0.1" in str(err) and "scripted error 500" in str(err)
    assert "4 attempts" in str(err)


@pytest.mark.parametrize("reply", [{"hang": 5.0}, {"content": "x" * 200, "trickle": 0.05}], ids=["hang", "trickle"])
def test_a_silent_or_trickling_server_fails_within_the_deadline(reply):
    with FakeOpenAI([reply]) as server:
        t0 = time.monotonic()
        with pytest.raises(LLMError) as info:
            client(server, timeout_s=0.5, max_retries=0).chat(MESSAGES)
        elapsed = time.monotonic() - t0
    assert info.value.kind == "timeout" and info.value.retryable
    assert elapsed < 0.5 + 0.5, elapsed
    assert "0.5 s" in str(info.value)


def test_a_timeout_is_retried():
    sleeps = Sleeps()
    with FakeOpenAI([{"hang": 5.0}, "after the hang"]) as server:
        result = client(server, timeout_s=0.3, sleep=sleeps).chat(MESSAGES)
    assert result.text == "after the hang" and result.attempts == 2
    assert result.latency_s < 0.3 <= result.total_s


@pytest.mark.parametrize(
    "body, why",
    [
        ("not json", "not JSON"),
        ('{"choices": []}', "no choices[0]"),
        ('{"choices": [{"message": {"role": "assistant"}}]}', "no choices[0].message.content"),
        ('{"choices": [{"message": {"content": null}, "finish_reason": "length"}]}', "finish_reason=length"),
    ],
)
def test_garbage_is_an_error_and_is_retried(body, why):
    with FakeOpenAI([{"body": body}, "good"]) as server:
        with pytest.raises(LLMError) as info:
            client(server, max_retries=0).chat(MESSAGES)
        assert info.value.kind == "garbage" and info.value.retryable
        assert why in str(info.value)
        server.set_script([{"body": body}, "good"])
        assert client(server, max_retries=1).chat(MESSAGES).text == "good"


def test_missing_usage_is_estimated_and_says_so():
    with FakeOpenAI([{"content": "x" * 40, "usage": False}]) as server:
        result = client(server).chat(MESSAGES)
    assert result.usage_estimated
    assert result.completion_tokens == 10
    assert result.prompt_tokens == sum(len(m["content"]) for m in MESSAGES) // 4


def test_a_wrong_key_is_an_auth_error_at_once_that_mentions_the_key():
    sleeps = Sleeps()
    with FakeOpenAI(["never"], api_key="sk-right") as server:
        with pytest.raises(LLMError) as info:
            client(server, api_key="sk-wrong", sleep=sleeps).chat(MESSAGES)
        with pytest.raises(LLMError) as none_given:
            client(server).chat(MESSAGES)
    err = info.value
    assert err.kind == "auth" and err.status == 401 and not err.retryable
    assert "API key" in str(err) and "$OPENAI_API_KEY" in str(err) and "Incorrect API key" in str(err)
    assert "sk-wrong" not in str(err)
    assert "none was given" in str(none_given.value)
    assert len(server.requests) == 2 and sleeps.delays == []


def test_a_scripted_401_body_reaches_the_message_and_400_is_not_retried():
    with FakeOpenAI([{"status": 401, "body": "token expired"}, {"status": 400}, "ok"]) as server:
        with pytest.raises(LLMError) as auth:
            client(server, api_key="k").chat(MESSAGES)
        with pytest.raises(LLMError) as bad:
            client(server).chat(MESSAGES)
    assert auth.value.kind == "auth" and "token expired" in str(auth.value)
    assert bad.value.kind == "bad_request" and bad.value.status == 400 and not bad.value.retryable
    assert len(server.chat_requests) == 2


def test_connection_refused_is_quick_and_says_what_to_check():
    port = free_port_with_nothing_listening()
    sleeps = Sleeps()
    c = ChatClient(f"http://127.0.0.1:{port}/v1", "m", timeout_s=5.0, max_retries=2, sleep=sleeps)
    t0 = time.monotonic()
    with pytest.raises(LLMError) as info:
        c.chat(MESSAGES)
    assert time.monotonic() - t0 < 1.0
    assert info.value.kind == "connection" and info.value.status is None
    assert f"connection refused at http://127.0.0.1:{port}/v1" in str(info.value)
    assert "is the server running?" in str(info.value)
    assert sleeps.delays == [1.0, 2.0]


def test_a_dropped_connection_is_retried():
    with FakeOpenAI([{"drop": True}, "back"]) as server:
        result = client(server).chat(MESSAGES)
    assert result.text == "back" and result.attempts == 2


def test_list_models_and_its_errors():
    with FakeOpenAI(models=["a-model", "b-model"], api_key="k") as server:
        assert ChatClient(server.base_url, "a-model", api_key="k").list_models() == ["a-model", "b-model"]
        with pytest.raises(LLMError) as info:
            ChatClient(server.base_url, "a-model", max_retries=0).list_models()
        assert server.requests[0].method == "GET" and server.requests[0].path == "/v1/models"
        assert server.replies_used == 0  # health checks do not consume the script
    assert info.value.kind == "auth"


def test_a_callable_script_answers_from_the_request():
    def echo(request: dict) -> Reply:
        return Reply(content=request["messages"][-1]["content"].upper())

    with FakeOpenAI(echo) as server:
        assert client(server).chat(MESSAGES).text == "IMPROVE THIS LOSS."


def test_the_server_stops_promptly_while_a_reply_hangs():
    server = FakeOpenAI([{"hang": 30.0}]).start()
    c = client(server, timeout_s=0.2, max_retries=0)
    with pytest.raises(LLMError):
        c.chat(MESSAGES)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 1.0


def test_a_configs_token_field_and_headers_reach_the_server(tmp_path, monkeypatch):
    """Models that reject ``max_tokens`` and Azure-style key headers, set from a config file, not code."""
    from conftest import RULES, TINY_SUITE

    from evosearch.config import load_config
    from evosearch.propose.llm import client_for

    monkeypatch.setenv("EVOSEARCH_TEST_AZURE_KEY", "azure-secret")
    with FakeOpenAI(["hello"]) as server:
        path = tmp_path / "c.yaml"
        path.write_text(f"""
name: c
seeds: [{RULES / 'a2c.py'}]
evaluation: {{suite: {TINY_SUITE}}}
llm:
  models:
    - model: o-mini
      base_url: {server.base_url}
      max_tokens: 321
      max_tokens_param: max_completion_tokens
      headers: {{X-Team: rl-search}}
      header_env: {{api-key: EVOSEARCH_TEST_AZURE_KEY}}
""")
        [model] = load_config(path).llm.models
        assert "azure-secret" not in repr(load_config(path))  # the config holds the variable's name only
        assert client_for(model).chat(MESSAGES, max_tokens=model.max_tokens).text == "hello"
        [request] = server.requests
    assert request.json["max_completion_tokens"] == 321 and "max_tokens" not in request.json
    assert request.header("api-key") == "azure-secret" and request.header("X-Team") == "rl-search"
    assert request.header("Authorization") is None  # no api_key_env: no bearer token


def test_an_unset_header_variable_sends_no_header_and_the_auth_error_names_it(monkeypatch):
    from evosearch.config import LLMModelConfig
    from evosearch.propose.llm import client_for

    monkeypatch.delenv("EVOSEARCH_TEST_AZURE_KEY", raising=False)
    with FakeOpenAI([Reply(status=401)]) as server:
        model = LLMModelConfig(model="m", base_url=server.base_url, max_retries=0,
                               header_env={"api-key": "EVOSEARCH_TEST_AZURE_KEY"})
        with pytest.raises(LLMError) as err:
            client_for(model).chat(MESSAGES)
        [request] = server.requests
    assert request.header("api-key") is None
    assert err.value.kind == "auth" and "$EVOSEARCH_TEST_AZURE_KEY" in err.value.message
