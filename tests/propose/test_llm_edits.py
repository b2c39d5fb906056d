"""From an LLM's answer to a child: SEARCH/REPLACE, full rewrites, odd fences, and errors a model can act on."""

import pytest
from conftest import BASELINES, rule_source

from evosearch.program import outside_block_unchanged, split_block, static_check
from evosearch.propose.llm_edits import EditError, apply_response, apply_response_detailed


def sr(search: str, replace: str) -> str:
    """One SEARCH/REPLACE block in the aider/OpenEvolve format."""
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def block_of(source: str) -> str:
    return split_block(source)[1]


A2C_BLOCK = block_of(rule_source("a2c"))
POLICY = '''"""Push the cart towards where the pole leans (a CartPole policy)."""

import numpy as np

# EVOLVE-BLOCK-START
GAIN = 1.5


def act(obs):
    return (GAIN * obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
# EVOLVE-BLOCK-END
'''


def assert_valid_child(parent: str, child: str) -> None:
    assert child != parent
    assert outside_block_unchanged(parent, child)
    assert static_check(child) == []


# --- SEARCH/REPLACE -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BASELINES)
def test_search_replace_on_each_baseline_changes_only_the_block(name):
    parent = rule_source(name)
    response = "Halve the value weight.\n\n```\n" + sr("VF_COEF = 0.5\n", "VF_COEF = 0.25\n") + "```\n"
    child, mode = apply_response(parent, response)
    assert mode == "diff"
    assert_valid_child(parent, child)
    assert block_of(child) == block_of(parent).replace("VF_COEF = 0.5\n", "VF_COEF = 0.25\n")


def test_a2c_entropy_coefficient():
    parent = rule_source("a2c")
    child, mode = apply_response(parent, sr("ENT_COEF = 0.01\n", "ENT_COEF = 0.003\n"))
    assert mode == "diff" and "ENT_COEF = 0.003\n" in child and "ENT_COEF = 0.01\n" not in child
    assert_valid_child(parent, child)
    applied = apply_response_detailed(parent, sr("ENT_COEF = 0.01\n", "ENT_COEF = 0.003\n"))
    assert not applied.fuzzy and applied.note == ""


def test_several_blocks_apply_in_order():
    parent = rule_source("ppo_clip")
    response = (
        "Two changes:\n"
        + sr("CLIP = 0.2\n", "CLIP = 0.3\n")
        + "and\n"
        + sr("    return pg_loss - ENT_COEF * b.entropy.mean() + VF_COEF * v_loss\n",
             "    ent = ENT_COEF * (1 - b.progress)\n    return pg_loss - ent * b.entropy.mean() + VF_COEF * v_loss\n")
    )
    child, mode = apply_response(parent, response)
    assert mode == "diff"
    assert "CLIP = 0.3\n" in child and "ent = ENT_COEF * (1 - b.progress)" in child
    assert_valid_child(parent, child)


def test_indentation_and_trailing_whitespace_fallback():
    parent = rule_source("a2c")
    search = "  pg_loss = -(b.logp * b.adv).mean()   \n  v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()\n"
    replace = "  pg_loss = -(b.logp * b.adv.clamp(-5, 5)).mean()\n  v_loss = 0.5 * ((b.value - b.ret) ** 2).mean()\n"
    applied = apply_response_detailed(parent, sr(search, replace))
    assert applied.mode == "diff" and applied.fuzzy
    assert "indentation" in applied.note
    assert "\n    pg_loss = -(b.logp * b.adv.clamp(-5, 5)).mean()\n" in applied.child  # re-indented to 4 spaces
    assert_valid_child(parent, applied.child)


def test_fallback_with_extra_indentation_keeps_relative_indentation():
    parent = rule_source("a2c")
    search = "".join("    " + line + "\n" if line else "\n" for line in A2C_BLOCK.split("\n")[4:7])
    assert search.startswith("    def loss(b):")
    replace = search.replace("0.5 * ((b.value", "0.25 * ((b.value")
    child, _ = apply_response(parent, sr(search, replace))
    assert "\ndef loss(b):\n    pg_loss" in child and "v_loss = 0.25 *" in child
    assert_valid_child(parent, child)


def test_no_match_names_the_missing_line_and_the_closest_one():
    with pytest.raises(EditError) as err:
        apply_response(rule_source("a2c"), sr("ENT_COEF = 0.02\n", "ENT_COEF = 0.05\n"))
    message = str(err.value)
    assert "SEARCH block 1" in message and "0 matches" in message
    assert "`ENT_COEF = 0.02`" in message and "closest line" in message and "`ENT_COEF = 0.01`" in message


def test_no_match_in_the_second_block_says_which():
    response = sr("ENT_COEF = 0.01\n", "ENT_COEF = 0.02\n") + sr("VF_COEF = 0.7\n", "VF_COEF = 0.4\n")
    with pytest.raises(EditError, match="SEARCH block 2 does not match"):
        apply_response(rule_source("a2c"), response)


def test_lines_present_but_not_contiguous():
    with pytest.raises(EditError, match="not as one contiguous run"):
        apply_response(rule_source("a2c"), sr("ENT_COEF = 0.01\ndef loss(b):\n", "ENT_COEF = 0.02\ndef loss(b):\n"))


def test_ambiguous_search():
    parent = rule_source("a2c").replace("VF_COEF = 0.5\n", "VF_COEF = 0.5\nX = 1\nX = 1\n")
    with pytest.raises(EditError) as err:
        apply_response(parent, sr("X = 1\n", "X = 2\n"))
    assert "2 times" in str(err.value) and "ambiguous" in str(err.value) and "more surrounding lines" in str(err.value)


def test_match_only_outside_the_block():
    with pytest.raises(EditError) as err:
        apply_response(rule_source("ppo_clip"), sr("import torch\n", "import torch\nimport math\n"))
    assert "outside the EVOLVE-BLOCK" in str(err.value) and "not allowed" in str(err.value)
    with pytest.raises(EditError, match="outside the EVOLVE-BLOCK"):
        apply_response(rule_source("a2c"), sr('"""Advantage actor-critic (A2C).\n', '"""A3C.\n'))


def test_marker_lines_copied_into_both_halves_are_tolerated():
    parent = rule_source("a2c")
    child, _ = apply_response(parent, sr("# EVOLVE-BLOCK-START\nENT_COEF = 0.01\n",
                                         "# EVOLVE-BLOCK-START\nENT_COEF = 0.02\n"))
    assert_valid_child(parent, child)


def test_removing_a_marker_is_refused():
    with pytest.raises(EditError, match="EVOLVE-BLOCK marker"):
        apply_response(rule_source("a2c"), sr("# EVOLVE-BLOCK-START\nENT_COEF = 0.01\n", "ENT_COEF = 0.02\n"))


def test_incomplete_block():
    with pytest.raises(EditError, match="complete block"):
        apply_response(rule_source("a2c"), "<<<<<<< SEARCH\nENT_COEF = 0.01\n=======\nENT_COEF = 0.02\n")


def test_empty_search():
    with pytest.raises(EditError, match="empty"):
        apply_response(rule_source("a2c"), sr("", "X = 1\n"))


def test_blocks_touching_the_same_lines():
    response = sr("ENT_COEF = 0.01\n", "ENT_COEF = 0.02\n") + sr("ENT_COEF = 0.01\nVF_COEF = 0.5\n", "VF_COEF = 1\n")
    with pytest.raises(EditError, match="apply in order"):
        apply_response(rule_source("a2c"), response)


def test_noop_diff():
    with pytest.raises(EditError, match="changes nothing"):
        apply_response(rule_source("a2c"), sr("ENT_COEF = 0.01\n", "ENT_COEF = 0.01\n"))


def test_child_failing_static_check_reports_it():
    with pytest.raises(EditError) as err:
        apply_response(rule_source("a2c"), sr("ENT_COEF = 0.01\n", "import os\nENT_COEF = 0.01\n"))
    assert "static check" in str(err.value) and "'os'" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_deleting_loss_fails_the_static_check():
    block = A2C_BLOCK.split("def loss")[1]
    with pytest.raises(EditError, match="static check.*loss"):
        apply_response(rule_source("a2c"), sr("def loss" + block, ""))


# --- prose and fences ---------------------------------------------------------------------------


def test_prose_only():
    with pytest.raises(EditError) as err:
        apply_response(rule_source("a2c"), "I would lower the entropy coefficient to make the policy greedier.")
    assert "no code found" in str(err.value) and "SEARCH/REPLACE" in str(err.value)


NEW_A2C_BLOCK = A2C_BLOCK.replace("ENT_COEF = 0.01", "ENT_COEF = 0.001")


@pytest.mark.parametrize("response", [
    f"Here:\n```python\n{NEW_A2C_BLOCK}```\n",
    f"```py\n{NEW_A2C_BLOCK}```",
    f"```Python\n{NEW_A2C_BLOCK}```\nDone.",
    f"```\n{NEW_A2C_BLOCK}```",
    f"~~~\n{NEW_A2C_BLOCK}~~~\n",
    f"~~~python\n{NEW_A2C_BLOCK}~~~\n",
    f"````python\n{NEW_A2C_BLOCK}````\n",
    f"```python rule.py\n{NEW_A2C_BLOCK}```\n",
    f"```python title=\"a2c.py\"\n{NEW_A2C_BLOCK}```\n",
    f"The new block:\n```python\n{NEW_A2C_BLOCK}",  # unterminated final fence
    f"Idea.\r\n```python\r\n{NEW_A2C_BLOCK}```\r\n".replace("\n", "\r\n").replace("\r\r", "\r"),  # CRLF
    f"Helper:\n```python\nx = 1\ny = 2\nz = 3\n# a long helper with no loss at all, longer than the rule\n"
    f"{'# padding line' * 40}\n```\nand the rule:\n```python\n{NEW_A2C_BLOCK}```\n",  # two blocks
    f"```python\n{NEW_A2C_BLOCK}```\nOr, less risky:\n```python\nENT_COEF = 0.005\n```\n",  # two blocks
    f"  ```python\n{NEW_A2C_BLOCK}  ```\n",  # indented fence
    f"Before:\n```python\n{A2C_BLOCK}```\nAfter:\n```python\n{NEW_A2C_BLOCK}```\n",  # both define loss: the last
], ids=["python", "py", "Python", "bare", "tilde", "tilde-python", "four-backticks", "filename", "title",
        "unterminated", "crlf", "helper-first", "snippet-after", "indented", "before-after"])
def test_fence_variants(response):
    parent = rule_source("a2c")
    child, mode = apply_response(parent, response)
    assert mode == "rewrite"
    assert block_of(child) == NEW_A2C_BLOCK
    assert_valid_child(parent, child)


def test_bare_code_without_fence():
    parent = rule_source("a2c")
    child, mode = apply_response(parent, NEW_A2C_BLOCK)
    assert (mode, block_of(child)) == ("rewrite", NEW_A2C_BLOCK)


def test_search_replace_inside_a_diff_fence():
    parent = rule_source("dpo")
    child, mode = apply_response(parent, "```diff\n" + sr("BETA = 0.6\n", "BETA = 0.8\n") + "```")
    assert mode == "diff" and "BETA = 0.8\n" in child


def test_crlf_search_replace():
    parent = rule_source("a2c")
    child, _ = apply_response(parent, sr("ENT_COEF = 0.01\n", "ENT_COEF = 0.02\n").replace("\n", "\r\n"))
    assert "\r" not in child and "ENT_COEF = 0.02\n" in child


# --- full rewrites ------------------------------------------------------------------------------


def test_rewrite_with_markers_keeps_the_parent_outside_byte_for_byte():
    parent = rule_source("ppo_clip")
    new_block = block_of(parent).replace("CLIP = 0.2", "CLIP = 0.1")
    response = ('```python\n"""My better PPO (a changed docstring, ignored)."""\n\nimport torch\n\n'
                f"# EVOLVE-BLOCK-START\n{new_block}# EVOLVE-BLOCK-END\n\nprint('hi')\n```")
    applied = apply_response_detailed(parent, response)
    assert applied.mode == "rewrite" and block_of(applied.child) == new_block
    assert "below EVOLVE-BLOCK-END" in applied.note
    assert_valid_child(parent, applied.child)


def test_rewrite_without_markers_drops_docstring_and_known_imports():
    parent = rule_source("ppo_clip")
    new_block = block_of(parent).replace("ENT_COEF = 0.01", "ENT_COEF = 0.0")
    response = f'```python\n"""PPO without entropy."""\n\nimport torch\n\n{new_block}```'
    child, mode = apply_response(parent, response)
    assert mode == "rewrite" and block_of(child) == new_block
    assert child.count("import torch") == 1
    assert_valid_child(parent, child)


def test_rewrite_without_markers_keeps_a_new_allowed_import_inside_the_block():
    parent = rule_source("a2c")  # imports nothing above its block
    body = A2C_BLOCK.replace("(b.logp * b.adv)", "(b.logp * torch.tanh(b.adv))")
    child, _ = apply_response(parent, f"```python\nimport torch\n\n{body}```")
    assert block_of(child) == "import torch\n\n" + body
    assert_valid_child(parent, child)


def test_rewrite_adding_an_import_above_the_block_is_refused():
    parent = rule_source("a2c")
    body = A2C_BLOCK.replace("(b.logp * b.adv)", "(b.logp * torch.tanh(b.adv))")
    with pytest.raises(EditError) as err:
        apply_response(parent, f"```python\nimport torch\n# EVOLVE-BLOCK-START\n{body}# EVOLVE-BLOCK-END\n```")
    message = str(err.value)
    assert "`import torch` outside the EVOLVE-BLOCK" in message
    assert "Imported outside the block already: nothing" in message and "inside the EVOLVE-BLOCK" in message


def test_rewrite_adding_a_banned_import_above_the_block_says_it_is_banned():
    with pytest.raises(EditError, match="`import os` is not allowed anywhere"):
        apply_response(rule_source("ppo_clip"), "```python\nimport torch\nimport os\n# EVOLVE-BLOCK-START\n"
                       f"{block_of(rule_source('ppo_clip')).replace('0.2', '0.3')}# EVOLVE-BLOCK-END\n```")


def test_rewrite_with_a_banned_import_inside_fails_the_static_check():
    with pytest.raises(EditError, match="static check.*'os'"):
        apply_response(rule_source("a2c"), f"```python\nimport os\n\n{NEW_A2C_BLOCK}```")


def test_rewrite_identical_to_parent_is_a_noop():
    parent = rule_source("dpo")
    with pytest.raises(EditError, match="changes nothing"):
        apply_response(parent, f"```python\n{parent}```")


def test_rewrite_without_the_entry_point_suggests_search_replace():
    with pytest.raises(EditError) as err:
        apply_response(rule_source("a2c"), "```python\nENT_COEF = 0.005\n```")
    assert "does not define a top-level `loss(...)`" in str(err.value) and "SEARCH/REPLACE" in str(err.value)


def test_rewrite_with_broken_markers():
    with pytest.raises(EditError, match="marker lines"):
        apply_response(rule_source("a2c"), f"```python\n# EVOLVE-BLOCK-END\n{NEW_A2C_BLOCK}# EVOLVE-BLOCK-START\n```")


def test_rewrite_with_a_syntax_error_reports_it():
    with pytest.raises(EditError, match="static check.*syntax error"):
        apply_response(rule_source("a2c"), "```python\ndef loss(b):\n    return (b.logp\n```")


def test_policy_rewrite_picks_the_block_defining_act():
    new = block_of(POLICY).replace("GAIN = 1.5", "GAIN = 2.0")
    response = f"```python\nGAIN = 3.0  # a long aside, with no act in it, just to be the longest block here\n```\n" \
               f"```python\n{new}```"
    child, mode = apply_response(POLICY, response, kind="policy")
    assert mode == "rewrite" and block_of(child) == new
    assert static_check(child, "policy") == [] and outside_block_unchanged(POLICY, child)


def test_parent_without_block():
    with pytest.raises(EditError, match="no usable EVOLVE-BLOCK"):
        apply_response("def loss(b):\n    return b.logp.mean()\n", sr("x\n", "y\n"))
