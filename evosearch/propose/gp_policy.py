"""Typed genetic programming over observation features: policy programs, with DEAP.

A GP policy maps a batch of observations ``obs [n, d]`` to actions through expression trees over
the features ``obs[:, i]``. The trees are strongly typed over two types: :class:`Feat` (a
per-environment array, a feature or anything computed from one) and ``float`` (an ephemeral
constant). Constants enter only through ``scale`` (``c * f``) and ``shift`` (``f + c``), so every
tree reads at least one feature and always returns one value per row. Division is protected
(1.0 where ``|denominator| < 1e-6``) and the rendered ``act`` computes in float64 under
``np.errstate(all="ignore")`` and maps NaN to a harmless value, so a random tree is judged on how
it plays, never on a crash.

The genome has one tree per output, which the action space fixes (the environment's
:class:`~evosearch.envs.spaces.EnvSpaces`, from :func:`evosearch.envs.spaces.spaces`):

* discrete with 2 actions: one tree; the action is ``tree > 0``;
* discrete with k > 2 actions: k trees, one score per action; the action is the argmax;
* continuous with d dimensions: d trees, one per dimension, clipped to the action bounds.

The genome is JSON, ``{"env_id": ..., "trees": [str(tree), ...]}``, stored with the program;
the program is the genome rendered by :func:`render`. Every GP program of an environment has the
same text outside its EVOLVE-BLOCK, and mutants and crossovers keep their first parent's text
there byte for byte. Randomness follows :mod:`evosearch.propose.gp`: DEAP runs on the global
``random`` seeded from the operator's rng (:func:`~evosearch.propose.gp.seeded_from`), so the
same rng state gives the same child.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from deap import gp

from evosearch.envs.spaces import ENV_ID_PATTERN, EnvSpaces, UnknownEnvError, spaces
from evosearch.kinds.policy import KIND as POLICY
from evosearch.program import join_block, split_block
from evosearch.propose.base import Operator, Parent, Proposal, ProposalError, checked_child
from evosearch.propose.gp import generate_typed, seeded_from

MAX_HEIGHT = 6  # per tree: deep enough for a PD law with a nonlinearity, shallow enough to read
MAX_NODES = 31  # per tree (a full binary tree of height 4); the bloat limit mutations respect
INIT_HEIGHT = (0, 3)  # half-and-half bounds for fresh trees (height 0: a single feature)
SUBTREE_HEIGHT = (0, 2)  # bounds for the subtree mutUniform grows
ATTEMPTS = 50  # mutations or crossovers per proposal before giving up with a ProposalError
MAX_FEATURES = 512  # GP over single features suits vector observations, not pixels
DIV_EPS = 1e-6  # protected division gives 1.0 where |denominator| < DIV_EPS
UNBOUNDED = 1e6  # continuous actions are clipped to this where the space has no finite bound


class Feat:
    """Type tag: a float array with one value per observation row (a feature or a function of features)."""


# ------------------------------------------------------------------------ environments


def n_trees(spec: EnvSpaces) -> int:
    """Trees in a genome for this action space: one for two actions, else one per action or dimension."""
    return 1 if spec.discrete and spec.act_dim == 2 else spec.act_dim


def env_spec(env_id: str) -> EnvSpaces:
    """The spaces of ``env_id`` (:func:`evosearch.envs.spaces.spaces`), if GP over its features can play it.

    Raises ProposalError when the spaces cannot be had or do not suit GP over single features
    (a dict observation, or more than :data:`MAX_FEATURES` values).
    """
    try:
        spec = spaces(env_id)
    except UnknownEnvError as err:
        raise ProposalError(f"GP policies cannot play {env_id!r}: {err}") from None
    if spec.obs_fields:
        raise ProposalError(f"GP policies cannot play {env_id!r}: its observation is a dict "
                            f"({', '.join(spec.obs_fields)}); GP over single features needs a vector")
    if spec.obs_dim > MAX_FEATURES:
        raise ProposalError(f"GP policies cannot play {env_id!r}: its observation has {spec.obs_dim} values; "
                            f"GP over single features takes at most {MAX_FEATURES}")
    if spec.discrete and spec.act_dim < 2:
        raise ProposalError(f"GP policies cannot play {env_id!r}: it has a single action")
    return spec


def _playable(env_id: str | None) -> bool:
    if env_id is None:
        return False
    try:
        env_spec(env_id)
    except ProposalError:
        return False
    return True


# ------------------------------------------------------------------------ primitive set

_ROUND_CONSTANTS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def policy_constant() -> float:
    """An ephemeral constant, 3 significant digits: half round values, half signed log-uniform on [0.01, 10].

    Module level, not a lambda: DEAP pickles an ephemeral by its generating function.
    """
    sign = random.choice((-1, 1))
    if random.random() < 0.5:
        return sign * random.choice(_ROUND_CONSTANTS)
    return float(f"{sign * 10 ** random.uniform(-2.0, 1.0):.3g}")


def _placeholder(*args: object) -> object:
    raise NotImplementedError("GP policy trees are rendered to source, not compiled by DEAP")


_FEAT_OPS: tuple[tuple[str, list[type]], ...] = (
    ("add", [Feat, Feat]), ("sub", [Feat, Feat]), ("mul", [Feat, Feat]), ("div", [Feat, Feat]),
    ("neg", [Feat]), ("tanh", [Feat]), ("abs", [Feat]), ("max", [Feat, Feat]), ("min", [Feat, Feat]),
    ("scale", [Feat, float]), ("shift", [Feat, float]),
)


@functools.cache
def primitive_set(obs_dim: int) -> gp.PrimitiveSetTyped:
    """The typed set for ``obs_dim`` features ``x0 .. x{obs_dim-1}`` (one set per length, cached)."""
    pset = gp.PrimitiveSetTyped(f"policy{obs_dim}", [], Feat)
    for name, args in _FEAT_OPS:
        pset.addPrimitive(_placeholder, args, Feat, name=name)
    for i in range(obs_dim):
        pset.addTerminal(f"x{i}", Feat, name=f"x{i}")
    pset.addEphemeralConstant("pconst", policy_constant, float)
    return pset


def _const_class(pset: gp.PrimitiveSetTyped) -> type:
    return pset.mapping["pconst"]


def _make_const(pset: gp.PrimitiveSetTyped, value: float) -> gp.Terminal:
    cls = _const_class(pset)
    const = cls.__new__(cls)
    const.value = float(value)
    return const


# -------------------------------------------------------------------------------- trees

_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)(e[-+]?\d+)?")
_TOKENS = re.compile(r"[ \t\n\r\f\v(),]")


def parse_tree(text: str, obs_dim: int) -> gp.PrimitiveTree:
    """One tree of a genome; ``str(parse_tree(t, d)) == t`` for every tree this module writes.

    As in :func:`evosearch.propose.gp.parse`: tokens are checked before DEAP's ``from_string``
    (which would ``eval`` them), and constants come back as the ephemeral class. Raises
    ``ValueError`` for anything that is not one complete, well-typed tree over these features.
    """
    pset = primitive_set(obs_dim)
    for token in filter(None, _TOKENS.split(text)):
        if token not in pset.mapping and not _FLOAT.fullmatch(token):
            raise ValueError(f"tree has an unknown token {token!r} (features are x0 .. x{obs_dim - 1})")
    try:
        tree = gp.PrimitiveTree.from_string(text, pset)
    except (TypeError, IndexError, SyntaxError) as err:
        raise ValueError(f"tree does not parse: {err}") from err
    const = _const_class(pset)
    for i, node in enumerate(tree):
        if isinstance(node, gp.Terminal) and isinstance(node.value, float) and not isinstance(node, const):
            tree[i] = _make_const(pset, node.value)
    if not tree or tree[0].ret is not Feat:
        raise ValueError("tree's root is not a feature expression")
    if sum(node.arity - 1 for node in tree) != -1:
        raise ValueError("tree is not one complete expression (missing or extra arguments)")
    return tree


def genome_json(env_id: str, trees: list[gp.PrimitiveTree]) -> str:
    """The genome string stored with a program."""
    return json.dumps({"env_id": env_id, "trees": [str(t) for t in trees]})


def parse_genome(genome: str) -> tuple[str, list[gp.PrimitiveTree]]:
    """``(env_id, trees)`` of a genome; ``genome_json(*parse_genome(g)) == g`` for genomes written here.

    Raises ``ValueError`` when it is not a policy genome (a rule's tree string, say) or its trees
    do not fit the environment; ``ProposalError`` when the environment's spec cannot be had.
    """
    try:
        data = json.loads(genome)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"not a GP policy genome (not JSON: {err})") from err
    if not (isinstance(data, dict) and isinstance(data.get("env_id"), str) and isinstance(data.get("trees"), list)
            and all(isinstance(t, str) for t in data["trees"])):
        raise ValueError('not a GP policy genome: expected {"env_id": str, "trees": [str, ...]}')
    env_id, texts = data["env_id"], data["trees"]
    spec = env_spec(env_id)
    if len(texts) != n_trees(spec):
        raise ValueError(f"{env_id} needs {n_trees(spec)} tree(s), the genome has {len(texts)}")
    return env_id, [parse_tree(text, spec.obs_dim) for text in texts]


def usable(tree: gp.PrimitiveTree) -> bool:
    """Within the size limits (the bloat control; every tree reads a feature by construction)."""
    return tree.height <= MAX_HEIGHT and len(tree) <= MAX_NODES


def gen_half_and_half(pset: gp.PrimitiveSetTyped, min_: int, max_: int, type_: type | None = None) -> list:
    """Half full trees, half grown ones (Koza's ramped half-and-half), for a typed set."""
    if random.random() < 0.5:
        return generate_typed(pset, min_, max_, lambda height, depth: depth == height, type_)

    def grow(height: int, depth: int) -> bool:
        return depth == height or (depth >= min_ and random.random() < pset.terminalRatio)

    return generate_typed(pset, min_, max_, grow, type_)


def random_tree(obs_dim: int) -> gp.PrimitiveTree:
    """A fresh tree over ``obs_dim`` features, within the size limits."""
    pset = primitive_set(obs_dim)
    while True:  # INIT_HEIGHT keeps trees within the limits; the loop is a guard
        tree = gp.PrimitiveTree(gen_half_and_half(pset, *INIT_HEIGHT))
        if usable(tree):
            return tree


def _jitter(tree: gp.PrimitiveTree, pset: gp.PrimitiveSetTyped) -> None:
    """Scale one constant by a log-normal factor (sometimes flipping its sign); 3 significant digits."""
    consts = [i for i, node in enumerate(tree) if isinstance(node, _const_class(pset))]
    if not consts:
        return
    i = random.choice(consts)
    value = tree[i].value * 10 ** random.gauss(0.0, 0.2) * (-1 if random.random() < 0.1 else 1)
    tree[i] = _make_const(pset, float(f"{value:.3g}"))


def _mutations(pset: gp.PrimitiveSetTyped) -> dict[str, Callable[[gp.PrimitiveTree], object]]:
    """The mutations gp.mutate chooses from, uniformly; each changes the tree in place."""

    def subtree(pset: gp.PrimitiveSetTyped, type_: type) -> list:
        return gen_half_and_half(pset, *SUBTREE_HEIGHT, type_=type_)

    return {
        "mutUniform": lambda tree: gp.mutUniform(tree, expr=subtree, pset=pset),
        "mutNodeReplacement": lambda tree: gp.mutNodeReplacement(tree, pset=pset),
        "mutEphemeral": lambda tree: gp.mutEphemeral(tree, mode="one"),
        "jitter": lambda tree: _jitter(tree, pset),
        "mutShrink": lambda tree: gp.mutShrink(tree),
    }


def mutate(trees: list[gp.PrimitiveTree], obs_dim: int) -> tuple[list[gp.PrimitiveTree], int, str]:
    """A mutant of one tree: ``(new trees, index of the changed tree, mutation name)``."""
    mutations = _mutations(primitive_set(obs_dim))
    for _ in range(ATTEMPTS):
        i = random.randrange(len(trees))
        kind = random.choice(list(mutations))
        child = gp.PrimitiveTree(list(trees[i]))  # nodes are immutable; mutations replace them
        mutations[kind](child)
        if str(child) != str(trees[i]) and usable(child):
            return [*trees[:i], child, *trees[i + 1:]], i, kind
    raise ProposalError(f"no mutant within height {MAX_HEIGHT} and {MAX_NODES} nodes in {ATTEMPTS} draws")


def cx_one_point(receiver: gp.PrimitiveTree, donor: gp.PrimitiveTree) -> gp.PrimitiveTree:
    """One-point subtree crossover: ``receiver`` with one subtree replaced by a subtree of ``donor``.

    Like DEAP's typed ``cxOnePoint``, with two differences. The receiver's root may be the point
    (donor's root may be the subtree, but not both), so a tree that is a single feature still
    takes part. The type is drawn from a sorted list: DEAP draws it from a set of classes, whose
    order follows their ids (addresses), which nothing promises to be the same in another process.
    """
    at: dict[type, list[int]] = defaultdict(list)
    taken: dict[type, list[int]] = defaultdict(list)
    for idx, node in enumerate(receiver):
        at[node.ret].append(idx)
    for idx, node in enumerate(donor):
        taken[node.ret].append(idx)
    common = sorted(set(at) & set(taken), key=lambda t: t.__name__)
    type_ = random.choice(common)  # never empty: both roots are Feat
    i, j = random.choice(at[type_]), random.choice(taken[type_])
    if i == j == 0:
        return gp.PrimitiveTree(list(receiver))  # would copy the donor; the caller draws again
    child = gp.PrimitiveTree(list(receiver))
    child[child.searchSubtree(i)] = donor[donor.searchSubtree(j)]
    return child


def crossover(first: list[gp.PrimitiveTree], second: list[gp.PrimitiveTree]) -> tuple[list[gp.PrimitiveTree], str]:
    """A child of two equally long genomes that differs from both, and how it was made.

    Either whole trees are swapped (each output from either parent, at least one from each;
    only with two or more trees) or one output's trees undergo one-point subtree crossover, the
    other trees coming from the first parent.
    """
    parents = {tuple(str(t) for t in first), tuple(str(t) for t in second)}
    n = len(first)
    for _ in range(ATTEMPTS):
        if n > 1 and random.random() < 0.5:
            take = [random.random() < 0.5 for _ in range(n)]
            if all(take) or not any(take):
                continue
            child = [gp.PrimitiveTree(list(b if t else a)) for a, b, t in zip(first, second, take, strict=True)]
            how = f"trees {', '.join(str(i) for i, t in enumerate(take) if t)} from the second parent"
        else:
            i = random.randrange(n)
            receiver, donor = random.sample([first[i], second[i]], 2)
            child = [*first[:i], cx_one_point(receiver, donor), *first[i + 1:]]
            how = f"one-point crossover on tree {i}"
        if tuple(str(t) for t in child) not in parents and all(usable(t) for t in child):
            return child, how
    raise ProposalError(f"no crossover child differing from both parents within the limits in {ATTEMPTS} draws")


# ------------------------------------------------------------------------------ render

ADD, MUL, UNARY, ATOM = 1, 2, 3, 4  # precedence of the rendered forms


def _wrap(part: tuple[str, int], min_prec: int) -> str:
    text, prec = part
    return f"({text})" if prec < min_prec else text


def _right(part: tuple[str, int], min_prec: int) -> str:
    """A right operand: also parenthesised when it starts with a minus (``a - (-b)``, not ``a - -b``)."""
    text, prec = part
    return f"({text})" if prec < min_prec or text.startswith("-") else text


def _shift(a: tuple[str, int], c: tuple[str, int]) -> tuple[str, int]:
    const = c[0]
    if const.startswith("-"):
        return f"{_wrap(a, ADD)} - {const[1:]}", ADD
    return f"{_wrap(a, ADD)} + {const}", ADD


_FORMATS: dict[str, Callable[..., tuple[str, int]]] = {
    "add": lambda a, b: (f"{_wrap(a, ADD)} + {_right(b, MUL)}", ADD),
    "sub": lambda a, b: (f"{_wrap(a, ADD)} - {_right(b, MUL)}", ADD),
    "mul": lambda a, b: (f"{_wrap(a, MUL)} * {_right(b, UNARY)}", MUL),
    "div": lambda a, b: (f"safe_div({a[0]}, {b[0]})", ATOM),
    "neg": lambda a: (f"-{_right(a, UNARY)}", UNARY),
    "tanh": lambda a: (f"np.tanh({a[0]})", ATOM),
    "abs": lambda a: (f"np.abs({a[0]})", ATOM),
    "max": lambda a, b: (f"np.maximum({a[0]}, {b[0]})", ATOM),
    "min": lambda a, b: (f"np.minimum({a[0]}, {b[0]})", ATOM),
    "scale": lambda a, c: (f"{c[0]} * {_right(a, UNARY)}", MUL),
    "shift": _shift,
}


def _render_node(nodes: Iterator[gp.Primitive | gp.Terminal]) -> tuple[str, int]:
    node = next(nodes)
    if isinstance(node, gp.Terminal):
        if node.ret is float:
            text = repr(float(node.value))
            return text, UNARY if text.startswith("-") else ATOM
        return f"obs[:, {int(node.name[1:])}]", ATOM
    args = [_render_node(nodes) for _ in range(node.arity)]
    return _FORMATS[node.name](*args)


def expression(tree: gp.PrimitiveTree) -> str:
    """The tree as a numpy expression over ``obs`` (``safe_div`` is the protected division)."""
    return _render_node(iter(tree))[0]


def _bound(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


def _header(env_id: str, spec: EnvSpaces) -> str:
    if spec.discrete and spec.act_dim == 2:
        how = ("One expression over the observation features obs[:, i] decides: action 1 where it is\n"
               "positive, action 0 elsewhere.")
    elif spec.discrete:
        how = (f"One expression over the observation features obs[:, i] per action scores each of the\n"
               f"{spec.act_dim} actions; the highest score is taken.")
    else:
        how = (f"One expression over the observation features obs[:, i] per action dimension ({spec.act_dim})\n"
               f"gives the action, clipped to the action bounds.")
    return (
        f'"""{env_id}: a policy evolved by genetic programming over observation features.\n\n'
        f"{how} The expressions are strongly typed GP trees\n"
        f"(evosearch.propose.gp_policy) over {spec.obs_dim} features and constants; the program's genome\n"
        f"holds them and the EVOLVE-BLOCK below is rendered from it.\n"
        f'"""\n\n'
        f"import numpy as np\n\n"
        f'ENV_ID = "{env_id}"  # the environment this policy plays (read by the evaluator, not evolved)\n\n'
    )


_SAFE_DIV = f'''def safe_div(a, b):
    """Protected division: 1.0 where |b| < {DIV_EPS:g}."""
    small = np.abs(b) < {DIV_EPS:g}
    return np.where(small, 1.0, a / np.where(small, 1.0, b))


'''


def render(env_id: str, trees: list[gp.PrimitiveTree]) -> str:
    """The whole policy program for a genome: docstring, ``import numpy``, ``ENV_ID``, EVOLVE-BLOCK with ``act``."""
    if not ENV_ID_PATTERN.fullmatch(env_id):  # it is written into the program's source
        raise ProposalError(f"{env_id!r} is not an environment id")
    spec = env_spec(env_id)
    if len(trees) != n_trees(spec):
        raise ProposalError(f"{env_id} needs {n_trees(spec)} tree(s), got {len(trees)}")
    exprs = [expression(t) for t in trees]
    if spec.discrete and spec.act_dim == 2:
        names = ["score"]
    elif spec.discrete:
        names = [f"score{i}" for i in range(spec.act_dim)]
    else:
        names = [f"action{i}" for i in range(spec.act_dim)]
    body = [
        "def act(obs):",
        "    # Float64, and no warnings: a product of large features may overflow, or 0 * inf give NaN.",
        "    obs = np.asarray(obs, dtype=np.float64)",
        '    with np.errstate(all="ignore"):',
        *(f"        {name} = {expr}" for name, expr in zip(names, exprs, strict=True)),
    ]
    if spec.discrete and spec.act_dim == 2:
        body.append("    return (score > 0).astype(np.int64)  # NaN counts as not positive")
    elif spec.discrete:
        body += [
            f"    scores = np.stack([{', '.join(names)}], axis=1)",
            "    scores = np.where(np.isnan(scores), -np.inf, scores)  # a NaN score never wins",
            "    return np.argmax(scores, axis=1).astype(np.int64)",
        ]
    else:
        lows = [_bound(v, -UNBOUNDED) for v in spec.low]
        highs = [_bound(v, UNBOUNDED) for v in spec.high]
        if len(set(lows)) == 1 and len(set(highs)) == 1:
            low, high = repr(lows[0]), repr(highs[0])
        else:
            low, high = repr(lows), repr(highs)
        body += [
            f"    action = np.stack([{', '.join(names)}], axis=1)",
            f"    action = np.clip(np.nan_to_num(action, nan=0.0), {low}, {high})",
            "    return action.astype(np.float32)",
        ]
    helper = _SAFE_DIV if any("safe_div(" in e for e in exprs) else ""
    return _header(env_id, spec) + "# EVOLVE-BLOCK-START\n" + helper + "\n".join(body) + "\n# EVOLVE-BLOCK-END\n"


# --------------------------------------------------------------------------- operators


def _nodes(trees: list[gp.PrimitiveTree]) -> int:
    return sum(len(t) for t in trees)


def _genome_of(parent: Parent) -> tuple[str, list[gp.PrimitiveTree]] | None:
    """The parent's policy genome, if it has one that parses and matches its ENV_ID; else None."""
    if not parent.genome:
        return None
    try:
        env_id, trees = parse_genome(parent.genome)
    except (ValueError, ProposalError):
        return None
    return (env_id, trees) if env_id == POLICY.env_id(parent.source) else None


def _proposal(env_id: str, trees: list[gp.PrimitiveTree], operator: str, parents: list[Parent],
              note: str, base: Parent | None) -> Proposal:
    """Render the child; with a ``base`` parent, keep the base's text outside the EVOLVE-BLOCK."""
    source = render(env_id, trees)
    if base is not None:
        head, _, tail = split_block(base.source)
        source = join_block(head, split_block(source)[1], tail)
    return Proposal(
        source=checked_child(base.source if base is not None else None, source, POLICY.name),
        operator=operator, genome=genome_json(env_id, trees), note=note,
        parent_ids=tuple(p.program_id for p in parents if p.program_id is not None),
        meta={"env_id": env_id, "trees": len(trees), "nodes": _nodes(trees),
              "height": max(t.height for t in trees)},
    )


@dataclass
class GpPolicyNew:
    """A fresh random genome for the first parent's ENV_ID (any policy parent: it only gives the env)."""

    name: str = "gp.new"
    arity: int = 1

    def applies(self, parents: list[Parent]) -> bool:
        return len(parents) >= 1 and _playable(POLICY.env_id(parents[0].source))

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        env_id = POLICY.env_id(parents[0].source) if parents else None
        if env_id is None:
            raise ProposalError("gp.new needs a policy parent with an ENV_ID to know the environment")
        spec = env_spec(env_id)
        with seeded_from(rng):
            trees = [random_tree(spec.obs_dim) for _ in range(n_trees(spec))]
        note = f"random genome for {env_id}: {len(trees)} tree(s), {_nodes(trees)} nodes"
        return _proposal(env_id, trees, self.name, parents[:1], note, base=None)


@dataclass
class GpPolicyMutate:
    """One DEAP mutation (subtree, node, constant, jitter or shrink) of one of the parent's trees."""

    name: str = "gp.mutate"
    arity: int = 1

    def applies(self, parents: list[Parent]) -> bool:
        return len(parents) >= 1 and _genome_of(parents[0]) is not None

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        found = _genome_of(parents[0]) if parents else None
        if found is None:
            raise ProposalError("gp.mutate needs a parent with a GP policy genome for its ENV_ID")
        env_id, trees = found
        with seeded_from(rng):
            child, i, kind = mutate(trees, env_spec(env_id).obs_dim)
        note = f"{kind} on tree {i}: {len(trees[i])} -> {len(child[i])} nodes"
        return _proposal(env_id, child, self.name, parents[:1], note, base=parents[0])


@dataclass
class GpPolicyCrossover:
    """Crossover of two genomes for the same env: whole trees swapped, or one tree's subtrees."""

    name: str = "gp.crossover"
    arity: int = 2

    def applies(self, parents: list[Parent]) -> bool:
        if len(parents) < 2:
            return False
        first, second = _genome_of(parents[0]), _genome_of(parents[1])
        return (first is not None and second is not None and first[0] == second[0]
                and len(first[1]) == len(second[1]))

    def propose(self, parents: list[Parent], rng: random.Random) -> Proposal:
        if not self.applies(parents):
            raise ProposalError("gp.crossover needs two parents with GP policy genomes for the same env")
        (env_id, first), (_, second) = _genome_of(parents[0]), _genome_of(parents[1])
        with seeded_from(rng):
            child, how = crossover(first, second)
        ids = " and ".join(f"#{p.program_id}" if p.program_id is not None else "a parent" for p in parents[:2])
        return _proposal(env_id, child, self.name, parents[:2], f"{how} of {ids}", base=parents[0])


def gp_policy_operators() -> list[Operator]:
    """The three GP operators for policy campaigns, for the campaign's bandit to choose among."""
    return [GpPolicyNew(), GpPolicyMutate(), GpPolicyCrossover()]
