"""The static check gives readable reasons; baselines pass it."""

import pytest
from conftest import BASELINES, rule_source

from evosearch.program import Program, evolve_block, static_check


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_pass_static_check_and_have_one_evolve_block(name):
    source = rule_source(name)
    assert static_check(source) == []
    start, end = evolve_block(source)
    assert "def loss" in "\n".join(source.splitlines()[start:end])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def loss(b)\n    return b.logp.mean()\n", "syntax error"),
        ("import os\ndef loss(b):\n    return b.logp.mean()\n", "import of 'os' is not allowed"),
        ("from subprocess import run\ndef loss(b):\n    return b.logp.mean()\n", "import from 'subprocess'"),
        ("def loss(b):\n    return eval('b.logp.mean()')\n", "'eval' is not allowed"),
        ("def loss(b):\n    return b.logp.__class__\n", "'__class__' is not allowed"),
        ("def lost(b):\n    return b.logp.mean()\n", "must define a top-level function `loss(b)`"),
    ],
)
def test_static_check_rejects_with_reason(source, expected):
    issues = static_check(source)
    assert issues and expected in "; ".join(str(i) for i in issues)


def test_syntax_error_names_the_line():
    (issue,) = static_check("x = 1\ndef loss(b):\n    return (b.logp\n")
    assert issue.line in (3, 4) and "syntax error" in str(issue)


def test_size_limit():
    assert "over the" in str(static_check("# " + "x" * 70_000 + "\ndef loss(b): pass\n")[0])


def test_program_sha_is_stable():
    assert Program("a").sha == Program("a").sha != Program("b").sha


@pytest.mark.parametrize("expr", ["torch.os.system('id')", "numpy.ctypeslib.ctypes", "torch.save(b.adv, 'x.pt')"])
def test_attributes_that_reach_the_system_through_an_allowed_module_are_rejected(expr):
    source = f"import torch\nimport numpy\n\ndef loss(b):\n    {expr}\n    return -(b.logp * b.adv).mean()\n"
    issues = static_check(source)
    assert issues and "reaches files, processes" in str(issues[0])


@pytest.mark.parametrize("source, reason", [
    ("from torch import sys\n", "importing 'sys' from 'torch'"),
    ("from torch import _C\n", "importing '_C' from 'torch'"),
    ("from numpy import *\n", "importing '*' from 'numpy'"),
    ("import numpy\nnumpy.savez = print\n", "changing 'numpy.savez' alters the module 'numpy'"),
    ("import torch.nn.functional as F\nF.relu, x = abs, 2\n", "changing 'F.relu'"),
    ("import torch\ntorch.nn.functional.relu += 1\n", "changing 'torch.nn.functional.relu'"),
    ("import math\ndel math.pi\n", "changing 'math.pi'"),
])
def test_names_imported_from_a_module_and_module_attributes_are_checked(source, reason):
    issues = [str(i) for i in static_check(source + "def loss(b):\n    return b.adv.mean()\n")]
    assert any(reason in issue for issue in issues), issues


def test_module_level_only_defines_things():
    """State at module level is a constant; a class instance or a call that runs at import is rejected."""
    source = ("import torch\n\nclass State:\n    pass\n\ns = State()\ns.count = 0\n\n"
              "def loss(b):\n    return b.adv.mean()\n")
    messages = " | ".join(str(i) for i in static_check(source))
    assert "class definitions are not allowed" in messages
    assert "a module-level value may only be a constant" in messages
    assert "module level may only hold imports, constants and function definitions" in messages


def test_module_level_constants_may_be_computed():
    source = ('"""A rule."""\nimport math\nimport torch\n\nCLIP = 0.2\nLOG2 = math.log(2.0)\n'
              "SCALE: float = 1.0 / (1 + CLIP)\nEPS = torch.finfo(torch.float32).eps\nPAIR = (CLIP, -CLIP)\n\n"
              "def loss(b):\n    return -(b.logp * b.adv).mean() * SCALE + LOG2 * 0 + EPS * 0\n")
    assert static_check(source) == []


@pytest.mark.parametrize("expr", [
    "(i for i in ()).gi_frame", "[i for i in ()].gi_frame", "b.value.grad_fn.next_functions",
    "b.logp.untyped_storage()", "b.logp.data",
    "loss.__code__", "torch.ops.load_library", "torch.jit.script", "torch.compile(loss)", "torch.package",
    "b.logp.register_hook", "torch.nn.functional.torch", "torch.not_a_function_of_torch",
])
def test_introspection_and_unknown_attributes_are_rejected(expr):
    source = f"import torch\n\ndef loss(b):\n    x = {expr}\n    return -(b.logp * b.adv).mean()\n"
    assert static_check(source), expr


@pytest.mark.parametrize("line", [
    "from torch import sys", "from torch import nn", "from numpy import ctypeslib", "from torch import _C",
    "from math import *", "from torch import save",
])
def test_every_name_imported_from_a_module_is_checked(line):
    assert static_check(f"{line}\n\ndef loss(b):\n    return -(b.logp * b.adv).mean()\n"), line


def test_names_imported_from_a_module_may_be_its_math():
    source = "from torch import exp, clamp\n\ndef loss(b):\n    return -(exp(b.logp) * clamp(b.adv, -1, 1)).mean()\n"
    assert static_check(source) == []


@pytest.mark.parametrize("text", ["'__builtins__'", "'__class__'", "'{0.__class__}'"])
def test_strings_naming_dunders_are_rejected(text):
    source = f"import torch\n\ndef loss(b):\n    k = {text}\n    return -(b.logp * b.adv).mean()\n"
    assert "strings naming dunders" in " ".join(str(i) for i in static_check(source))


def test_a_policy_may_import_numpy_and_math_only():
    body = "\nENV_ID = 'CartPole-v1'\n\ndef act(obs):\n    return (obs[:, 2] > 0).astype(int)\n"
    assert static_check("import numpy as np\nimport math" + body, "policy") == []
    for line in ("import torch", "import functools", "from torch import sys"):
        assert static_check(line + body, "policy"), line


