"""Typed genetic programming over loss expressions, with DEAP.

A rule's loss is a strongly typed expression tree over three types: per-sample tensors
(:class:`Vec`, the batch fields and derived features such as ``ratio``), 0-d tensors
(:class:`Scalar`, means and ``b.progress``) and float constants. The root is a Scalar: the
loss. Types keep every tree well formed (a mean of a mean, a clamp by a tensor cannot occur)
and the primitives are protected (division by ``|y| + eps``, a clamped ``exp``), so a random
tree fails the smoke test for what it computes, not for a NaN.

The genome is the tree's string form (``str(tree)``), stored with the program; the program
itself is the tree rendered to readable source by :mod:`evosearch.propose.gp_render`. GP
children are whole new programs with their own EVOLVE-BLOCK, never edits of a parent's.

DEAP draws from the global ``random`` module. Every operator seeds it from the rng it is
given, inside a save/restore of the global state under a lock, so the same rng state gives
the same child and the caller's own use of ``random`` is left as it was.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from deap import base, creator, gp

from evosearch.kinds.rule import KIND as RULE
from evosearch.propose.base import Operator, Parent, Proposal, ProposalError, checked_child
from evosearch.propose.gp_render import (
    BATCH_FIELDS,
    DERIVED,
    POLICY_TERMINALS,
    VALUE_TERMINALS,
    nest,
    render_nested,
)

MAX_HEIGHT = 10  # deep enough for the PPO-clip seed (height 10), shallow enough to stay readable
MAX_NODES = 64
INIT_HEIGHT = (1, 4)  # genHalfAndHalf bounds for fresh trees
SUBTREE_HEIGHT = (0, 2)  # bounds for the subtree mutUniform grows
ATTEMPTS = 50  # mutations or crossovers per proposal before giving up with a ProposalError
TREE_ATTEMPTS = 2000  # ~2% of half-and-half trees reach both networks; each draw takes ~15 us


class Vec:
    """Type tag: a 1-d tensor over the minibatch."""


class Scalar:
    """Type tag: a 0-d tensor (the loss, a mean, ``b.progress``)."""


_ROUND_CONSTANTS = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def random_constant() -> float:
    """An ephemeral constant, rounded to 3 significant digits so the source stays readable.

    Half are round values of the kind found in published losses (0.01, 0.2, 0.5), half a
    signed log-uniform draw over [0.01, 3.16]. Module level, not a lambda: DEAP pickles an
    ephemeral by its generating function.
    """
    if random.random() < 0.5:
        return random.choice(_ROUND_CONSTANTS)
    magnitude = 10 ** random.uniform(-2.0, 0.5)
    return float(f"{random.choice((-1, 1)) * magnitude:.3g}")


def _build_pset() -> gp.PrimitiveSetTyped:
    pset = gp.PrimitiveSetTyped("loss", [], Scalar)
    vec_ops: list[tuple[str, list[type]]] = [
        ("add", [Vec, Vec]), ("sub", [Vec, Vec]), ("mul", [Vec, Vec]), ("div", [Vec, Vec]),
        ("neg", [Vec]), ("abs", [Vec]), ("square", [Vec]), ("tanh", [Vec]), ("relu", [Vec]),
        ("sigmoid", [Vec]), ("exp", [Vec]), ("log", [Vec]), ("minimum", [Vec, Vec]), ("maximum", [Vec, Vec]),
        ("clamp", [Vec, float]), ("clamp1", [Vec, float]), ("scale", [Vec, float]),
        ("add_s", [Vec, Scalar]), ("mul_s", [Vec, Scalar]), ("if_pos", [Vec, Vec]),
    ]
    scalar_ops: list[tuple[str, list[type]]] = [
        ("mean", [Vec]), ("sadd", [Scalar, Scalar]), ("ssub", [Scalar, Scalar]), ("smul", [Scalar, Scalar]),
        ("sneg", [Scalar]), ("sscale", [Scalar, float]), ("sconst", [float]),
    ]
    # Trees are rendered, never compiled by DEAP, so the primitives' callables are placeholders.
    for ret, ops in ((Vec, vec_ops), (Scalar, scalar_ops)):
        for name, args in ops:
            pset.addPrimitive(_placeholder, args, ret, name=name)
    for name in (*BATCH_FIELDS, *DERIVED):
        pset.addTerminal(name, Vec, name=name)
    pset.addTerminal("progress", Scalar, name="progress")
    pset.addEphemeralConstant("const", random_constant, float)
    return pset


def _placeholder(*args: object) -> object:
    raise NotImplementedError("GP loss trees are rendered to source, not compiled by DEAP")


PSET = _build_pset()
_CONST = PSET.mapping["const"]  # the ephemeral class; parse() turns constants back into it

# DEAP's creator registers classes globally and warns when one is created twice, so guard it.
if not hasattr(creator, "EvoLossFitness"):
    creator.create("EvoLossFitness", base.Fitness, weights=(1.0,))
if not hasattr(creator, "EvoLossTree"):
    creator.create("EvoLossTree", gp.PrimitiveTree, fitness=creator.EvoLossFitness)
Tree = creator.EvoLossTree  # a PrimitiveTree with a fitness slot, as DEAP's algorithms expect

#: Known-good starting points, as genomes. ``a2c`` and ``ppo_clip`` compute exactly what
#: ``programs/rules/a2c.py`` and ``ppo_clip.py`` compute (same fingerprint); ``pg`` is plain
#: policy gradient on GAE with a value loss (a2c without the entropy bonus).
SEED_GENOMES: dict[str, str] = {
    "a2c": "sadd(ssub(sneg(mean(mul(logp, adv))), sscale(mean(entropy), 0.01)), "
           "sscale(sscale(mean(square(sub(value, ret))), 0.5), 0.5))",
    "pg": "sadd(sneg(mean(mul(logp, adv))), sscale(sscale(mean(square(sub(value, ret))), 0.5), 0.5))",
    "ppo_clip": "sadd(ssub(mean(maximum(mul(neg(adv_norm), ratio), mul(neg(adv_norm), clamp1(ratio, 0.2)))), "
                "sscale(mean(entropy), 0.01)), sscale(sscale(mean(maximum(square(sub(value, ret)), "
                "square(sub(add(old_value, clamp(sub(value, old_value), 0.2)), ret)))), 0.5), 0.5))",
}

_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)(e[-+]?\d+)?")
_TOKENS = re.compile(r"[ \t\n\r\f\v(),]")


# ------------------------------------------------------------------------------ trees


def parse(genome: str) -> gp.PrimitiveTree:
    """The tree of a genome string; ``str(parse(g)) == g`` for every genome this module writes.

    Two fixes over plain ``PrimitiveTree.from_string``: tokens are checked against the
    primitive set and a float pattern first (from_string would ``eval`` any other token),
    and constants come back as instances of the ephemeral class rather than as plain
    terminals, so ``mutEphemeral`` and ``mutNodeReplacement`` still see them as constants.
    Raises ``ValueError`` for anything that is not a complete, well-typed loss tree.
    """
    for token in filter(None, _TOKENS.split(genome)):
        if token not in PSET.mapping and not _FLOAT.fullmatch(token):
            raise ValueError(f"genome has an unknown token {token!r}")
    try:
        tree = Tree.from_string(genome, PSET)
    except (TypeError, IndexError, SyntaxError) as err:
        raise ValueError(f"genome does not parse: {err}") from err
    for i, node in enumerate(tree):
        if isinstance(node, gp.Terminal) and isinstance(node.value, float) and not isinstance(node, _CONST):
            const = _CONST.__new__(_CONST)
            const.value = node.value
            tree[i] = const
    if not tree or tree[0].ret is not Scalar:
        raise ValueError("genome's root is not a scalar loss")
    if sum(node.arity - 1 for node in tree) != -1:
        raise ValueError("genome is not one complete tree (missing or extra arguments)")
    return tree


def render(tree: gp.PrimitiveTree) -> str:
    """The whole program file for a loss tree: docstring, ``import torch``, EVOLVE-BLOCK, ``loss(b)``."""
    return render_nested(nest(tree))


def terminals(tree: gp.PrimitiveTree) -> set[str]:
    """Names of the batch fields and derived features a tree reads (constants left out)."""
    return {node.name for node in tree if isinstance(node, gp.Terminal) and not isinstance(node, _CONST)}


def usable(tree: gp.PrimitiveTree) -> bool:
    """Whether the tree can reach both networks and is within the size limits.

    The smoke test needs gradients into the policy (through ``logp``, ``ratio``,
    ``log_ratio`` or ``entropy``) and into the value network (``value`` or ``td``); a tree
    without such terminals cannot pass it, so it is never proposed. A tree that has them may
    still cancel them out (``logp - logp``); the smoke test catches that.
    """
    used = terminals(tree)
    return (bool(used & POLICY_TERMINALS) and bool(used & VALUE_TERMINALS)
            and tree.height <= MAX_HEIGHT and len(tree) <= MAX_NODES)


def generate_typed(pset: gp.PrimitiveSetTyped, min_: int, max_: int,
              condition: Callable[[int, int], bool], type_: type | None = None) -> list:
    """DEAP's ``gp.generate``, falling back to a terminal where a type has no primitive.

    Floats have terminals (the ephemeral) but no primitives, so DEAP's full method raises
    IndexError whenever a float argument sits above the target depth; here it takes a constant.
    """
    expr: list = []
    height = random.randint(min_, max_)
    stack = [(0, type_ if type_ is not None else pset.ret)]
    while stack:
        depth, want = stack.pop()
        if condition(height, depth) or not pset.primitives[want]:
            term = random.choice(pset.terminals[want])
            expr.append(term() if isinstance(term, gp.MetaEphemeral) else term)
        else:
            prim = random.choice(pset.primitives[want])
            expr.append(prim)
            stack.extend((depth + 1, arg) for arg in reversed(prim.args))
    return expr


def _gen_full(pset: gp.PrimitiveSetTyped, min_: int, max_: int, type_: type | None = None) -> list:
    return generate_typed(pset, min_, max_, lambda height, depth: depth == height, type_)


def _gen_grow(pset: gp.PrimitiveSetTyped, min_: int, max_: int, type_: type | None = None) -> list:
    def condition(height: int, depth: int) -> bool:
        return depth == height or (depth >= min_ and random.random() < pset.terminalRatio)

    return generate_typed(pset, min_, max_, condition, type_)


def gen_half_and_half(min_: int, max_: int, type_: type | None = None) -> list:
    """Half full trees, half grown ones (Koza's ramped half-and-half), for the typed set."""
    return random.choice((_gen_full, _gen_grow))(PSET, min_, max_, type_)


def random_tree() -> gp.PrimitiveTree:
    """A fresh usable tree, by rejection: the conditional distribution of half-and-half trees."""
    for _ in range(TREE_ATTEMPTS):
        tree = Tree(gen_half_and_half(*INIT_HEIGHT))
        if usable(tree):
            return tree
    raise ProposalError(f"no random tree reached both networks in {TREE_ATTEMPTS} draws")


def _subtree(pset: gp.PrimitiveSetTyped, type_: type) -> list:
    return gen_half_and_half(*SUBTREE_HEIGHT, type_=type_)


#: The mutations gp.mutate chooses from, uniformly; each changes ``tree`` in place.
MUTATIONS: dict[str, Callable[[gp.PrimitiveTree], object]] = {
    "mutUniform": lambda tree: gp.mutUniform(tree, expr=_subtree, pset=PSET),
    "mutNodeReplacement": lambda tree: gp.mutNodeReplacement(tree, pset=PSET),
    "mutEphemeral": lambda tree: gp.mutEphemeral(tree, mode="one"),
    "mutShrink": lambda tree: gp.mutShrink(tree),
}


def mutate(tree: gp.PrimitiveTree) -> tuple[gp.PrimitiveTree, str]:
    """A usable, different mutant of ``tree`` and the name of the mutation that made it."""
    before = str(tree)
    for _ in range(ATTEMPTS):
        kind = random.choice(list(MUTATIONS))
        child = Tree(list(tree))  # nodes are immutable; mutations replace them, never edit them
        MUTATIONS[kind](child)
        if str(child) != before and usable(child):
            return child, kind
    raise ProposalError(f"no usable mutant of this tree within height {MAX_HEIGHT} in {ATTEMPTS} draws")


def crossover(first: gp.PrimitiveTree, second: gp.PrimitiveTree) -> gp.PrimitiveTree:
    """A usable child of one-point crossover that differs from both parents."""
    parents = {str(first), str(second)}
    for _ in range(ATTEMPTS):
        children = gp.cxOnePoint(Tree(list(first)), Tree(list(second)))
        for child in random.sample(children, 2):
            if str(child) not in parents and usable(child):
                return child
    raise ProposalError(f"no usable crossover child within height {MAX_HEIGHT} in {ATTEMPTS} draws")


# -------------------------------------------------------------------------- operators

_RANDOM_LOCK = threading.Lock()


@contextlib.contextmanager
def seeded_from(rng: random.Random) -> Iterator[None]:
    """Run DEAP on the global ``random``, seeded from ``rng``; restore the global state after."""
    seed = rng.getrandbits(64)
    with _RANDOM_LOCK:
        state = random.getstate()
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def _genome_tree(parent: Parent) -> gp.PrimitiveTree:
    try:
        return parse(parent.genome or "")
    except ValueError as err:
        raise ProposalError(f"parent {parent.program_id}'s genome is not a GP loss tree: {err}") from err


def _proposal(tree: gp.PrimitiveTree, operator: str, parents: list[Parent], note: str) -> Proposal:
    source = checked_child(None, render(tree))
    return Proposal(
        source=source, operator=operator, genome=str(tree), note=note,
        parent_ids=tuple(p.program_id for p in parents if p.program_id is not None),
        meta={"height": tree.height, "nodes": len(tree)},
    )


def _has_genome(parent: Parent) -> bool:
    return parent.kind == RULE.name and bool(parent.genome)  # loss trees make rules only


@dataclass
class GpNew:
    """A tree from nothing: a fresh random one, or (with ``seed_probability``) a mutated seed genome."""

    name: str = "gp.new"
    arity: int = 0
    seed_probability: float = 0.3
    #: Which of SEED_GENOMES it may start from: the campaign's prior knowledge, so a config
    #: chooses it (the quickstart leaves PPO-clip out: it is the target, not a starting point).
    seed_genomes: tuple[str, ...] = ("a2c", "pg")

    def __post_init__(self) -> None:
        unknown = [g for g in self.seed_genomes if g not in SEED_GENOMES]
        if unknown:
            raise ValueError(f"unknown GP seed genomes {unknown}; known: {', '.join(sorted(SEED_GENOMES))}")

    def applies(self, parents: list[Parent]) -> bool:
        return True

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        with seeded_from(rng):
            seed = None
            if self.seed_genomes and random.random() < self.seed_probability:
                seed = random.choice(sorted(self.seed_genomes))
                tree, kind = mutate(parse(SEED_GENOMES[seed]))
                note = f"seed {seed} mutated by {kind}"
            else:
                tree = random_tree()
                note = f"random tree of height {tree.height}"
        proposal = _proposal(tree, self.name, [], note)
        if seed is not None:  # the campaign links it to the seed program this genome computes, if it has one
            proposal.meta["seed_genome"] = seed
        return proposal


@dataclass
class GpMutate:
    """One DEAP mutation of the parent's tree (subtree, node, constant or shrink)."""

    name: str = "gp.mutate"
    arity: int = 1

    def applies(self, parents: list[Parent]) -> bool:
        return len(parents) >= 1 and _has_genome(parents[0])

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        if not self.applies(parents):
            raise ProposalError("gp.mutate needs a parent with a GP genome")
        tree = _genome_tree(parents[0])
        with seeded_from(rng):
            child, kind = mutate(tree)
        return _proposal(child, self.name, parents[:1], f"{kind}: {len(tree)} -> {len(child)} nodes")


@dataclass
class GpCrossover:
    """One-point crossover of two parents' trees (a subtree of the second replaces one of the first's)."""

    name: str = "gp.crossover"
    arity: int = 2

    def applies(self, parents: list[Parent]) -> bool:
        return len(parents) >= 2 and _has_genome(parents[0]) and _has_genome(parents[1])

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        if not self.applies(parents):
            raise ProposalError("gp.crossover needs two parents with GP genomes")
        first, second = _genome_tree(parents[0]), _genome_tree(parents[1])
        with seeded_from(rng):
            child = crossover(first, second)
        ids = " and ".join(f"#{p.program_id}" if p.program_id is not None else "a parent" for p in parents[:2])
        return _proposal(child, self.name, parents[:2], f"cxOnePoint of {ids}")


def gp_operators(seed_genomes: tuple[str, ...] = ("a2c", "pg")) -> list[Operator]:
    """The three GP operators, for the campaign's bandit to choose among."""
    return [GpNew(seed_genomes=tuple(seed_genomes)), GpMutate(), GpCrossover()]
