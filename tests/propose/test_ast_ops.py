"""AST operators: valid, minimal, deterministic children confined to the EVOLVE-BLOCK."""

import ast
import builtins
import difflib
import io
import itertools
import random
import tokenize

import numpy as np
import pytest
from conftest import BASELINES, rule_source

from evosearch.program import outside_block_unchanged, split_block, static_check
from evosearch.propose.ast_ops import ast_operators
from evosearch.propose.base import Parent, ProposalError
from evosearch.train.probe import probe
from evosearch.train.rule import RuleError, load_rule

OPERATORS = {op.name: op for op in ast_operators()}
SINGLE = [name for name, op in OPERATORS.items() if op.arity == 1]
SEEDS = range(20)
PAIRS = list(itertools.permutations(BASELINES, 2))

POLICY = '''"""Push the cart towards where the pole leans (a CartPole policy)."""

import numpy as np

# EVOLVE-BLOCK-START
GAIN = 1.5
BIAS = 0.1


def act(obs):
    # lean plus a little angular velocity
    score = GAIN * obs[:, 2] + 0.5 * obs[:, 3] - BIAS
    return (score > 0).astype(np.int64)
# EVOLVE-BLOCK-END
'''


def parents_for(op, name, mate=None, kind="rule", source=None):
    main = Parent(source or rule_source(name), program_id=1, kind=kind)
    if op.arity == 1:
        return [main]
    return [main, Parent(rule_source(mate), program_id=2, kind=kind)]


def attempt(op, parents, seed):
    try:
        return op.propose(parents, random.Random(seed))
    except ProposalError:
        return None


def changed_lines(parent: str, child: str) -> list[str]:
    diff = difflib.unified_diff(parent.splitlines(), child.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def unbound_names(source: str) -> set[str]:
    """Names read somewhere in the module but bound nowhere in it (nor builtins)."""
    tree = ast.parse(source)
    bound = set(dir(builtins))
    loaded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return loaded - bound


def test_operators_are_named_and_ordered():
    assert list(OPERATORS) == ["ast.constant", "ast.operator", "ast.clamp", "ast.drop_term",
                               "ast.duplicate_term", "ast.crossover"]
    assert [op.arity for op in OPERATORS.values()] == [1, 1, 1, 1, 1, 2]


def check_child(proposal, parent_source, name, kind="rule"):
    child = proposal.source
    ast.parse(child)
    assert static_check(child, kind) == []
    assert child != parent_source
    assert outside_block_unchanged(parent_source, child)
    assert split_block(child)[0] == split_block(parent_source)[0]
    assert proposal.operator == name and proposal.note and "\n" not in proposal.note


@pytest.mark.parametrize("name", SINGLE)
def test_single_parent_children_are_valid_minimal_and_frequent(name):
    op = OPERATORS[name]
    for baseline in BASELINES:
        parents = parents_for(op, baseline)
        made = 0
        for seed in SEEDS:
            proposal = attempt(op, parents, seed)
            if proposal is None:
                continue
            made += 1
            check_child(proposal, parents[0].source, name)
            assert proposal.parent_ids == (1,)
            # The baselines' statements are one line each, so a minimal edit touches one line.
            assert len(changed_lines(parents[0].source, proposal.source)) == 2, proposal.note
        assert made >= 18, f"{name} made {made}/20 children of {baseline}"


def test_crossover_children_are_valid_and_use_only_defined_names():
    op = OPERATORS["ast.crossover"]
    made = 0
    for recipient, donor in PAIRS:
        parents = parents_for(op, recipient, donor)
        for seed in range(8):
            proposal = attempt(op, parents, seed)
            if proposal is None:
                continue
            made += 1
            check_child(proposal, parents[0].source, "ast.crossover")
            assert proposal.parent_ids == (1, 2)
            assert unbound_names(proposal.source) == set(), proposal.note
            if recipient == "a2c":  # a2c imports nothing: no piece needing torch may land there
                assert "torch" not in split_block(proposal.source)[1]
    assert made >= len(PAIRS) * 8 // 2


def test_constant_changes_exactly_one_numeric_literal():
    op = OPERATORS["ast.constant"]
    named = 0
    for baseline in BASELINES:
        source = rule_source(baseline)
        for seed in SEEDS:
            proposal = op.propose([Parent(source)], random.Random(seed))
            before = list(tokenize.generate_tokens(io.StringIO(source).readline))
            after = list(tokenize.generate_tokens(io.StringIO(proposal.source).readline))
            assert len(before) == len(after)
            diffs = [(a, b) for a, b in zip(before, after, strict=True) if a.string != b.string]
            assert len(diffs) == 1
            (old, new), = diffs
            assert old.type == new.type == tokenize.NUMBER
            assert float(new.string) > 0 and float(new.string) != float(old.string)
            named += proposal.note.split()[0].isupper()
    assert named >= 0.5 * len(BASELINES) * len(SEEDS)  # ENT_COEF, CLIP and the like come first


def test_drop_term_can_remove_the_entropy_bonus_of_a2c():
    op = OPERATORS["ast.drop_term"]
    children = [attempt(op, parents_for(op, "a2c"), seed) for seed in range(40)]
    losses = [c.source.split("def loss")[1] for c in children if c is not None]
    assert any("entropy" not in loss and "VF_COEF * v_loss" in loss for loss in losses)


def test_crossover_brings_reinforce_advantages_into_ppo_clip():
    op = OPERATORS["ast.crossover"]
    parents = parents_for(op, "ppo_clip", "reinforce")
    children = [attempt(op, parents, seed) for seed in range(30)]
    with_adv = [c for c in children if c is not None and "def advantages" in c.source]
    assert with_adv, [c.note for c in children if c is not None]
    child = with_adv[0]
    assert "advantages" in child.note
    assert child.source.count("def loss") == 1 and "torch.max(-adv * ratio" in child.source
    rule = load_rule(child.source)
    assert rule.advantages is not None
    probe(rule)


def test_crossover_never_lands_a_piece_with_an_undefined_name():
    # dpo's pieces read torch, ALPHA, BETA, adv, log_ratio...; a2c has no torch and no such locals.
    op = OPERATORS["ast.crossover"]
    parents = parents_for(op, "a2c", "dpo")
    for seed in range(30):
        proposal = attempt(op, parents, seed)
        if proposal is not None:
            block = split_block(proposal.source)[1]
            assert "torch" not in block and "log_ratio" not in block
            assert unbound_names(proposal.source) == set()


def test_crossover_brings_needed_constants_along():
    op = OPERATORS["ast.crossover"]
    parents = parents_for(op, "reinforce", "a2c")  # a2c's entropy term needs ENT_COEF, reinforce has none
    notes = []
    for seed in range(30):
        proposal = attempt(op, parents, seed)
        if proposal is not None and "ENT_COEF * b.entropy" in proposal.source:
            assert "ENT_COEF = 0.01" in split_block(proposal.source)[1]
            probe(load_rule(proposal.source))
            return
        notes.append(proposal and proposal.note)
    pytest.fail(f"no child took the entropy term: {notes}")


def test_sampled_children_pass_the_smoke_test_or_fail_it_cleanly():
    passed = {name: 0 for name in OPERATORS}
    tried = {name: 0 for name in OPERATORS}
    for name, op in OPERATORS.items():
        for index, baseline in enumerate(BASELINES):
            mate = BASELINES[(index + 1) % len(BASELINES)]
            for seed in range(4):
                proposal = attempt(op, parents_for(op, baseline, mate), seed)
                if proposal is None:
                    continue
                tried[name] += 1
                try:
                    probe(load_rule(proposal.source))
                except RuleError:
                    continue
                passed[name] += 1
    assert all(tried.values()), tried
    assert passed["ast.constant"] >= 0.9 * tried["ast.constant"]
    assert sum(passed.values()) >= 0.7 * sum(tried.values()), (passed, tried)


@pytest.mark.parametrize("name", list(OPERATORS))
def test_same_seed_same_child(name):
    op = OPERATORS[name]
    for baseline in BASELINES:
        parents = parents_for(op, baseline, "reinforce" if baseline != "reinforce" else "dpo")
        first, second = attempt(op, parents, 7), attempt(op, parents, 7)
        assert (first and first.source) == (second and second.source)
    sources = {getattr(attempt(op, parents_for(op, "dpo", "ppo_clip"), seed), "source", None) for seed in SEEDS}
    assert len(sources) > 1  # and different seeds explore


@pytest.mark.parametrize("name", list(OPERATORS))
def test_program_without_evolve_block_is_refused(name):
    op = OPERATORS[name]
    source = "import torch\n\n\ndef loss(b):\n    return -(b.logp * b.adv).mean() + 0.5 * b.value.pow(2).mean()\n"
    parents = [Parent(source, program_id=1)] * op.arity
    assert not op.applies(parents)
    with pytest.raises(ProposalError, match="EVOLVE-BLOCK"):
        op.propose(parents, random.Random(0))


def test_no_site_is_a_clear_error():
    source = "# EVOLVE-BLOCK-START\ndef loss(b):\n    return b.logp.mean()\n# EVOLVE-BLOCK-END\n"
    for name in ("ast.constant", "ast.drop_term", "ast.duplicate_term"):
        with pytest.raises(ProposalError, match="no "):
            OPERATORS[name].propose([Parent(source)], random.Random(0))


def test_edits_keep_comments_and_formatting_elsewhere():
    source = rule_source("a2c").replace("def loss(b):", "def loss(b):  # the A2C loss\n    # policy term")
    for name in SINGLE:
        for seed in range(5):
            proposal = attempt(OPERATORS[name], [Parent(source)], seed)
            if proposal is not None:
                assert "# the A2C loss\n    # policy term" in proposal.source
                assert len(changed_lines(source, proposal.source)) == 2


def test_policy_programs_are_edited_too():
    obs = np.linspace(-1, 1, 12).reshape(3, 4)
    for name in SINGLE:
        op = OPERATORS[name]
        made = 0
        for seed in range(10):
            proposal = attempt(op, parents_for(op, None, kind="policy", source=POLICY), seed)
            if proposal is None:
                continue
            made += 1
            check_child(proposal, POLICY, name, kind="policy")
            if name == "ast.clamp":
                assert ".clip(" in proposal.source and ".clamp(" not in proposal.source
            namespace: dict = {}
            exec(compile(proposal.source, "<policy>", "exec"), namespace)  # noqa: S102 - our own test program
            assert namespace["act"](obs).shape == (3,)
        assert made >= 8, f"{name} made {made}/10 policy children"


def test_crossover_needs_two_parents_of_one_kind():
    op = OPERATORS["ast.crossover"]
    one = Parent(rule_source("a2c"), kind="rule")
    assert not op.applies([one])
    assert not op.applies([one, Parent(POLICY, kind="policy")])
    with pytest.raises(ProposalError):
        op.propose([one], random.Random(0))


def all_children(op, source, seeds=range(60)):
    """The distinct children an operator makes of ``source`` over many seeds."""
    children = {}
    for seed in seeds:
        proposal = attempt(op, [Parent(source)], seed)
        if proposal is not None:
            children[proposal.source] = proposal.note
    return children


PARENTHESISED = '''import torch

# EVOLVE-BLOCK-START
def loss(b):
    x = (b.logp + b.adv) - b.value
    y = b.logp - (b.value + b.ret)
    return (x * y).mean()
# EVOLVE-BLOCK-END
'''


def test_drop_term_respects_parentheses():
    lines = {changed_lines(PARENTHESISED, child)[1][1:].strip()
             for child in all_children(OPERATORS["ast.drop_term"], PARENTHESISED)}
    assert lines == {
        "x = (b.adv) - b.value", "x = (b.logp) - b.value", "x = (b.logp + b.adv)",
        "y = -(b.value + b.ret)", "y = b.logp", "y = b.logp - (b.ret)", "y = b.logp - (b.value)",
    }


MULTILINE = '''import torch

# EVOLVE-BLOCK-START
ENT_COEF = 0.01


def loss(b):
    pg_loss = -(b.logp * b.adv).mean()
    v_loss = ((b.value - b.ret) ** 2).mean()
    return (pg_loss  # policy
            - ENT_COEF * b.entropy.mean()  # entropy bonus
            + 0.5 * v_loss)
# EVOLVE-BLOCK-END
'''


def test_drop_term_removes_a_term_on_its_own_line_with_its_comment():
    children = all_children(OPERATORS["ast.drop_term"], MULTILINE)
    no_entropy = [c for c in children if "entropy" not in c.split("def loss")[1]]
    assert len(no_entropy) == 1
    assert "    return (pg_loss  # policy\n            + 0.5 * v_loss)\n" in no_entropy[0]
    no_value = [c for c in children if "v_loss)" not in c]
    assert len(no_value) == 1 and "b.entropy.mean()  # entropy bonus\n            )\n" in no_value[0]
    for child in children:
        assert static_check(child) == []


def test_constant_skips_integral_exponents_and_positions_are_utf8_safe():
    body = '    tag = "é"; z = x ** 2 + 0.25 * y\n    return z.mean()'  # "é" is two bytes: ast columns count bytes
    source = PARENTHESISED.replace("    return (x * y).mean()", body)
    children = all_children(OPERATORS["ast.constant"], source)
    assert children and all("** 2 +" in c for c in children)
    assert all('tag = "é"; z = x ** 2 + ' in c and " * y\n" in c for c in children)
    for child in children:
        probe(load_rule(child))


def test_crossover_takes_a_constant_value_from_a_sibling():
    op = OPERATORS["ast.crossover"]
    sibling = rule_source("ppo_clip").replace("CLIP = 0.2", "CLIP = 0.3")
    parents = [Parent(rule_source("ppo_clip"), program_id=1), Parent(sibling, program_id=2)]
    proposal = op.propose(parents, random.Random(0))
    assert proposal.note == "CLIP 0.2 -> 0.3 from #2"
    assert proposal.source == sibling
