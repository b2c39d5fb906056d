"""GP over loss trees: random trees render to valid, runnable rules; genomes round-trip;
seeds reproduce the baselines exactly; operators are bounded, deterministic and honest."""

import pickle
import random
import subprocess
import sys

import pytest
from conftest import TINY_SUITE, rule_source
from deap import gp as deap_gp

from evosearch.evaluate import CascadeConfig, RuleEvaluator
from evosearch.program import Program, split_block, static_check
from evosearch.propose import gp
from evosearch.propose.base import Parent, ProposalError
from evosearch.propose.gp_render import RULES
from evosearch.train.probe import probe
from evosearch.train.rule import RuleError, load_rule


def fingerprint(source: str) -> str:
    return probe(load_rule(source))["fingerprint"]


def seed_parent(name: str, program_id: int = 1) -> Parent:
    genome = gp.SEED_GENOMES[name]
    return Parent(source=gp.render(gp.parse(genome)), program_id=program_id, genome=genome)


def test_random_trees_render_check_round_trip_and_run():
    new = gp.GpNew(seed_probability=0.0)
    passed, failures = 0, []
    for seed in range(200):
        child = new.propose([], random.Random(seed))
        assert static_check(child.source, "rule") == []
        tree = gp.parse(child.genome)
        assert str(tree) == child.genome
        assert gp.usable(tree) and tree.height <= gp.INIT_HEIGHT[1]
        try:
            probe(load_rule(child.source))
            passed += 1
        except RuleError as err:  # a legitimate smoke failure: e.g. the policy term is clamped flat
            failures.append(str(err))
    assert all("not finite" not in f for f in failures), failures
    assert passed >= 170, failures


def test_every_primitive_renders_to_code_that_runs():
    args = {gp.Vec: "logp", gp.Scalar: "progress", float: "0.5"}
    for ret, prims in gp.PSET.primitives.items():
        for prim in prims:
            assert prim.name in RULES
            call = f"{prim.name}({', '.join(args[a] for a in prim.args)})"
            term = f"mean({call})" if ret is gp.Vec else call
            genome = f"sadd(sadd({term}, mean(entropy)), mean(value))"
            assert str(gp.parse(genome)) == genome
            source = gp.render(gp.parse(genome))
            assert static_check(source) == [], (prim.name, source)
            # finite loss, gradients reach both networks, and torch.func.vmap takes the batched path
            assert probe(load_rule(source))["vmap"], prim.name


def test_genomes_round_trip_with_constants_as_ephemerals():
    genome = "sadd(mean(scale(clamp(logp, -0.0123), 1.23e-05)), sscale(mean(td), -2.5))"
    tree = gp.parse(genome)
    assert str(tree) == genome
    consts = [node for node in tree if isinstance(node, deap_gp.Terminal) and isinstance(node.value, float)]
    assert [c.value for c in consts] == [-0.0123, 1.23e-05, -2.5]
    # from_string alone would give plain terminals, which mutEphemeral cannot see
    assert all(isinstance(type(c), deap_gp.MetaEphemeral) for c in consts)
    random.seed(0)
    mutant = deap_gp.mutEphemeral(gp.Tree(list(tree)), mode="all")[0]
    assert str(mutant) != genome and str(gp.parse(str(mutant))) == str(mutant)
    assert str(pickle.loads(pickle.dumps(tree))) == genome


@pytest.mark.parametrize("genome", [
    "sadd(mean(logp))",  # an argument missing
    "logp",  # not a scalar loss
    "mean(progress)",  # a scalar where a tensor goes
    "sadd(mean(logp), mean(nope))",  # unknown terminal
    "mean(__import__)",  # never eval'd
    "",
])
def test_bad_genomes_are_rejected(genome):
    with pytest.raises(ValueError):
        gp.parse(genome)


def test_seed_genomes_have_the_baselines_fingerprints():
    for name in ("a2c", "ppo_clip"):
        assert fingerprint(gp.render(gp.parse(gp.SEED_GENOMES[name]))) == fingerprint(rule_source(name)), name
    assert fingerprint(gp.render(gp.parse(gp.SEED_GENOMES["pg"]))) != fingerprint(rule_source("a2c"))


def test_rendering_binds_only_the_features_it_uses():
    a2c = gp.render(gp.parse(gp.SEED_GENOMES["a2c"]))
    assert a2c.startswith('"""A loss found by evosearch') and "import torch\n" in a2c
    head, block, tail = split_block(a2c)
    assert "def loss(b):" in block and "return policy_loss - entropy_term + value_loss" in block
    assert not any(f"{f} =" in a2c for f in ("ratio", "log_ratio", "adv_norm", "td"))
    both = gp.render(gp.parse("sadd(mean(mul(ratio, log_ratio)), mean(td))"))
    assert "log_ratio = b.logp - b.old_logp\n    ratio = torch.exp(log_ratio)\n    td = b.ret - b.value" in both
    assert "adv_norm" not in both
    gated = gp.render(gp.parse("mean(if_pos(exp(clamp(logp, 0.2)), add_s(value, sconst(-1.0))))"))
    assert "torch.where(b.adv >= 0, torch.exp(torch.clamp(b.logp, -0.2, 0.2)), b.value - 1.0)" in gated


def test_mutation_and_crossover_stay_bounded_and_parseable():
    mutate, cross = gp.GpMutate(), gp.GpCrossover()
    rng = random.Random(7)
    parents = [seed_parent(name, i) for i, name in enumerate(sorted(gp.SEED_GENOMES), 1)]
    for step in range(150):
        if step % 3 == 2:
            pair = rng.sample(parents, 2)
            child = cross.propose(pair, rng)
            assert child.parent_ids == (pair[0].program_id, pair[1].program_id)
        else:
            parent = rng.choice(parents)
            child = mutate.propose([parent], rng)
            assert child.parent_ids == (parent.program_id,) and child.genome != parent.genome
        tree = gp.parse(child.genome)
        assert str(tree) == child.genome
        assert tree.height <= gp.MAX_HEIGHT and len(tree) <= gp.MAX_NODES and gp.usable(tree)
        assert static_check(child.source) == [] and child.note
        parents.append(Parent(source=child.source, program_id=100 + step, genome=child.genome))


def test_operators_are_deterministic_and_leave_global_random_alone():
    a2c, ppo = seed_parent("a2c", 1), seed_parent("ppo_clip", 2)
    for op, parents in ((gp.GpNew(), []), (gp.GpMutate(), [ppo]), (gp.GpCrossover(), [a2c, ppo])):
        for seed in range(5):
            random.seed(123)
            before = random.getstate()
            first, second = op.propose(parents, random.Random(seed)), op.propose(parents, random.Random(seed))
            assert random.getstate() == before
            assert (first.source, first.genome) == (second.source, second.genome)
        children = {op.propose(parents, random.Random(seed)).genome for seed in range(10)}
        assert len(children) > 1, op.name


def test_operators_apply_only_to_gp_parents():
    new, mutate, cross = gp.gp_operators()
    assert [(o.name, o.arity) for o in (new, mutate, cross)] == [("gp.new", 0), ("gp.mutate", 1), ("gp.crossover", 2)]
    plain = Parent(source=rule_source("a2c"), program_id=3)
    a2c = seed_parent("a2c")
    assert new.applies([]) and new.applies([plain])
    assert not mutate.applies([plain]) and not mutate.applies([])
    assert mutate.applies([a2c]) and not mutate.applies([Parent(source="", genome=a2c.genome, kind="policy")])
    assert cross.applies([a2c, a2c]) and not cross.applies([a2c, plain]) and not cross.applies([a2c])
    with pytest.raises(ProposalError, match="needs a parent with a GP genome"):
        mutate.propose([plain], random.Random(0))
    with pytest.raises(ProposalError, match="not a GP loss tree"):
        mutate.propose([Parent(source="", program_id=4, genome="sadd(mean(logp))")], random.Random(0))


def test_reimport_neither_warns_nor_fails():
    code = ("import importlib, random, evosearch.propose.gp as g\n"
            "importlib.reload(g)\n"
            "g.GpNew().propose([], random.Random(0))")
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)


def test_a_gp_program_trains_end_to_end(no_leftovers):
    genome = gp.SEED_GENOMES["a2c"].replace("0.01", "0.02")  # the A2C seed with a stronger entropy bonus
    source = gp.render(gp.parse(genome))
    config = CascadeConfig(suite=TINY_SUITE, smoke_timeout_s=30, task_timeout_s=120, workers=1, bootstrap_reps=200)
    result = RuleEvaluator(config).evaluate(Program(source, name="gp.py"))
    assert result.outcome == "ok" and result.stage == "full", result.error
    assert result.score is not None and result.fingerprint


def test_gp_new_starts_only_from_the_seed_genomes_it_is_given():
    # A campaign's prior knowledge is its config's: the quickstart must never see PPO-clip.
    op = gp.GpNew(seed_probability=1.0)
    notes = {op.propose([], random.Random(i)).note.split(" mutated")[0] for i in range(40)}
    assert notes == {"seed a2c", "seed pg"}
    only_ppo = gp.GpNew(seed_probability=1.0, seed_genomes=("ppo_clip",))
    assert only_ppo.propose([], random.Random(0)).note.startswith("seed ppo_clip")
    with pytest.raises(ValueError, match="unknown GP seed genomes"):
        gp.GpNew(seed_genomes=("sac",))
