"""Lifting a rule's constants (`evosearch.metagrad.constants`): what is lifted, the tensor form, write-back.

The shipped rules are the real cases; small sources written here cover what they do not
(shadowing, ints, guards, negated literals, defaults, non-ASCII columns).
"""

from __future__ import annotations

import ast
import math
import types
from pathlib import Path

import pytest
import torch

from evosearch.metagrad.constants import (
    LiftError,
    changed_constants,
    format_constant,
    lift,
    write_back,
)

RULES = sorted((Path(__file__).resolve().parents[2] / "programs" / "rules").glob("*.py"))
BATCH_FIELDS = ("logp", "old_logp", "adv", "ret", "value", "old_value", "entropy")


def block(body: str, head: str = "import torch\n") -> str:
    return f"{head}# EVOLVE-BLOCK-START\n{body}# EVOLVE-BLOCK-END\n"


def batch(seed: int = 0, n: int = 64, **fields: torch.Tensor) -> types.SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    data = {k: torch.randn(n, generator=g, dtype=torch.float64) for k in BATCH_FIELDS}
    return types.SimpleNamespace(**{**data, **fields}, progress=torch.tensor(0.3, dtype=torch.float64))


def module(source: str, constants: list[torch.Tensor] | None = None) -> dict:
    namespace: dict = {} if constants is None else {"CONSTANTS": constants}
    exec(compile(source, "<rule>", "exec"), namespace)
    return namespace


def tensors(lifted, requires_grad: bool = False) -> list[torch.Tensor]:
    return [torch.tensor(c.value, dtype=torch.float64, requires_grad=requires_grad) for c in lifted.constants]


def rounded(value: float) -> float:
    return float(format_constant(value))


# -- the shipped rules --------------------------------------------------------------------------------


def test_ppo_clip_lifts_its_named_constants_and_the_inline_coefficient():
    lifted = lift((RULES[0].parent / "ppo_clip.py").read_text())
    assert lifted.names() == ["CLIP", "ENT_COEF", "VF_COEF", "line 22"]
    assert [c.value for c in lifted.constants] == [0.2, 0.01, 0.5, 0.5]
    assert all(c.log_space for c in lifted.constants)
    assert [c.inline for c in lifted.constants] == [False, False, False, True]
    # the 1e-8 guard and the ints (1 - CLIP, ** 2) stay; module assignments stay; loads become parameters
    assert "1e-08" in lifted.parametric_source and "1 - CONSTANTS[0]" in lifted.parametric_source
    assert "** 2" in lifted.parametric_source and "CLIP = 0.2" in lifted.parametric_source
    assert "CONSTANTS[3] * torch.max" in lifted.parametric_source and "ENT_COEF *" not in lifted.parametric_source


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.stem)
def test_parametric_source_gives_the_loss_of_the_original(path: Path):
    lifted = lift(path.read_text())
    b = batch()
    expected = module(lifted.source)["loss"](b)
    got = module(lifted.parametric_source, tensors(lifted))["loss"](b)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_one_point_zero_is_structure_not_a_constant():
    lifted = lift((RULES[0].parent / "reinforce.py").read_text())
    assert lifted.names() == ["VF_COEF", "line 27"]  # not the 1.0 of (1.0 - dones[t]) on line 20
    assert "1.0 - dones[t]" in lifted.parametric_source
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(5, generator=g, dtype=torch.float64) for _ in range(2)]
    args = [*args, (torch.rand(5, generator=g) < 0.3).double(), torch.tensor(0.7, dtype=torch.float64), 0.99, 0.95]
    expected = module(lifted.source)["advantages"](*args)
    torch.testing.assert_close(module(lifted.parametric_source, tensors(lifted))["advantages"](*args), expected)


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.stem)
def test_write_back_round_trips_on_every_rule(path: Path):
    lifted = lift(path.read_text())
    assert write_back(lifted, [c.value for c in lifted.constants]) == lifted.source  # unchanged values: same bytes
    for factor in (0.123456, -2.71828, 37.0):
        values = [c.value * factor for c in lifted.constants]
        written = write_back(lifted, values)
        again = lift(written)
        assert again.names() == lifted.names()
        assert [c.value for c in again.constants] == [rounded(v) for v in values]
        before, after = lifted.source.splitlines(keepends=True), written.splitlines(keepends=True)
        assert len(before) == len(after)
        changed = {i + 1 for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y}
        assert changed == {c.line for c in lifted.constants}  # every other line byte-identical
        for c in lifted.constants:  # and on those lines, only the literal's span
            old, new = before[c.line - 1], after[c.line - 1]
            assert new.startswith(old[:c.col]) and new.endswith(old[c.end_col:])


def test_ppo_clip_gradients_reach_the_coefficients_and_not_the_clip():
    lifted = lift((RULES[0].parent / "ppo_clip.py").read_text())
    params = tensors(lifted, requires_grad=True)
    loss = module(lifted.parametric_source, params)["loss"]
    clip, ent, vf, half = torch.autograd.grad(loss(batch()), params)
    assert ent != 0 and vf != 0 and half != 0
    # torch.clamp passes the gradient to a tensor bound at the clipped samples, so the loss itself moves
    # with CLIP where samples are clipped; with none clipped (ratio 1, value at old_value) it does not
    b = batch()
    calm = batch(logp=b.logp.clone(), old_logp=b.logp.clone(), value=b.value.clone(), old_value=b.value.clone())
    assert torch.autograd.grad(loss(calm), params)[0] == 0

    # what a meta-gradient sees, the update the loss makes, does not depend on CLIP anywhere on a batch
    outputs = {k: getattr(b, k).clone().requires_grad_(True) for k in ("logp", "value", "entropy")}
    moved = batch(**outputs)
    grads = torch.autograd.grad(loss(moved), list(outputs.values()), create_graph=True)
    g = torch.Generator().manual_seed(2)
    step = sum((x * torch.randn(x.shape, generator=g, dtype=x.dtype)).sum() for x in grads)
    clip, ent, vf, half = torch.autograd.grad(step, params)
    assert clip == 0 and ent != 0 and vf != 0 and half != 0


# -- what is lifted ------------------------------------------------------------------------------------

MIXED = block(
    "N_STEPS = 4\n"
    "SCALE = -0.5\n"
    "lower = 0.3\n"
    "A = B = 0.7\n"
    "TWICE = 2 * 3\n"
    "FLAG = True\n"
    "AGAIN = 0.1\n"
    "AGAIN = 0.2\n"
    "GLOBAL = 0.9\n"
    "\n"
    "\n"
    "def helper(x, k=0.25):\n"
    "    global GLOBAL\n"
    "    return x * k + 1e-8 + x ** 2 + x[1:3].sum() * 3 + (x > 0.0).double()\n"
    "\n"
    "\n"
    "def loss(b):\n"
    "    ent = -0.02 * b.entropy.mean() + SCALE * b.adv.mean() * N_STEPS\n"
    "    return ent + 0.5 * b.value.mean() + 0.5 * b.ret.mean() + True\n",
    head="import torch\nOUTSIDE = 0.3\n",
)


def test_what_is_lifted_and_what_is_not():
    lifted = lift(MIXED)
    assert lifted.names() == ["N_STEPS", "SCALE", "line 21", "line 22 #1", "line 22 #2"]
    assert [c.value for c in lifted.constants] == [4.0, -0.5, -0.02, 0.5, 0.5]
    assert [c.log_space for c in lifted.constants] == [True, False, False, True, True]
    assert [c.integer for c in lifted.constants] == [True, False, False, False, False]
    src = lifted.parametric_source
    assert "CONSTANTS[2] * b.entropy" in src and "CONSTANTS[1] * b.adv.mean() * CONSTANTS[0]" in src
    assert "return ent + CONSTANTS[3] * b.value.mean() + CONSTANTS[4] * b.ret.mean() + True" in src
    assert "k=0.25" in src and "1e-08" in src and "x > 0.0" in src  # a default, a guard, a zero


def test_a_local_of_the_same_name_is_not_the_constant():
    source = block(
        "ENT_COEF = 0.01\n\n\n"
        "def scaled(x, ENT_COEF=1):\n    return x * ENT_COEF\n\n\n"
        "def loss(b):\n"
        "    first = ENT_COEF * b.entropy.mean()\n"
        "    def inner():\n        ENT_COEF = 3\n        return ENT_COEF\n"
        "    squares = [ENT_COEF for ENT_COEF in range(2)]\n"
        "    return first + inner() + sum(squares) + (lambda: ENT_COEF)() + scaled(b.adv).mean()\n")
    lifted = lift(source)
    assert lifted.names() == ["ENT_COEF"]
    src = lifted.parametric_source
    assert "first = CONSTANTS[0] * b.entropy" in src and "(lambda: CONSTANTS[0])()" in src
    assert "return x * ENT_COEF" in src and "return ENT_COEF" in src and "[ENT_COEF for ENT_COEF" in src
    b = batch()
    expected = module(source)["loss"](b)
    torch.testing.assert_close(module(src, tensors(lifted))["loss"](b), expected)


def test_only_chooses_some_and_names_the_rest_when_wrong():
    source = (RULES[0].parent / "ppo_clip.py").read_text()
    lifted = lift(source, only=["VF_COEF", "ENT_COEF"])
    assert lifted.names() == ["ENT_COEF", "VF_COEF"]  # in source order
    assert "CONSTANTS[1] * v_loss" in lifted.parametric_source and "1 - CLIP" in lifted.parametric_source
    written = write_back(lifted, [0.05, 0.25])
    assert "CLIP = 0.2\nENT_COEF = 0.05\nVF_COEF = 0.25\n" in written and "v_loss = 0.5 *" in written
    with pytest.raises(LiftError, match=r"no constant 'GAMMA'.*CLIP, ENT_COEF, VF_COEF, line 22"):
        lift(source, only=["GAMMA"])
    with pytest.raises(LiftError, match="no constant chosen"):
        lift(source, only=[])


@pytest.mark.parametrize(("source", "message"), [
    ("def loss(b):\n    return 0.5 * b.adv.mean()\n", "EVOLVE-BLOCK"),
    (block("def loss(b):\n    return 0.5 *\n"), "syntax error: line 4"),
    (block("def loss(b):\n    return -(b.logp * b.adv).mean() + 1e-8\n"), "no constant to tune"),
    (block("CONSTANTS = 1\n\n\ndef loss(b):\n    return 0.5 * b.adv.mean()\n"), "uses the name CONSTANTS"),
])
def test_lift_errors(source: str, message: str):
    with pytest.raises(LiftError, match=message):
        lift(source)


# -- write back --------------------------------------------------------------------------------------


def test_write_back_keeps_ints_ints_and_negatives_parse_anywhere():
    lifted = lift(MIXED)
    written = write_back(lifted, [6.0, 0.3, -0.02, 0.5, 0.5])
    assert "N_STEPS = 6\nSCALE = 0.3\n" in written
    assert "N_STEPS = 4.5\n" in write_back(lifted, [4.5, -0.5, -0.02, 0.5, 0.5])

    source = block("def loss(b):\n    x = b.adv.abs()\n    return (0.5 ** x + x ** 0.5 - 0.5 + x.pow(0.5)).mean()\n")
    lifted = lift(source)
    assert len(lifted.constants) == 4
    written = write_back(lifted, [-0.2, -0.3, -0.4, -0.5])
    assert "((-0.2) ** x + x ** (-0.3) - (-0.4) + x.pow((-0.5)))" in written
    again = lift(written)
    assert again.names() == lifted.names() and [c.value for c in again.constants] == [-0.2, -0.3, -0.4, -0.5]
    x = torch.arange(1, 5, dtype=torch.float64)  # a negative base needs whole powers
    got = module(written)["loss"](types.SimpleNamespace(adv=x))
    torch.testing.assert_close(got, ((-0.2) ** x + x ** -0.3 + 0.4 + x.pow(-0.5)).mean())
    assert "((0.25) ** x + x ** (0.25) - (0.25)" in write_back(again, [0.25] * 4)  # a negated span takes a positive


def test_write_back_counts_columns_in_characters_and_keeps_line_endings():
    source = block('def loss(b):\n    note = "é€"; return 0.5 * b.adv.mean()  # ü 0.7\n', head="")
    lifted = lift(source)
    assert lifted.names() == ["line 3"]
    assert write_back(lifted, [0.125]) == source.replace("0.5 *", "0.125 *")
    crlf = source.replace("\n", "\r\n")
    assert write_back(lift(crlf), [0.125]) == crlf.replace("0.5 *", "0.125 *")


@pytest.mark.parametrize("values", [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5], [0.1, math.nan, 0.3, 0.4],
                                    [0.1, 0.2, math.inf, 0.4]])
def test_write_back_refuses_wrong_counts_and_non_finite_values(values: list[float]):
    with pytest.raises(ValueError):
        write_back(lift((RULES[0].parent / "ppo_clip.py").read_text()), values)


@pytest.mark.parametrize(("value", "text"), [(0.0123, "0.0123"), (2, "2.0"), (1.5e-5, "1.5e-05"), (-0.25, "-0.25"),
                                             (0.123456, "0.1235"), (12345.0, "12340.0"), (1e20, "1e+20"),
                                             (2.0000001, "2.0")])
def test_format_constant(value: float, text: str):
    assert format_constant(value) == text
    assert isinstance(ast.literal_eval(text), float)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_format_constant_refuses_non_finite(value: float):
    with pytest.raises(ValueError, match="finite"):
        format_constant(value)


# -- changed constants -------------------------------------------------------------------------------


def test_changed_constants():
    source = (RULES[0].parent / "ppo_clip.py").read_text()
    lifted = lift(source)
    tuned = write_back(lifted, [0.2, 0.0123, 0.61, 0.5])
    assert changed_constants(source, tuned) == [("ENT_COEF", 0.01, 0.0123), ("VF_COEF", 0.5, 0.61)]
    assert changed_constants(source, write_back(lifted, [0.2, 0.01, 0.5, 0.25])) == [("line 22", 0.5, 0.25)]
    assert changed_constants(source, source) == []
    assert changed_constants(source, source.replace("VF_COEF = 0.5\n", "VF_COEF = 0.5\nGAMMA = 0.9\n")) == []
    assert changed_constants(source, "not python (") == [] and changed_constants("", source) == []
    # the inline one counts only where the code around it is the same: here line 22 is another expression
    other = write_back(lifted, [0.2, 0.02, 0.5, 0.25]).replace("b.ret) ** 2\n", "b.ret).abs()\n")
    assert changed_constants(source, other) == [("ENT_COEF", 0.01, 0.02)]
