"""A bad config fails at once, naming the key; `evosearch run` exits 2 with one message."""

import subprocess
import sys

import pytest
from conftest import RULES, TINY_SUITE, cli_in_process

from evosearch.config import ConfigError, config_from_dict, load_config

GOOD = {"name": "t", "seeds": [str(RULES / "a2c.py")], "evaluation": {"suite": TINY_SUITE}}


def with_(**changes) -> dict:
    raw = {**GOOD}
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        node = raw
        for part in path:
            node[part] = dict(node.get(part, {}))
            node = node[part]
        node[key] = value
    return raw


BAD = [
    ({"nmae": "x"}, "unknown key 'nmae'"),
    (with_(budget__max_evlas=3), "unknown key 'budget.max_evlas'"),
    (with_(budget__max_evals="ten"), "budget.max_evals: expected an integer, got str 'ten'"),
    (with_(budget__max_evals=0), "budget.max_evals: must be greater than 0"),
    (with_(parallel=True), "parallel: expected an integer"),
    (with_(evaluation__fitness="mean"), "evaluation.fitness: 'mean' is not one of 'iqm', 'auc'"),
    (with_(evaluation__suite="no-such-suite"), "evaluation.suite: unknown suite 'no-such-suite'"),
    (with_(evaluation__suite="missing/suite.yaml"), "evaluation.suite: no suite file missing/suite.yaml"),
    (with_(seeds=["missing.py"]), "seeds[0]: no such file"),
    (with_(seeds="a2c.py"), "seeds: expected a list"),
    (with_(archive__descriptors=[{"name": "beauty", "min": 0, "max": 1}]),
     "archive.descriptors[0].name: unknown descriptor 'beauty'"),
    (with_(archive__descriptors=[{"name": "code_size", "min": 5, "max": 1}]), "archive.descriptors[0]: max must be"),
    (with_(operators__enabled=["ast.constant", "llm"]), "operators.enabled[1]: unknown operator 'llm'"),
    (with_(selection__exploit_ratio=1.5), "selection.exploit_ratio: must be between 0 and 1"),
    (with_(operators__gp_seed_genomes=["a2c", "sac"]), "operators.gp_seed_genomes[1]: unknown genome 'sac'"),
    (with_(budget__max_evals=None, budget__minutes=None), "budget: set max_evals, minutes, or both"),
    (with_(evaluation__device="gpu"), "evaluation.device: 'gpu' is not one of auto, cpu, cuda, cuda:N"),
    ({"seeds": [str(RULES / "a2c.py")]}, "missing required key 'name'"),
    (with_(executor__kind="dask"), "executor.kind: 'dask' is not one of 'local', 'ray'"),
    (with_(executor__address="http://head:8265"), "executor.address: 'http://head:8265' is not auto, HOST:PORT"),
    (with_(executor__cpus_per_evaluation=0), "executor.cpus_per_evaluation: must be greater than 0"),
    (with_(executor__gpus_per_evaluation=-1), "executor.gpus_per_evaluation: must be 0 or more"),
    (with_(executor__max_in_flight=0), "executor.max_in_flight: must be greater than 0"),
    (with_(executor__max_retries=-1), "executor.max_retries: must be 0 or more"),
    (with_(executor__start_timeout_s=0), "executor.start_timeout_s: must be greater than 0"),
    (with_(executor__slots=4), "unknown key 'executor.slots'"),
]


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[m for _, m in BAD])
def test_each_bad_config_names_its_key(raw, message):
    if "name" not in raw and "missing" not in message:
        raw = {**GOOD, **raw}
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert message in str(err.value)


def test_the_shipped_configs_load():
    for name in ("quickstart", "classic"):
        config = load_config(RULES.parents[1] / "configs" / f"{name}.yaml")
        assert all(p.is_file() for p in config.seed_paths())
        assert "ppo_clip.py" not in {p.name for p in config.seed_paths()}


def test_seed_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.py").write_text((RULES / "a2c.py").read_text())
    path = tmp_path / "c.yaml"
    path.write_text(f"name: c\nseeds: [rules/mine.py]\nevaluation: {{suite: {TINY_SUITE}}}\n")
    assert load_config(path).seed_paths() == [tmp_path / "rules" / "mine.py"]


@pytest.mark.parametrize(("text", "message"), [
    ("name: c\nseeds: [x.py]\nbudget: {max_evals: ten}\n", "budget.max_evals: expected an integer"),
    ("name: [unclosed\n", "not valid YAML"),
    ("- a list\n", "expected a mapping"),
])
def test_run_with_a_bad_config_exits_2_with_one_message(tmp_path, text, message):
    # In this process (the same command, its exit code and stderr; an uncaught exception's traceback
    # would be in stderr too): the config is refused before anything starts. A fresh interpreter
    # refusing a config: test_run_with_a_missing_config_exits_2.
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = cli_in_process("run", str(path), "--db", str(tmp_path / "x.db"))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_run_with_a_missing_config_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evosearch.cli", "run", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no such config file" in proc.stderr


def test_every_mistake_is_reported_at_once():
    raw = with_(budget__max_evlas=3, parallel="two", seeds=[str(RULES / "a2c.py"), "missing.py"])
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    message = str(err.value)
    assert message.startswith("3 problems:")
    for part in ("unknown key 'budget.max_evlas'", "parallel: expected an integer, got str 'two'",
                 "seeds[1]: no such file"):
        assert part in message
    assert len(err.value.problems) == 3


def test_a_bad_value_is_reported_once_not_again_by_the_checks_after_it():
    with pytest.raises(ConfigError) as err:
        config_from_dict(with_(budget__max_evals="ten", budget__minutes=None))
    assert err.value.problems == ["budget.max_evals: expected an integer, got str 'ten'"]


def test_a_config_file_with_several_mistakes_names_the_file_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: c\nseeds: [nope.py]\nevaluation: {{suite: {TINY_SUITE}, fitnes: iqm}}\n"
                    "llm: {share: 2.0}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: 3 problems:")
    assert [p.split(":")[0] for p in err.value.problems] == ["unknown key 'evaluation.fitnes' (known here", "seeds[0]",
                                                            "llm.share"]


LLM_MODEL = {"model": "m", "base_url": "http://127.0.0.1:1/v1"}


def test_llm_request_options_are_read(monkeypatch):
    monkeypatch.setenv("AZURE_KEY_FOR_TEST", "secret")
    model = {**LLM_MODEL, "max_tokens_param": "max_completion_tokens", "headers": {"X-Team": "rl"},
             "header_env": {"api-key": "AZURE_KEY_FOR_TEST"}}
    config = config_from_dict({**GOOD, "llm": {"models": [model], "share": 0.25}})
    [m] = config.llm.models
    assert m.max_tokens_param == "max_completion_tokens" and m.headers == {"X-Team": "rl"}
    assert m.header_env == {"api-key": "AZURE_KEY_FOR_TEST"} and config.llm.share == 0.25
    assert config_from_dict({**GOOD, "llm": {"models": [LLM_MODEL]}}).llm.share == 0.5


@pytest.mark.parametrize(("model", "message"), [
    ({"headers": {"Bad Name": "x"}}, "llm.models[0].headers.Bad Name: 'Bad Name' is not a valid HTTP header name"),
    ({"headers": {"X-A": "one\r\nX-B: two"}}, "llm.models[0].headers.X-A: a header value must be one line"),
    ({"headers": {"X-A": 3}}, "llm.models[0].headers.X-A: expected a string, got int 3"),
    ({"headers": ["X-A"]}, "llm.models[0].headers: expected a mapping, got list"),
    ({"header_env": {"api-key": "NO_SUCH_VARIABLE_FOR_EVOSEARCH"}},
     "llm.models[0].header_env.api-key: the environment variable NO_SUCH_VARIABLE_FOR_EVOSEARCH is not set"),
    ({"max_tokens_param": "max tokens"}, "llm.models[0].max_tokens_param: 'max tokens' is not a field name"),
])
def test_bad_llm_request_options_name_their_key(model, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict({**GOOD, "llm": {"models": [{**LLM_MODEL, **model}]}})
    assert message in str(err.value)


def test_a_share_outside_0_and_1_is_refused():
    with pytest.raises(ConfigError, match="llm.share: must be between 0 and 1"):
        config_from_dict({**GOOD, "llm": {"models": [LLM_MODEL], "share": -0.1}})


def test_the_executor_section_reads_every_ray_setting():
    config = config_from_dict(with_(executor={"kind": "ray", "address": "ray://head.example:10001",
                                              "cpus_per_evaluation": 2, "gpus_per_evaluation": 0.5,
                                              "max_in_flight": 8, "max_retries": 1}))
    ex = config.executor
    assert (ex.kind, ex.address, ex.cpus_per_evaluation, ex.gpus_per_evaluation, ex.max_in_flight, ex.max_retries) \
        == ("ray", "ray://head.example:10001", 2.0, 0.5, 8, 1)
    for address in ("auto", "10.0.0.1:6379", "head-node:6379"):
        assert config_from_dict(with_(executor__address=address)).executor.address == address
    assert config_from_dict(GOOD).executor.kind == "local"  # the default, unchanged
