"""GP over observation features: random genomes render to valid policies that answer any batch
with well-formed actions; genomes round-trip; operators are valid, honest and deterministic."""

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from evosearch.envs import spaces as spaces_module
from evosearch.envs.spaces import EnvSpaces
from evosearch.kinds import get
from evosearch.program import outside_block_unchanged, split_block, static_check
from evosearch.propose import gp_policy as g
from evosearch.propose.base import Parent, ProposalError
from evosearch.propose.gp import SEED_GENOMES

POLICIES = Path(__file__).resolve().parents[2] / "programs" / "policies"
ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1")


def env_parent(env_id: str) -> Parent:
    """A hand-written stand-in policy: it only gives gp.new the environment."""
    source = f'import numpy as np\n\nENV_ID = "{env_id}"\n\n\ndef act(obs):\n    return obs[:, 0] > 0\n'
    return Parent(source=source, kind="policy")


def load_act(source: str):
    namespace: dict = {}
    exec(compile(source, "<gp-policy>", "exec"), namespace)  # noqa: S102 - the test's own rendered code
    return namespace["act"]


def new_child(env_id: str, seed: int, program_id: int | None = None) -> Parent:
    child = g.GpPolicyNew().propose([env_parent(env_id)], random.Random(seed))
    return Parent(source=child.source, program_id=program_id, genome=child.genome, kind="policy")


def batches(obs_dim: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=(7, obs_dim))
    return [rng.normal(size=(7, obs_dim)), np.zeros((7, obs_dim)), np.full((7, obs_dim), 1e6),
            np.full((7, obs_dim), -1e6), 1e6 * signs, rng.normal(size=(7, obs_dim)) * 1e-8]


def check_actions(actions: object, spec: EnvSpaces) -> None:
    assert isinstance(actions, np.ndarray)
    if spec.discrete:
        assert actions.shape == (7,) and actions.dtype == np.int64
        assert ((actions >= 0) & (actions < spec.act_dim)).all()
    else:
        assert actions.shape == (7, spec.act_dim) and actions.dtype == np.float32
        assert np.isfinite(actions).all()
        assert (actions >= np.array(spec.low)).all() and (actions <= np.array(spec.high)).all()


@pytest.mark.parametrize("env_id", ENVS)
def test_random_genomes_render_valid_policies_that_answer_any_batch(env_id):
    spec = g.env_spec(env_id)
    heads = set()
    for seed in range(20):
        child = g.GpPolicyNew().propose([env_parent(env_id)], random.Random(seed))
        assert static_check(child.source, "policy") == []
        assert get("policy").env_id(child.source) == env_id
        assert f'ENV_ID = "{env_id}"  # the environment this policy plays' in child.source
        heads.add(split_block(child.source)[0])
        genome_env, trees = g.parse_genome(child.genome)
        assert genome_env == env_id and len(trees) == g.n_trees(spec)
        assert all(g.usable(t) for t in trees)
        act = load_act(child.source)
        for obs in batches(spec.obs_dim):
            check_actions(act(obs.astype(np.float32)), spec)
    assert len(heads) == 1  # every GP program of an env has the same text outside the block


def test_genome_round_trips_and_renders_back_to_the_source():
    for env_id in ENVS:
        for seed in range(10):
            child = g.GpPolicyNew().propose([env_parent(env_id)], random.Random(seed))
            env, trees = g.parse_genome(child.genome)
            assert g.genome_json(env, trees) == child.genome
            assert g.render(env, trees) == child.source
    parent = new_child("Acrobot-v1", 1)
    mutant = g.GpPolicyMutate().propose([parent], random.Random(0))
    assert g.genome_json(*g.parse_genome(mutant.genome)) == mutant.genome


def test_parse_genome_rejects_what_it_did_not_write():
    cartpole = '{"env_id": "CartPole-v1", "trees": ["%s"]}'
    bad = [
        SEED_GENOMES["a2c"],  # a rule's loss tree
        '{"env_id": "CartPole-v1"}',
        '{"env_id": "CartPole-v1", "trees": ["x0", "x1"]}',  # CartPole has one tree
        cartpole % "x4",  # CartPole has features x0 .. x3
        cartpole % "add(x0)",
        cartpole % "add(x0, x1, x2)",
        cartpole % "0.5",  # a constant is not a feature expression
        cartpole % "scale(x0, x1)",
        cartpole % "__import__",
        cartpole % "add(x0, open)",
    ]
    for genome in bad:
        with pytest.raises(ValueError):
            g.parse_genome(genome)
    env, trees = g.parse_genome(cartpole % "scale(tanh(x2), -0.5)")
    assert g.expression(trees[0]) == "-0.5 * np.tanh(obs[:, 2])"


def test_rendering_keeps_precedence():
    cases = {
        "sub(x0, add(x1, x2))": "obs[:, 0] - (obs[:, 1] + obs[:, 2])",
        "mul(add(x0, x1), neg(x2))": "(obs[:, 0] + obs[:, 1]) * (-obs[:, 2])",
        "neg(neg(x0))": "-(-obs[:, 0])",
        "shift(mul(x0, x1), -2.0)": "obs[:, 0] * obs[:, 1] - 2.0",
        "div(max(x0, x1), min(x2, abs(x3)))": "safe_div(np.maximum(obs[:, 0], obs[:, 1]), "
                                             "np.minimum(obs[:, 2], np.abs(obs[:, 3])))",
    }
    obs = np.random.default_rng(1).normal(size=(5, 4))
    for text, want in cases.items():
        assert g.expression(g.parse_tree(text, 4)) == want
    tree = g.parse_tree("mul(add(x0, x1), neg(x2))", 4)
    np.testing.assert_allclose(eval(g.expression(tree), {"np": np, "obs": obs}),  # noqa: S307
                               (obs[:, 0] + obs[:, 1]) * -obs[:, 2])


def test_new_works_from_a_hand_written_parent():
    source = (POLICIES / "cartpole.py").read_text(encoding="utf-8")
    parent = Parent(source=source, program_id=7, kind="policy")
    new, mutate = g.GpPolicyNew(), g.GpPolicyMutate()
    assert new.applies([parent]) and not mutate.applies([parent])
    child = new.propose([parent], random.Random(0))
    assert child.operator == "gp.new" and child.parent_ids == (7,)
    assert static_check(child.source, "policy") == [] and get("policy").env_id(child.source) == "CartPole-v1"
    assert child.note and "\n" not in child.note
    with pytest.raises(ProposalError):
        mutate.propose([parent], random.Random(0))
    assert not new.applies([]) and not new.applies([Parent(source="def act(obs):\n    return obs\n")])


def test_mutate_gives_valid_different_children_that_keep_the_header():
    mutate = g.GpPolicyMutate()
    for env_id in ENVS:
        parent = new_child(env_id, 3, program_id=11)
        assert mutate.applies([parent])
        kinds = set()
        for seed in range(15):
            child = mutate.propose([parent], random.Random(seed))
            assert child.source != parent.source and child.genome != parent.genome
            assert outside_block_unchanged(parent.source, child.source)
            assert static_check(child.source, "policy") == []
            assert child.parent_ids == (11,) and child.operator == "gp.mutate"
            _, before = g.parse_genome(parent.genome)
            _, after = g.parse_genome(child.genome)
            assert sum(str(a) != str(b) for a, b in zip(before, after, strict=True)) == 1
            kinds.add(child.note.split()[0])
            check_actions(load_act(child.source)(batches(g.env_spec(env_id).obs_dim)[0].astype(np.float32)),
                          g.env_spec(env_id))
        assert len(kinds) >= 2


def test_mutate_applies_only_to_policy_genomes():
    mutate = g.GpPolicyMutate()
    parent = new_child("CartPole-v1", 0)
    assert not mutate.applies([Parent(source=parent.source, kind="policy")])  # no genome
    assert not mutate.applies([Parent(source=parent.source, genome=SEED_GENOMES["pg"])])  # a rule's genome
    other = new_child("Acrobot-v1", 0)
    assert not mutate.applies([Parent(source=parent.source, genome=other.genome)])  # genome for another env
    assert not mutate.applies([])


def test_crossover_gives_valid_children_and_needs_matching_parents():
    cross = g.GpPolicyCrossover()
    for env_id in ENVS:
        first, second = new_child(env_id, 1, program_id=1), new_child(env_id, 2, program_id=2)
        assert cross.applies([first, second])
        for seed in range(10):
            child = cross.propose([first, second], random.Random(seed))
            assert child.genome not in (first.genome, second.genome)
            assert outside_block_unchanged(first.source, child.source)
            assert static_check(child.source, "policy") == []
            assert child.parent_ids == (1, 2) and child.operator == "gp.crossover"
            g.parse_genome(child.genome)
    cartpole, acrobot = new_child("CartPole-v1", 1), new_child("Acrobot-v1", 1)
    assert not cross.applies([cartpole, acrobot])
    assert not cross.applies([cartpole, Parent(source=cartpole.source)])
    assert not cross.applies([cartpole])
    with pytest.raises(ProposalError):
        cross.propose([cartpole, acrobot], random.Random(0))


def test_same_seed_same_child():
    parent, mate = new_child("LunarLander-v3", 4), new_child("LunarLander-v3", 5)
    state = random.getstate()
    for op, parents in ((g.GpPolicyNew(), [env_parent("LunarLander-v3")]), (g.GpPolicyMutate(), [parent]),
                        (g.GpPolicyCrossover(), [parent, mate])):
        for seed in (0, 1, 2):
            a, b = op.propose(parents, random.Random(seed)), op.propose(parents, random.Random(seed))
            assert (a.source, a.genome, a.note) == (b.source, b.genome, b.note)
        children = {op.propose(parents, random.Random(seed)).genome for seed in range(8)}
        assert len(children) > 1
    assert random.getstate() == state  # the caller's global random is left as it was


def test_operator_names():
    assert [op.name for op in g.gp_policy_operators()] == ["gp.new", "gp.mutate", "gp.crossover"]
    assert [op.arity for op in g.gp_policy_operators()] == [1, 1, 2]


def test_other_envs_come_from_envpool_or_fail_clearly(monkeypatch):
    monkeypatch.setattr(spaces_module, "_LOOKED_UP", {})
    box = SimpleNamespace(shape=(2,), low=np.array([-1.0, -np.inf]), high=np.array([1.0, np.inf]))
    found = {"Reacher2-v0": (SimpleNamespace(shape=(3, 2)), box),
             "Pixels-v0": (SimpleNamespace(shape=(84, 84, 3)), SimpleNamespace(n=4)),
             "Grid-v0": (SimpleNamespace(spaces={"image": SimpleNamespace(shape=(3, 3)),
                                                 "dir": SimpleNamespace(shape=())}), SimpleNamespace(n=3))}

    def fake(env_id):
        if env_id not in found:
            raise RuntimeError(f"no env {env_id}")
        return spaces_module.from_gym_spaces(env_id, *found[env_id])

    monkeypatch.setattr(spaces_module, "_read_envpool", fake)
    spec = g.env_spec("Reacher2-v0")
    assert spec == EnvSpaces("Reacher2-v0", obs_dim=6, discrete=False, act_dim=2, low=(-1.0, -np.inf),
                             high=(1.0, np.inf))
    child = g.GpPolicyNew().propose([env_parent("Reacher2-v0")], random.Random(0))
    assert static_check(child.source, "policy") == []
    act = load_act(child.source)
    for obs in batches(6):
        actions = act(obs.astype(np.float32))
        assert actions.shape == (7, 2) and actions.dtype == np.float32 and np.isfinite(actions).all()
        assert (np.abs(actions[:, 0]) <= 1.0).all()

    assert not g.GpPolicyNew().applies([env_parent("NoSuchEnv-v0")])
    with pytest.raises(ProposalError, match="NoSuchEnv-v0.*no env"):
        g.GpPolicyNew().propose([env_parent("NoSuchEnv-v0")], random.Random(0))
    with pytest.raises(ProposalError, match="21168 values; GP over single features takes at most 512"):
        g.env_spec("Pixels-v0")
    with pytest.raises(ProposalError, match=r"observation is a dict \(dir, image\)"):
        g.env_spec("Grid-v0")
    assert not g.GpPolicyNew().applies([env_parent("MiniGrid-Empty-5x5-v0")])  # in the table, but a dict
