"""Prompts: what the model is shown, variation across rng seeds, and user-editable templates."""

import random
import shutil

import pytest
from conftest import rule_source

from evosearch.propose.base import Parent
from evosearch.propose.llm_edits import apply_response
from evosearch.propose.prompts import (
    DUPLICATE_ERROR,
    LIST_FILES,
    PACKAGED_DIR,
    TEMPLATE_FIELDS,
    Feedback,
    TemplateError,
    build_messages,
    load_templates,
    retry_message,
)

TRACEBACK = "Traceback (most recent call last):\n  File \"rule.py\", line 9, in loss\nRuntimeError: shape mismatch"


def feedback(**overrides) -> Feedback:
    values = dict(
        outcome="candidate_error", stage="smoke", score=None, error=TRACEBACK, output_tail="step 1\nstep 2\n",
        task_scores={"CartPole-v1": 1.07, "Acrobot-v1": 0.861},
        curve_summary=Feedback.curve_summary_from({"CartPole-v1": [0.05, 0.41, 0.7, 0.93]}),
    )
    values.update(overrides)
    return Feedback(**values)


def messages(seed: int = 0, **overrides) -> list[dict]:
    kwargs = dict(
        kind="rule",
        parent=Parent(source=rule_source("a2c"), program_id=7, score=1.121),
        feedback=feedback(),
        inspirations=[(Parent(source=rule_source("dpo"), score=0.964), Feedback("ok", score=0.964)),
                      (Parent(source=rule_source("reinforce"), score=1.356), None)],
        rng=random.Random(seed),
    )
    kwargs.update(overrides)
    return build_messages(**kwargs)


def test_messages_hold_contract_parent_feedback_and_inspirations():
    system, user = messages()
    assert (system["role"], user["role"]) == ("system", "user")
    for field in ("b.logp", "b.old_logp", "b.adv", "b.ret", "b.value", "b.old_value", "b.entropy", "b.progress"):
        assert field in system["content"]
    assert "advantages(rewards, values, dones, last_value, gamma, lam)" in system["content"]
    assert "0-d tensor" in system["content"] and "torch.nn.functional" in system["content"]
    assert "IQM" in system["content"] and "PPO-clip" in system["content"]
    assert "<<<<<<< SEARCH" in system["content"] and "EVOLVE-BLOCK" in system["content"]
    text = user["content"]
    assert rule_source("a2c").rstrip("\n") in text
    assert "RuntimeError: shape mismatch" in text and "candidate_error" in text and "smoke" in text
    assert "CartPole-v1 1.070" in text and "Acrobot-v1 0.861" in text
    assert "CartPole-v1: 0.05 -> 0.41 -> 0.93 (normalised, at 25/50/100% of training)" in text
    assert rule_source("dpo").rstrip("\n") in text and "0.964" in text
    assert rule_source("reinforce").rstrip("\n") in text and "1.356" in text
    assert "Nothing is imported above the EVOLVE-BLOCK" in text  # a2c has no import: say where torch goes


def test_a_search_copied_from_the_prompt_applies():
    """The parent is shown verbatim, so lines copied from the prompt match the program."""
    text = messages()[1]["content"]
    line = next(line for line in text.split("\n") if "v_loss = 0.5 *" in line)
    child, _ = apply_response(rule_source("a2c"), f"<<<<<<< SEARCH\n{line}\n=======\n{line.replace('0.5', '1')}\n"
                              ">>>>>>> REPLACE\n")
    assert "v_loss = 1 *" in child


def test_deterministic_for_a_seed_and_varied_across_seeds():
    assert messages(3) == messages(3)
    systems = {messages(s)[0]["content"] for s in range(12)}
    users = {messages(s)[1]["content"] for s in range(12)}
    assert len(systems) > 1 and len(users) > 3


def test_ideas_vary_in_selection_and_order():
    ideas = load_templates().lists["ideas_rule.txt"]
    shown = []
    for seed in range(10):
        text = messages(seed)[1]["content"]
        shown.append(tuple(sorted((text.index(i), i) for i in ideas if i in text)))
    assert all(3 <= len(s) <= 5 for s in shown)
    assert len(set(shown)) > 5


def test_without_feedback_or_inspirations_the_sections_are_absent():
    user = messages(feedback=None, inspirations=[])[1]["content"]
    assert "Outcome:" not in user and "archive" not in user.lower().replace("archived", "")
    assert "\n\n\n\n" not in user.replace(rule_source("a2c"), "")
    assert "1.121" in user  # the parent's own score still shows


def test_max_inspirations():
    user = messages(max_inspirations=1)[1]["content"]
    assert rule_source("dpo").rstrip("\n") in user and rule_source("reinforce").rstrip("\n") not in user


def test_failed_parent_gets_a_fix_it_instruction():
    assert "fix the cause first" in messages()[1]["content"]
    assert "fix the cause first" not in messages(feedback=feedback(outcome="ok", error="", stage="full"))[1]["content"]


def test_long_traceback_is_trimmed_to_its_tail():
    long_error = "\n".join(f"  frame {i}" for i in range(500)) + "\nValueError: the real reason"
    user = messages(feedback=feedback(error=long_error, output_tail="x" * 10_000))[1]["content"]
    assert "ValueError: the real reason" in user and "frame 499" in user
    assert "frame 3\n" not in user and "earlier characters cut" in user
    assert "x" * 2000 not in user


def test_rewrite_format_and_policy_kind():
    system = messages(edit_format="rewrite")[0]["content"]
    assert "<<<<<<< SEARCH" not in system and "one fenced code block" in system and "`loss(...)`" in system
    user = messages(edit_format="rewrite")[1]["content"]
    assert "fenced python block" in user
    policy = messages(kind="policy", parent=Parent(source=rule_source("a2c")))[0]["content"]
    assert "def act(obs)" in policy and "b.logp" not in policy
    with pytest.raises(ValueError, match="edit format"):
        messages(edit_format="unified")
    with pytest.raises(ValueError, match="kind"):
        messages(kind="value")


def test_curve_summary_from():
    assert Feedback.curve_summary_from({"CartPole-v1": [0.05, 0.41, 0.7, 0.93], "Acrobot-v1": [0.5], "X": []}) == (
        "CartPole-v1: 0.05 -> 0.41 -> 0.93 (normalised, at 25/50/100% of training)\n"
        "Acrobot-v1: 0.50 (normalised, at 100% of training)\n"
        "X: no learning curve"
    )
    assert "at 25/50/100%" in Feedback.curve_summary_from({"t": [float(i) for i in range(100)]})


def test_retry_message():
    message = retry_message("SEARCH block 1 does not match", 1, 3)
    assert message["role"] == "user"
    assert "SEARCH block 1 does not match" in message["content"] and "2 attempts left" in message["content"]
    assert "last attempt" in retry_message("bad", 3, 3)["content"]
    duplicate = retry_message(DUPLICATE_ERROR, 2, 3, rng=random.Random(1))["content"]
    assert "already evaluated" in duplicate and "different change" in duplicate and "one attempt left" in duplicate


def test_packaged_templates_load():
    templates = load_templates()
    assert set(templates.variants) == set(TEMPLATE_FIELDS) and set(templates.lists) == set(LIST_FILES)
    assert len(templates.variants["system.txt"]) > 1 and len(templates.lists["ideas_rule.txt"]) >= 7


def test_user_template_dir_overrides_one_file_and_falls_back_for_the_rest(tmp_path):
    (tmp_path / "retry.txt").write_text("CUSTOM RETRY: $error ($attempt/$max_attempts)\n")
    (tmp_path / "instruction_diff.txt").write_text("DO THE THING. $focus\n---variant---\nDO IT OTHERWISE.\n")
    templates = load_templates(tmp_path)
    assert templates.origin["retry.txt"] == tmp_path / "retry.txt"
    assert templates.origin["system.txt"] == PACKAGED_DIR / "system.txt"
    assert retry_message("boom", 1, 2, template_dir=tmp_path)["content"] == "CUSTOM RETRY: boom (1/2)\n"
    users = {messages(s, template_dir=tmp_path)[1]["content"].rsplit("\n\n", 1)[-1] for s in range(8)}
    assert users >= {"DO THE THING. The current program failed (candidate_error at the smoke stage; see its "
                     "evaluation above): fix the cause first, keeping its idea if the idea is sound.\n",
                     "DO IT OTHERWISE.\n"}
    assert "b.progress" in messages(template_dir=tmp_path)[0]["content"]  # packaged system prompt


def test_unknown_placeholder_is_a_clear_error(tmp_path):
    (tmp_path / "parent.txt").write_text("$parent_source\n---variant---\n$parent_source and $parent_scor\n")
    with pytest.raises(TemplateError) as err:
        load_templates(tmp_path)
    message = str(err.value)
    assert "parent.txt" in message and "variant 2" in message and "$parent_scor" in message
    assert "$score" in message  # lists what is allowed


@pytest.mark.parametrize(("name", "text", "match"), [
    ("retry.txt", "costs $5: $error", "literal dollar"),
    ("parent.txt", "the program: ${score}", r"must use \$parent_source"),
    ("system.txt", "$contract $edit_rules\n---variant---\n\n", "variant 2.* empty"),
    ("sytem.txt", "$contract $edit_rules", "unknown prompt template file"),
])
def test_malformed_templates(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(TemplateError, match=match):
        load_templates(tmp_path)


def test_missing_template_dir(tmp_path):
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(tmp_path / "nope")


def test_a_copy_of_the_packaged_templates_loads(tmp_path):
    for path in PACKAGED_DIR.glob("*.txt"):
        shutil.copy(path, tmp_path / path.name)
    assert messages(5, template_dir=tmp_path) == messages(5)
