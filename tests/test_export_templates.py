"""The export's templates are package data, and what they ship computes what the harness computes.

``evosearch/export_templates/`` holds the text an export adds around a program; these tests check
that every template loads and takes exactly the placeholders the renderer fills, and that the
``gae`` an exported rule carries is :func:`evosearch.train.rule.gae`, numerically, on random
rollouts with episode ends.
"""

from __future__ import annotations

import importlib.util
import re
import string
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT

from evosearch import export
from evosearch.envs.spaces import known_env_ids, spaces
from evosearch.train.rule import gae

TEMPLATES = ROOT / "evosearch" / export.TEMPLATE_DIR
#: Template file -> the placeholders the renderer fills in it.
PLACEHOLDERS = {
    "rule_entry.py.txt": {"provenance", "adv_doc", "adv_body"},
    "policy_entry.py.txt": {"provenance", "discrete_envs"},
    "rule_usage.txt": set(),
    "policy_usage.txt": {"program_id"},
    "adv_from_rule.py.txt": set(),
    "adv_from_gae.py.txt": set(),
}


def provenance(kind: str, program_id: int = 7) -> dict:
    """The smallest provenance the header renders (what :func:`export.provenance` returns for an archive)."""
    return {"campaign": "t", "archive": "/tmp/t.db", "program_id": program_id, "kind": kind, "operator": "seed",
            "model": None, "island": None, "generation": 0, "note": "", "status": "done", "outcome": "ok",
            "stage": "full", "error": "", "score": 0.5, "ci": [0.4, 0.6], "suite": "s", "fitness": "iqm",
            "hurdle_score": None, "tasks": [], "held_out": [], "fingerprint": None, "sha": None, "evaluated": None,
            "lineage": [], "evaluation_config": {}, "exported": "2026-01-01T00:00:00+00:00",
            "evosearch_version": "0"}


def export_to(tmp_path: Path, source_path: Path, kind: str) -> types.ModuleType:
    """Render ``source_path`` as an export, write it to ``tmp_path`` and import it as a user would."""
    path = tmp_path / f"{kind}_{source_path.stem}.py"
    path.write_text(export.render_module(source_path.read_text(), provenance(kind)), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"exported_{kind}_{source_path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_template_is_packaged_and_takes_the_placeholders_the_renderer_fills():
    assert {p.name for p in TEMPLATES.iterdir() if p.is_file()} == set(PLACEHOLDERS)
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["evosearch"]
    for name, expected in PLACEHOLDERS.items():
        assert any(Path(export.TEMPLATE_DIR, name).match(p) for p in patterns), name
        text = export.template_text(name)
        assert text == (TEMPLATES / name).read_text(encoding="utf-8")
        found = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(text)
                 if m.group("named") or m.group("braced")}
        assert found == expected, name
        assert not re.search(r"\$(?![A-Za-z_])", text), f"{name} has a stray $"


@pytest.mark.parametrize("rule", ["a2c", "reinforce"])
def test_the_exported_gae_is_the_harness_gae(tmp_path, rule):
    exported = export_to(tmp_path, ROOT / "programs" / "rules" / f"{rule}.py", "rule")
    generator = torch.Generator().manual_seed(11)
    shapes = [(1, 1), (2, 1), (7, 3), (64, 4), (33, 16)]
    for steps, envs in shapes:
        for gamma, lam in [(0.99, 0.95), (1.0, 1.0), (0.9, 0.0), (0.0, 0.7), (0.5, 0.3)]:
            for dtype in (torch.float32, torch.float64):
                rewards = torch.randn(steps, envs, generator=generator, dtype=dtype)
                values = torch.randn(steps, envs, generator=generator, dtype=dtype)
                dones = (torch.rand(steps, envs, generator=generator) < 0.2).to(dtype)
                dones[-1, 0] = 1.0  # an episode ending on the last step: last_value must not leak into it
                last_value = torch.randn(envs, generator=generator, dtype=dtype)
                want = gae(rewards, values, dones, last_value, gamma, lam)
                got = exported.gae(rewards, values, dones, last_value, gamma, lam)
                torch.testing.assert_close(got, want, msg=f"{steps}x{envs} gamma={gamma} lam={lam} {dtype}")
                if rule == "a2c":  # no estimator of its own: compute_advantages is that same GAE
                    torch.testing.assert_close(exported.compute_advantages(rewards, values, dones, last_value,
                                                                           gamma=gamma, lam=lam), want)


def test_an_exported_policy_knows_the_discrete_envs_of_the_spaces_table(tmp_path):
    exported = export_to(tmp_path, ROOT / "programs" / "policies" / "cartpole.py", "policy")
    discrete = sorted(env_id for env_id in known_env_ids() if spaces(env_id).discrete)
    assert exported.DISCRETE_ENVS == discrete and "Pendulum-v1" not in discrete
    action = exported.act_one(np.zeros(4, dtype=np.float32))
    assert isinstance(action, int)
