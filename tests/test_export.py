"""`evosearch export`: a standalone module that trains outside evosearch and is the program that was scored.

The export is only useful if (a) it imports nothing but torch, (b) a training loop that
knows nothing of evosearch can use it in place of its own loss and learn, and (c) it is the
same rule the archive scored, which the behavioural fingerprint checks.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.distributions import Categorical

import evosearch
from evosearch.archive.store import Archive
from evosearch.cli.export import export_command
from evosearch.export import ExportError, export_best, export_program
from evosearch.train.probe import probe
from evosearch.train.rule import Batch, compute_advantages, load_rule


def load_module(path: Path, name: str = "exported_rule") -> types.ModuleType:
    """Import an exported file the way a user would (not through evosearch)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_db(db: Path, dest: Path) -> Path:
    """A private copy of the session's campaign, for tests that change rows (the original is shared)."""
    with sqlite3.connect(db) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    return dest


def seed_program(archive: Archive, name: str) -> int:
    [row] = [r for r in archive.list_programs(operator="seed") if r["note"] == f"seed {name}.py"]
    return int(row["id"])


# -- (1) standalone, with provenance -----------------------------------------------------------------------


def test_export_imports_only_torch_and_names_its_provenance(finished, tmp_path):
    db, summary = finished
    archive = Archive(db)
    text = export_program(archive, summary.best_program)
    row = archive.program(summary.best_program)
    path = tmp_path / "best_rule.py"
    path.write_text(text)

    header = ast.get_docstring(ast.parse(text))
    assert "campaign 't'" in header.splitlines()[0] and f"program {row['id']} " in header
    assert f"score {row['score']:.3f}, 95% CI [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" in header
    assert "CartPole-v1" in header and "suite:        tiny, fitness iqm" in header
    assert "Lineage" in header and "Evaluation config" in header and "compute_loss(" in header
    assert f"by evosearch {evosearch.__version__}" in header

    # A fresh interpreter where importing evosearch is impossible: the export must not need it,
    # and nothing but torch (already imported) may be pulled in.
    script = f"""
import importlib.util, json, sys
sys.modules["evosearch"] = None  # any `import evosearch...` now raises ImportError
import torch
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("best_rule", {str(path)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
x = torch.randn(8, requires_grad=True)
out = module.compute_loss(logp=x, old_logp=x.detach(), advantages=torch.randn(8), returns=torch.randn(8),
                          values=x * 2, old_values=torch.randn(8), entropy=x.abs(), progress=0.5)
out.backward()
adv = module.compute_advantages(torch.ones(5, 2), torch.zeros(5, 2), torch.zeros(5, 2), torch.zeros(2))
print(json.dumps({{"new": sorted(set(sys.modules) - before), "loss_dim": out.dim(), "adv": list(adv.shape),
                  "provenance": module.PROVENANCE["program_id"], "campaign": module.PROVENANCE["campaign"]}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["new"] == [] or report["new"] == ["best_rule"], report["new"]
    assert report["loss_dim"] == 0 and report["adv"] == [5, 2]
    assert report["provenance"] == row["id"] and report["campaign"] == "t"
    archive.close()


def test_header_survives_hostile_notes_and_shows_the_lineage(finished, tmp_path):
    db = copy_db(finished[0], tmp_path / "copy.db")
    archive = Archive(db)
    a2c = seed_program(archive, "a2c")
    child = max(int(r["id"]) for r in archive.list_programs())
    hostile = 'ends a docstring """ then \\ a backslash \x00 and a bell \x07 and </script> "'
    archive.conn.execute("UPDATE programs SET parent_id = ?, parent_ids = ?, note = ? WHERE id = ?",
                         (a2c, json.dumps([a2c]), hostile, child))
    text = export_program(archive, child, allow_failed=True)
    module = compile(text, "export", "exec")  # it compiles ...
    namespace: dict = {}
    exec(module, namespace)  # ... and runs
    header = namespace["__doc__"]
    assert " ".join(hostile.split()) in header  # the note, unchanged, as text
    assert namespace["PROVENANCE"]["note"] == hostile
    lines = header[header.index("Lineage"):].splitlines()
    ids = [int(line.split()[0]) for line in lines[2:4]]
    assert ids == [a2c, child]
    archive.close()


def test_refuses_failed_programs_and_name_clashes(finished, tmp_path):
    db = copy_db(finished[0], tmp_path / "copy.db")
    archive = Archive(db)
    a2c = seed_program(archive, "a2c")
    with pytest.raises(ExportError, match="no program 99999"):
        export_program(archive, 99999)
    archive.conn.execute("UPDATE programs SET outcome = 'candidate_error', score = NULL, ci_low = NULL, "
                         "ci_high = NULL, error = 'loss is nan' WHERE id = ?", (a2c,))
    with pytest.raises(ValueError, match=f"program {a2c} is candidate_error, not ok: loss is nan"):
        export_program(archive, a2c)
    text = export_program(archive, a2c, allow_failed=True)
    assert "outcome:      candidate_error" in text and "error:        loss is nan" in text
    source = archive.program(a2c)["source"].replace("VF_COEF = 0.5", "VF_COEF = 0.5\ngae = None")
    archive.conn.execute("UPDATE programs SET source = ? WHERE id = ?", (source, a2c))
    with pytest.raises(ExportError, match="binds gae"):
        export_program(archive, a2c, allow_failed=True)
    archive.close()


# -- (2) an independent CleanRL-style PPO loop trains CartPole with the export ---------------------------


def _layer(n_in: int, n_out: int, std: float = float(np.sqrt(2))) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, 0.0)
    return layer


def train_cartpole(rule: types.ModuleType, seed: int, total_steps: int = 30_000, num_envs: int = 4,
                   num_steps: int = 128, epochs: int = 4, minibatches: int = 4) -> list[float]:
    """CleanRL's ppo.py, cut down, with the rule's ``compute_advantages`` / ``compute_loss`` in place of its own.

    It keeps CleanRL's conventions on purpose (``dones[t]`` flags ``obs[t]`` as the start of a
    new episode; truncation treated as termination) so that it exercises the conversion the
    export's docstring tells CleanRL users to make. Returns the episodic returns in order.
    """
    torch.manual_seed(seed)
    envs = [gym.make("CartPole-v1") for _ in range(num_envs)]
    next_obs = torch.tensor(np.stack([env.reset(seed=seed * 1000 + i)[0] for i, env in enumerate(envs)]))
    actor = nn.Sequential(_layer(4, 64), nn.Tanh(), _layer(64, 64), nn.Tanh(), _layer(64, 2, 0.01))
    critic = nn.Sequential(_layer(4, 64), nn.Tanh(), _layer(64, 64), nn.Tanh(), _layer(64, 1, 1.0))
    params = list(actor.parameters()) + list(critic.parameters())
    optimizer = torch.optim.Adam(params, lr=2.5e-4, eps=1e-5)
    obs_buf = torch.zeros(num_steps, num_envs, 4)
    act_buf = torch.zeros(num_steps, num_envs, dtype=torch.long)
    logp_buf, rew_buf, done_buf, val_buf = (torch.zeros(num_steps, num_envs) for _ in range(4))
    next_done, episode_return, finished = torch.zeros(num_envs), np.zeros(num_envs), []
    iterations, batch = total_steps // (num_envs * num_steps), num_envs * num_steps
    for iteration in range(1, iterations + 1):
        optimizer.param_groups[0]["lr"] = 2.5e-4 * (1.0 - (iteration - 1) / iterations)
        for step in range(num_steps):
            obs_buf[step], done_buf[step] = next_obs, next_done
            with torch.no_grad():
                dist = Categorical(logits=actor(next_obs))
                action = dist.sample()
                logp_buf[step], val_buf[step], act_buf[step] = dist.log_prob(action), critic(next_obs).view(-1), action
            observations, dones = [], []
            for i, env in enumerate(envs):
                obs, reward, terminated, truncated, _ = env.step(int(action[i]))
                rew_buf[step, i] = reward
                episode_return[i] += reward
                if terminated or truncated:
                    finished.append(float(episode_return[i]))
                    episode_return[i] = 0.0
                    obs, _ = env.reset()
                observations.append(obs)
                dones.append(float(terminated or truncated))
            next_obs, next_done = torch.tensor(np.stack(observations)), torch.tensor(dones)

        with torch.no_grad():  # exactly the lines the export's docstring shows
            next_value = critic(next_obs).reshape(-1)
            ended = torch.cat([done_buf[1:], next_done.reshape(1, -1)])
            advantages = rule.compute_advantages(rew_buf, val_buf, ended, next_value, gamma=0.99, lam=0.95)
            returns = advantages + val_buf

        b_obs, b_act, b_logp, b_adv, b_ret, b_val = (
            x.reshape((batch,) + x.shape[2:]) for x in (obs_buf, act_buf, logp_buf, advantages, returns, val_buf))
        for _ in range(epochs):
            order = torch.randperm(batch)
            for mb in order.split(batch // minibatches):
                dist = Categorical(logits=actor(b_obs[mb]))
                loss = rule.compute_loss(logp=dist.log_prob(b_act[mb]), old_logp=b_logp[mb], advantages=b_adv[mb],
                                         returns=b_ret[mb], values=critic(b_obs[mb]), old_values=b_val[mb],
                                         entropy=dist.entropy(), progress=(iteration - 1) / iterations)
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, 0.5)
                optimizer.step()
    for env in envs:
        env.close()
    return finished


def random_returns(episodes: int = 30, seed: int = 0) -> list[float]:
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += reward
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def test_exported_a2c_trains_cartpole_in_an_independent_ppo_loop(finished, tmp_path):
    """30k steps of CartPole-v1 with the exported A2C seed: ~7 s on one thread.

    Measured over seeds 0-15 (2026-11-22, torch 2.13 CPU): mean of the last 20 episodes
    127-189 (seed 0: 127); the first 20 episodes 18-26, random play ~22. The bound of 80 sits
    well under every seed and well over random play.
    """
    db, _ = finished
    archive = Archive(db)
    path = tmp_path / "a2c_rule.py"
    path.write_text(export_program(archive, seed_program(archive, "a2c")))
    archive.close()
    rule = load_module(path, "a2c_rule")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        episodes = train_cartpole(rule, seed=0)
    finally:
        torch.set_num_threads(threads)
    random_play = float(np.mean(random_returns()))
    last = float(np.mean(episodes[-20:]))
    assert 15 < random_play < 35
    assert last > 80 and last > 3 * random_play, (last, random_play, episodes[-20:])


# -- (3) the export is the program that was scored ----------------------------------------------------


def test_export_reprobes_to_the_archived_fingerprint(finished, tmp_path):
    db, _ = finished
    archive = Archive(db)
    rows = archive.list_programs(outcome="ok")
    assert {r["note"] for r in rows} >= {"seed a2c.py", "seed reinforce.py"}
    for row in rows:
        text = export_program(archive, int(row["id"]))
        assert probe(load_rule(text, f"rule_{row['id']}.py"))["fingerprint"] == row["fingerprint"], row["id"]
    archive.close()


@pytest.mark.parametrize("name", ["a2c", "reinforce"])
def test_entry_points_equal_the_harness_calls(finished, tmp_path, name):
    """compute_loss = the rule's loss on the harness's Batch; compute_advantages = the harness's estimator."""
    db, _ = finished
    archive = Archive(db)
    path = tmp_path / f"{name}.py"
    path.write_text(export_program(archive, seed_program(archive, name)))
    archive.close()
    exported, rule = load_module(path, f"{name}_export"), load_rule(path.read_text())
    g = torch.Generator().manual_seed(3)
    fields = {k: torch.randn(64, generator=g) for k in ("logp", "old_logp", "adv", "ret", "value", "old_value",
                                                      "entropy")}
    fields["progress"] = torch.tensor(0.3)
    expected = rule.loss(Batch(fields))
    got = exported.compute_loss(logp=fields["logp"], old_logp=fields["old_logp"], advantages=fields["adv"],
                                returns=fields["ret"], values=fields["value"].view(-1, 1),
                                old_values=fields["old_value"], entropy=fields["entropy"], progress=0.3)
    torch.testing.assert_close(got, expected)

    rewards, values = torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g)
    dones, last_value = (torch.rand(32, 4, generator=g) < 0.2).float(), torch.randn(4, generator=g)
    want = compute_advantages(rule, rewards, values, dones, last_value, 0.99, 0.95)
    torch.testing.assert_close(exported.compute_advantages(rewards, values, dones, last_value), want)
    torch.testing.assert_close(exported.compute_advantages(rewards, values, dones.bool(), last_value.view(1, -1)),
                               want)  # CleanRL-shaped next_value and boolean dones are accepted
    assert ("advantages" in exported.__all__) == (name == "reinforce")


# -- (4) --best and the command line -------------------------------------------------------------------


def test_export_best_writes_the_top_n_and_an_index(finished, tmp_path):
    db, _ = finished
    archive = Archive(db)
    top = archive.list_programs(outcome="ok", order="score", limit=3)
    written = export_best(archive, 3, tmp_path / "best", campaign="t")
    assert [p.name for p in written] == [f"rule_{r['id']}.py" for r in top] + ["index.md"]
    index = written[-1].read_text()
    table = [line for line in index.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == len(top)
    for rank, (line, row) in enumerate(zip(table, top, strict=True), 1):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:3] == [str(rank), f"[rule_{row['id']}.py](rule_{row['id']}.py)", str(row["id"])]
        assert cells[4] == f"{row['score']:.3f}" and cells[6] == row["operator"]
    with pytest.raises(ExportError, match="no campaign 'nope'"):
        export_best(archive, 3, tmp_path / "x", campaign="nope")
    archive.close()


def run_cli(*args: str):
    return CliRunner().invoke(export_command, list(args))


def test_cli_exports_one_and_best_n(finished, tmp_path):
    db, summary = finished
    out = tmp_path / "rule.py"
    result = run_cli(str(summary.best_program), str(db), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: program {summary.best_program}" in result.output
    assert "def compute_loss(" in out.read_text()
    result = run_cli("--best", "2", str(db), "-o", str(tmp_path / "top"), "--campaign", "t")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "top").iterdir())
    assert len(files) == 3 and "index.md" in files and result.output.count("wrote ") == 3
    result = run_cli(str(summary.best_program), str(db), "-o", str(tmp_path / "top"))  # a directory: file inside
    assert result.exit_code == 0 and (tmp_path / "top" / f"rule_{summary.best_program}.py").is_file()


def test_cli_errors_exit_2(finished, tmp_path):
    db = copy_db(finished[0], tmp_path / "copy.db")
    archive = Archive(db)
    a2c = seed_program(archive, "a2c")
    archive.conn.execute("UPDATE programs SET outcome = 'timeout', score = NULL WHERE id = ?", (a2c,))
    archive.close()
    out = str(tmp_path / "x.py")
    cases = {
        ("99999", str(db), "-o", out): "no program 99999",
        (str(a2c), str(db), "-o", out): f"program {a2c} is timeout, not ok",
        ("abc", str(db), "-o", out): "ID must be a program id",
        (str(a2c), "--best", "2", str(db), "-o", out): "either a program ID or --best N",
        (str(db), "-o", out): "ID must be a program id",
        ("-o", out): "name a program ID",
        ("1", str(tmp_path / "none.db"), "-o", out): "no archive database",
        ("--best", "2", str(db), "-o", str(tmp_path), "--campaign", "nope"): "no campaign 'nope'",
        ("1", str(db), "-o", str(tmp_path / "no" / "dir.py")): "no directory",
    }
    for args, message in cases.items():
        result = run_cli(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not Path(out).exists()
    result = run_cli(str(a2c), str(db), "-o", out, "--allow-failed")
    assert result.exit_code == 0 and "outcome timeout" in result.output
    assert "outcome:      timeout" in Path(out).read_text()
