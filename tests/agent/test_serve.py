"""``evosearch agent serve``: a real server on a free port over the real tiny model, asked as a campaign asks.

The tiny model (:func:`evosearch.agent.tiny.build_tiny_model`) is built once for this module;
its answers are noise, so the tests check the protocol (shapes, real token counts, limits,
errors), that an adapter is really applied, and that a campaign records its calls.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import campaign_config, cli_in_process

from evosearch.agent.serve import ChatServer, make_server, quiet_progress
from evosearch.agent.tiny import MARKER, build_tiny_model
from evosearch.cli.agent_serve import serve_command
from evosearch.propose.llm_client import ChatClient, LLMError

MESSAGES = [{"role": "system", "content": "You improve RL programs."},
            {"role": "user", "content": "VF_COEF = 0.5\nENT_COEF = 0.01\nPropose one edit."}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llm")


def start(server: ChatServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def stop(server: ChatServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def served(tiny):
    """(base URL, server) of the tiny model served under its folder's name."""
    server, url = make_server(str(tiny), device="cpu")
    thread = start(server)
    yield url, server
    stop(server, thread)


@pytest.fixture(scope="module")
def adapter(tiny, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero weights (PEFT starts B at zero, which would change nothing)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    with quiet_progress():
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny),
                               LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                          init_lora_weights=False))
        out = tmp_path_factory.mktemp("adapters") / "proposer-v2"
        model.save_pretrained(out)
    return out


def post(url: str, body: bytes | dict, path: str = "/chat/completions") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url: str, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + path, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def prompt_tokens(model_dir: Path, messages: list[dict]) -> int:
    """The prompt's length counted here, independently of the server: the chat template, then the tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


# -- the tiny model ------------------------------------------------------------------------------


def test_the_tiny_model_loads_like_any_chat_model_and_is_reused(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    assert 900 <= len(tokenizer) <= 1000 and model.config.vocab_size == len(tokenizer)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|bos|><|system|>\n") and text.endswith("<|eos|>\n<|assistant|>\n")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text  # byte-level: every character round-trips
    stamp = (tiny / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(tiny) == tiny and (tiny / "model.safetensors").stat().st_mtime_ns == stamp


def test_the_tiny_model_refuses_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no tiny model"):
        build_tiny_model(tmp_path)
    assert not (tmp_path / MARKER).exists() and (tmp_path / "notes.txt").read_text() == "mine"


# -- the protocol --------------------------------------------------------------------------------


def test_models_lists_the_served_name(served, tiny):
    url, _ = served
    status, listing = get(url, "/models")
    assert status == 200 and listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == [tiny.name]
    assert ChatClient(url, tiny.name).list_models() == [tiny.name]
    assert get(url, f"/models/{tiny.name}") == (200, listing["data"][0])


def test_the_campaigns_own_client_gets_an_answer_with_real_token_counts(served, tiny):
    url, _ = served
    client = ChatClient(url, tiny.name, timeout_s=60, max_retries=0)
    answer = client.chat(MESSAGES, temperature=0.8, top_p=0.95, max_tokens=24, seed=7)
    assert answer.text and not answer.usage_estimated and answer.model == tiny.name
    assert answer.prompt_tokens == prompt_tokens(tiny, MESSAGES)
    assert 1 <= answer.completion_tokens <= 24 and answer.finish_reason in ("stop", "length")
    again = client.chat(MESSAGES, temperature=0.8, top_p=0.95, max_tokens=24, seed=7)
    assert again.text == answer.text  # a seed makes sampling reproducible
    newer = ChatClient(url, tiny.name, max_tokens_param="max_completion_tokens", max_retries=0)
    assert newer.chat(MESSAGES, temperature=0, max_tokens=5).completion_tokens <= 5


def test_n_choices_and_max_tokens(served, tiny):
    url, _ = served
    status, reply = post(url, {"model": tiny.name, "messages": MESSAGES, "n": 2, "max_tokens": 3,
                               "temperature": 1.0, "seed": 3})
    assert status == 200 and reply["object"] == "chat.completion" and reply["id"].startswith("chatcmpl-")
    assert isinstance(reply["created"], int) and reply["model"] == tiny.name
    choices = reply["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert all(c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str) for c in choices)
    assert all(c["finish_reason"] == "length" for c in choices)  # 3 tokens cannot end a turn of this model
    usage = reply["usage"]
    assert usage["prompt_tokens"] == prompt_tokens(tiny, MESSAGES)  # the prompt is counted once
    assert usage["completion_tokens"] == 6 and usage["total_tokens"] == usage["prompt_tokens"] + 6
    status, greedy = post(url, {"messages": MESSAGES, "n": 2, "max_tokens": 4, "temperature": 0})
    assert status == 200 and greedy["choices"][0]["message"] == greedy["choices"][1]["message"]


def test_concurrent_requests_are_all_answered(served):
    """Threads take the requests, the lock takes turns at the model: none fails, none waits for ever."""
    url, _ = served
    results: list[tuple[int, dict]] = []
    threads = [threading.Thread(target=lambda i=i: results.append(post(url, {"messages": MESSAGES, "max_tokens": 4,
                                                                             "seed": i})))
               for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(status for status, _ in results) == [200] * 4
    assert all(reply["usage"]["completion_tokens"] <= 4 for _, reply in results)


def test_a_turn_ends_at_the_end_token_and_counts_it(served):
    _, server = served
    model = server.served
    eos = min(model.eos_ids)
    hello = model.tokenizer("hello", add_special_tokens=False)["input_ids"]
    assert model._finish([*hello, eos, 7, 7], limit=10) == ("hello", len(hello) + 1, "stop")
    assert model._finish(hello, limit=len(hello)) == ("hello", len(hello), "length")


@pytest.mark.parametrize("body, says", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    ({"model": "gpt-4o", "messages": MESSAGES}, "is not served here"),
    ({"max_tokens": 5}, "'messages' is required"),
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
    ({"messages": MESSAGES, "max_tokens": 0}, "'max_tokens' must be at least 1"),
    ({"messages": MESSAGES, "n": 0}, "'n' must be between 1 and 16"),
    ({"messages": MESSAGES, "temperature": "hot"}, "'temperature' must be a number"),
    ({"messages": MESSAGES, "top_p": 0}, "'top_p' must be in"),
    ({"messages": MESSAGES, "stream": True}, "streaming is not supported"),
])
def test_bad_requests_get_an_openai_error_with_400(served, body, says):
    url, _ = served
    status, reply = post(url, body)
    assert status == 400 and says in reply["error"]["message"], reply
    assert reply["error"]["type"] == "invalid_request_error"


def test_unknown_paths_oversized_bodies_and_foreign_hosts_are_refused_as_json(served, tiny):
    url, _ = served
    assert get(url, "/v1/nothing")[0] == 404 and get(url, "/models/other")[0] == 404
    status, reply = post(url, {"messages": MESSAGES}, path="/completions")
    assert status == 404 and reply["error"]["code"] == "unknown_url"
    with pytest.raises(LLMError) as err:  # the client reads the 413 as a request to fix, not to retry
        ChatClient(url, tiny.name, max_retries=0).chat([{"role": "user", "content": "x" * (1024 * 1024)}])
    assert err.value.status == 413 and "at most 1048576" in str(err.value)
    request = urllib.request.Request(url + "/models", headers={"Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403 and "localhost" in json.loads(refused.value.read())["error"]["message"]


def test_a_missing_path_or_a_folder_that_is_not_a_model_fails_before_serving(tmp_path, tiny):
    with pytest.raises(ValueError, match=f"model path {tmp_path / 'absent'} does not exist"):
        make_server(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match=f"{tmp_path} is not a model folder"):
        make_server(str(tmp_path))
    with pytest.raises(ValueError, match=f"{tiny} is not a PEFT adapter folder"):
        make_server(str(tiny), adapter=str(tiny))


# -- the adapter ---------------------------------------------------------------------------------


def test_an_adapter_is_served_under_its_name_and_the_base_beside_it(tiny, adapter, served):
    server, url = make_server(str(tiny), adapter=str(adapter), device="cpu")
    thread = start(server)
    try:
        assert [m["id"] for m in get(url, "/models")[1]["data"]] == ["proposer-v2", tiny.name]
        ask = {"messages": MESSAGES, "temperature": 0, "max_tokens": 12}
        tuned = post(url, ask)[1]  # no model named: the adapter, the first served name
        assert tuned["model"] == "proposer-v2"
        base_here = post(url, {**ask, "model": tiny.name})[1]
        base_alone = post(served[0], ask)[1]
        assert base_here["choices"][0]["message"] == base_alone["choices"][0]["message"]  # adapter disabled
        assert tuned["choices"][0]["message"] != base_alone["choices"][0]["message"]  # the adapter changes answers
    finally:
        stop(server, thread)
    named, named_url = make_server(str(tiny), adapter=str(adapter), model_name="proposer-v3", device="cpu", port=0)
    named.server_close()
    assert list(named.served.names) == ["proposer-v3", tiny.name]


# -- the command ---------------------------------------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(serve_command, list(args), prog_name="evosearch agent serve")


def test_help_names_the_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--adapter", "--name", "--host", "--port", "--max-new-tokens", "--device"):
        assert option in result.output


def test_attached_to_the_agent_group():
    from evosearch.cli import main

    group = main.commands.get("agent")
    if group is None or "serve" not in getattr(group, "commands", {}):
        pytest.skip("serve_command is not attached to `evosearch agent` yet (the lead engineer attaches it)")
    result = cli_in_process("agent", "serve", "--help")
    assert result.returncode == 0 and "--adapter" in result.stdout


@pytest.mark.parametrize("module", ["transformers", "peft"])
def test_without_the_extra_one_line_says_what_to_install(monkeypatch, tiny, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    result = invoke(str(tiny))
    assert result.exit_code == 2
    assert result.output == f"Error: {module} not installed: pip install 'evosearch[agent]'\n"


def test_a_missing_model_is_one_error_line(tmp_path):
    result = invoke(str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: model path {tmp_path / 'nowhere'} does not exist"
    assert "Traceback" not in result.output


def test_a_port_in_use_is_one_error_line(tiny):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(str(tiny), "--port", str(port), "--device", "cpu")
    assert result.exit_code == 2 and f"port {port} on 127.0.0.1 is in use" in result.output


def test_the_command_serves_prints_a_config_a_campaign_accepts_and_stops_on_ctrl_c(monkeypatch, tiny, adapter):
    """The command end to end, in this process: it serves a request, then Ctrl-C arrives in serve_forever.

    (A subprocess and a real SIGINT would cost ~5 s of imports; Python turns SIGINT into this same
    KeyboardInterrupt in the main thread, which is where serve_forever runs.)
    """
    seen: dict = {}
    real_serve_forever = ChatServer.serve_forever

    def serve_then_ctrl_c(self, poll_interval=0.5):
        thread = threading.Thread(target=real_serve_forever, args=(self, 0.05), daemon=True)
        thread.start()
        seen["models"] = ChatClient(self.url, "proposer-v9", max_retries=0).list_models()
        self.shutdown()
        thread.join(timeout=5)
        raise KeyboardInterrupt

    monkeypatch.setattr(ChatServer, "serve_forever", serve_then_ctrl_c)
    result = invoke(str(tiny), "--adapter", str(adapter), "--name", "proposer-v9", "--port", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert seen["models"] == ["proposer-v9", tiny.name]
    out, err = result.stdout, result.stderr
    served_line = next(line for line in out.splitlines() if line.startswith("serving "))
    assert served_line.startswith(f"serving proposer-v9, {tiny.name} on http://127.0.0.1:"), out
    url = served_line.split(" on ")[1].split(" ")[0]
    assert url.endswith("/v1") and out.splitlines()[-1] == "stopped"
    llm = yaml.safe_load(out[out.index("llm:"):out.rindex("stopped")])["llm"]
    assert llm["models"][0] == {"name": "proposer-v9", "model": "proposer-v9", "base_url": url,
                                "price_in_per_1k": 0.0, "price_out_per_1k": 0.0, "timeout_s": 600}
    assert campaign_config("snippet", llm=llm).llm.models[0].base_url == url  # the campaign's checks pass
    assert err.startswith("GET /v1/models 200") and "Traceback" not in out + err


# -- a campaign ----------------------------------------------------------------------------------


def test_a_campaign_asks_the_served_model_and_records_its_calls(tmp_path, served, tiny):
    from evosearch.campaign import Campaign

    url, _ = served
    llm = {"models": [{"name": "tiny-served", "model": tiny.name, "base_url": url, "max_tokens": 16,
                       "timeout_s": 60, "max_retries": 0, "price_in_per_1k": 0.0, "price_out_per_1k": 0.0}],
           "share": 0.5, "max_attempts": 1, "max_in_flight": 1}
    config = campaign_config("served", parallel=1, operators={"enabled": ["ast.constant"]}, llm=llm)
    campaign = Campaign(config, db_path=tmp_path / "c.db")
    summary = campaign.run(max_evals=3)
    campaign.close()
    assert summary.evaluations == 3 and summary.stop_reason == "evaluation budget reached"
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.row_factory = sqlite3.Row
    calls = conn.execute("SELECT * FROM llm_calls ORDER BY id").fetchall()
    conn.close()
    assert calls, "the model was never asked"
    for call in calls:
        assert call["model"] == "tiny-served" and call["base_url"] == url
        assert call["status"] in ("ok", "edit_error", "duplicate"), call["error"]  # noise, but an answer
        assert call["prompt_tokens"] == prompt_tokens(tiny, json.loads(call["prompt"]))
        assert 1 <= call["completion_tokens"] <= 16 and call["response"] is not None

