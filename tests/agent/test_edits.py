"""render_edit: the SEARCH/REPLACE answer that apply_response turns back into the child, exactly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evosearch.agent.edits import render_edit
from evosearch.propose.ast_ops import ast_operators
from evosearch.propose.base import Parent, ProposalError
from evosearch.propose.llm_edits import apply_response

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "rule": [p.read_text() for p in sorted((ROOT / "programs" / "rules").glob("*.py"))],
    "policy": [p.read_text() for p in sorted((ROOT / "programs" / "policies").glob("*.py"))],
}

PROGRAM = '''"""A test program."""

import torch

# EVOLVE-BLOCK-START
A = 1.0
B = 2.0


def loss(b):
    x = (b.logp * b.adv).mean()
    x = (b.logp * b.adv).mean()
    return -x * A + B * 0.0
# EVOLVE-BLOCK-END
'''


def mutants(kind: str, seed: int, steps: int) -> list[str]:
    """A chain of programs, each an AST operator's child of the one before (crossover mates: the other seeds)."""
    rng = random.Random(seed)
    sources = SOURCES[kind]
    chain = [sources[seed % len(sources)]]
    operators = ast_operators()
    for _ in range(steps * 3):
        if len(chain) > steps:
            break
        op = operators[rng.randrange(len(operators))]
        parents = [Parent(source=chain[-1], kind=kind)] + [Parent(source=s, kind=kind) for s in sources][:op.arity - 1]
        if not op.applies(parents):
            continue
        try:
            chain.append(op.propose(parents, rng).source)
        except ProposalError:
            continue
    return chain


def assert_round_trip(parent: str, child: str, kind: str = "rule") -> str:
    text = render_edit(parent, child)
    assert apply_response(parent, text, kind) == (child, "diff")
    return text


@pytest.mark.parametrize("kind", ["rule", "policy"])
def test_every_ast_child_comes_back_exactly(kind):
    pairs = 0
    for seed in range(40):
        chain = mutants(kind, seed, steps=4)
        for parent, child in zip(chain[:-1], chain[1:], strict=True):  # one operator's edit
            assert_round_trip(parent, child, kind)
            pairs += 1
        if len(chain) > 2:  # several edits at once, often far apart: several blocks
            assert_round_trip(chain[0], chain[-1], kind)
            assert_round_trip(chain[-1], chain[0], kind)  # and back, deletions and all
            pairs += 2
    assert pairs > 100


def test_each_search_is_unique_where_it_applies_and_has_context():
    child = PROGRAM.replace("    return -x * A + B * 0.0", "    return -x * A")
    child = child.replace("    x = (b.logp * b.adv).mean()\n    x = (b.logp * b.adv).mean()",
                          "    x = (b.logp * b.adv).mean()\n    x = (b.logp * b.adv).sum()")
    text = assert_round_trip(PROGRAM, child)
    assert text.count("<<<<<<< SEARCH") == 1  # two changes one line apart: one block
    assert "    x = (b.logp * b.adv).mean()\n    x = (b.logp * b.adv).mean()\n" in text  # the repeated line: context


def test_far_apart_changes_are_separate_blocks_in_order():
    child = PROGRAM.replace("A = 1.0", "A = 0.5").replace("    return -x * A + B * 0.0", "    return -x * A")
    text = assert_round_trip(PROGRAM, child)
    assert text.count("<<<<<<< SEARCH") == 2
    assert text.index("A = 0.5") < text.index("return -x * A\n")


def test_insertions_and_deletions():
    inserted = PROGRAM.replace("B = 2.0\n", "B = 2.0\nC = 3.0\n")
    assert_round_trip(PROGRAM, inserted)
    assert_round_trip(inserted, PROGRAM)
    at_top = PROGRAM.replace("# EVOLVE-BLOCK-START\n", "# EVOLVE-BLOCK-START\nimport math\n")
    assert_round_trip(PROGRAM, at_top)
    at_end = PROGRAM.replace("# EVOLVE-BLOCK-END", "\n\ndef extra():\n    return 1\n# EVOLVE-BLOCK-END")
    assert_round_trip(PROGRAM, at_end)
    assert_round_trip(at_end, PROGRAM)


def test_blank_lines_alone_are_never_a_search():
    child = PROGRAM.replace("B = 2.0\n\n\ndef", "B = 2.0\n\n\n\ndef")
    text = assert_round_trip(PROGRAM, child)
    search = text.split("<<<<<<< SEARCH\n")[1].split("=======")[0]
    assert search.strip()


def test_crlf_programs_keep_their_line_endings():
    parent = PROGRAM.replace("\n", "\r\n")
    child = parent.replace("A = 1.0", "A = 0.25")
    assert "\r" not in render_edit(parent, child)
    assert_round_trip(parent, child)


@pytest.mark.parametrize(("child", "message"), [
    (PROGRAM.replace('"""A test program."""', '"""Another docstring."""'), "outside the EVOLVE-BLOCK"),
    (PROGRAM.replace("import torch", "import math"), "outside the EVOLVE-BLOCK"),
    (PROGRAM, "identical"),
    (PROGRAM.replace("# EVOLVE-BLOCK-END\n", ""), "no single EVOLVE-BLOCK"),
    (PROGRAM.replace("B = 2.0", "B = 2.0\n======="), "marker"),
    (PROGRAM.replace("B = 2.0", "B = 2.0\n#EVOLVE-BLOCK-END"), "marker"),
    (PROGRAM.replace("B = 2.0", "B = 2.0 \r A = 1"), "carriage return"),
    (PROGRAM.replace("A = 1.0\n", "A = 1.0\r\n"), "line endings"),
])
def test_what_is_no_edit_is_a_value_error(child, message):
    with pytest.raises(ValueError, match=message):
        render_edit(PROGRAM, child)


def test_an_empty_block_cannot_be_anchored():
    empty = "import torch\n# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-END\n"
    with pytest.raises(ValueError, match="anchored"):
        render_edit(empty, empty.replace("START\n", "START\nA = 1\n"))
