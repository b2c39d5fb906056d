"""Tune a rule's constants by meta-gradients, with evolution strategies where no gradient flows.

One meta-step, for each task's population of agents (:mod:`evosearch.metagrad.population`):

1. the agents' last rollout (collected by themselves) is their training batch;
2. each agent makes one iteration of the harness's updates with the rule's loss, the last K of
   them unrolled (:mod:`evosearch.metagrad.inner`), so the updated weights are a function of
   the constants;
3. the updated agents collect fresh experience; the meta-objective is their policy-gradient
   surrogate on it (A2C's, as DiscoRL's meta-objective), and its gradient through the K
   updates is the meta-gradient; that rollout is also the agents' next training batch;
4. Adam on the constants (log space for positive ones) takes one clipped step, ascending.

Some constants get no meta-gradient however long one unrolls: PPO's clip epsilon only chooses
a branch, and the clipped branch's gradient does not depend on it. With ``method="auto"`` a
constant whose meta-gradient vanishes for ``flat_steps`` meta-steps in a row is handed to
antithetic evolution strategies: the same K updates from the same start, at constants
perturbed along random directions, scored on the same fresh experience, so both methods
estimate the derivative of one function.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from evosearch.metagrad.inner import AdamState, Weights, adam_step, clip_per_agent, rule_fields
from evosearch.metagrad.population import Population, Rollout, policy_objective
from evosearch.train import harness
from evosearch.train.rule import Rule, RuleError

METHODS = ("grad", "es", "auto")


@dataclass(frozen=True)
class TunerConfig:
    """How the constants are tuned; the agents' own settings come from each task's TrainConfig."""

    inner_steps: int = 4  # K: the last K updates of each agent's iteration are differentiated
    population: int = 8  # agents per task, at staggered points of their lifetimes
    method: str = "auto"  # grad, es, or auto (grad, and ES for constants whose meta-gradient vanishes)
    meta_lr: float = 0.05  # Adam on the constants; a step of 0.05 in log space changes one by ~5%
    max_grad_norm: float = 1.0  # clip on the meta-gradient before Adam
    es_pairs: int = 4  # antithetic pairs of perturbations per ES estimate
    es_sigma: float = 0.1  # perturbation scale (log space for positive constants)
    flat_steps: int = 3  # meta-steps of vanishing meta-gradient before auto hands a constant to ES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("inner_steps", "population", "es_pairs", "flat_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("meta_lr", "max_grad_norm", "es_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


@dataclass
class StepRecord:
    """What one meta-step did, for progress lines and the trajectory of the constants."""

    step: int
    values: list[float]  # the constants after this step
    gradient: list[float]  # the estimate of d objective / d theta that was followed
    by_es: list[bool]  # which constants ES tuned this step
    returns: dict[str, float]  # per task: mean return of the episodes the updated agents ended
    objective_gain: float  # first-order gain of the meta-objective predicted for this step
    seconds: float
    replaced: int = 0  # agents whose lifetime ended and were replaced

    def to_dict(self) -> dict:
        returns = {k: v if math.isfinite(v) else None for k, v in self.returns.items()}  # JSON has no NaN
        return {"step": self.step, "values": self.values, "gradient": self.gradient, "by_es": self.by_es,
                "returns": returns, "objective_gain": self.objective_gain, "seconds": self.seconds,
                "replaced": self.replaced}


@dataclass
class _Start:
    """One population's state at the start of a meta-step, kept so ES can replay the same updates."""

    population: Population
    weights: Weights
    adam: AdamState
    rollout: Rollout
    order: list[torch.Tensor]
    fresh: Rollout | None = None


@dataclass
class MetaTuner:
    """Meta-learn ``rule``'s constants (its module reads them from ``CONSTANTS``) on ``tasks``."""

    rule: Rule
    initial: Sequence[float]
    log_space: Sequence[bool]
    tasks: Sequence[harness.TrainConfig]
    config: TunerConfig = TunerConfig()
    device: str | torch.device = "cpu"
    dtype: torch.dtype = torch.float32
    stream: int = 0  # a run cut into jobs gives each job its own random streams
    steps_done: int = 0
    populations: list[Population] = field(init=False)

    def __post_init__(self) -> None:
        if self.rule.module is None or "CONSTANTS" not in self.rule.module.__dict__:
            raise RuleError("the rule was not loaded from a parametric source (no CONSTANTS global)")
        if len(self.initial) != len(self.log_space) or not self.initial:
            raise ValueError("one log_space flag per constant, and at least one constant")
        self.log_mask = torch.tensor(list(self.log_space), dtype=torch.bool)
        values = torch.tensor([float(v) for v in self.initial], dtype=torch.float64)
        self.theta = torch.where(self.log_mask, values.abs().clamp(min=1e-30).log(), values).requires_grad_()
        self.meta_opt = torch.optim.Adam([self.theta], lr=self.config.meta_lr)
        self.flat_count = torch.zeros(len(values), dtype=torch.long)
        self.es_mask = torch.full((len(values),), self.config.method == "es")
        self.es_generator = torch.Generator().manual_seed(self.config.seed * 7 + 1 + 7919 * self.stream)
        base = self.config.seed * 101 + 7919 * self.stream
        self.populations = [Population(task, self.config.population, seed=base + i, device=self.device,
                                       dtype=self.dtype) for i, task in enumerate(self.tasks)]
        self._rollouts: list[Rollout | None] = [None] * len(self.populations)

    # -- the constants ------------------------------------------------------------------------------

    def values(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        theta = self.theta if theta is None else theta
        return torch.where(self.log_mask, theta.exp(), theta)

    def _set_constants(self, theta: torch.Tensor) -> None:
        values = self.values(theta).to(self.dtype)
        self.rule.module.__dict__["CONSTANTS"][:] = list(values.to(self.device).unbind())

    # -- one iteration of the agents' updates ---------------------------------------------------------

    def _updates(self, start: _Start, theta: torch.Tensor, differentiable: bool) -> tuple[Weights, AdamState]:
        """The harness's updates of one iteration, the last K kept in the graph when ``differentiable``."""
        population = start.population
        self._set_constants(theta)
        lr, progress = population.learning_rate(), population.progress()
        data = start.rollout.fields()
        weights, adam = start.weights, start.adam
        total = len(start.order)
        for u, index in enumerate(start.order):
            keep_graph = differentiable and u >= total - self.config.inner_steps
            if not keep_graph:
                weights, adam = {k: w.detach().requires_grad_() for k, w in weights.items()}, adam.detached()
            elif not all(w.requires_grad for w in weights.values()):  # the unrolled window starts here
                weights = {k: w.detach().requires_grad_() for k, w in weights.items()}
            with torch.enable_grad():
                fields = rule_fields(population.model, weights, data, index, progress)
                losses = self.rule.losses(fields)
                if not bool(torch.isfinite(losses).all()):
                    raise RuleError(f"the rule's loss became non-finite on {population.config.env_id}")
                grads = torch.autograd.grad(losses.sum(), list(weights.values()), create_graph=keep_graph)
            grads = clip_per_agent(dict(zip(weights, grads, strict=True)), population.config.max_grad_norm)
            weights, adam = adam_step(weights, grads, adam, lr)
            if not keep_graph:
                weights = {k: w.detach() for k, w in weights.items()}
        return weights, adam

    def _starts(self) -> list[_Start]:
        starts = []
        for i, population in enumerate(self.populations):
            if self._rollouts[i] is None:
                self._rollouts[i] = population.rollout(population.weights)
            rollout = self._rollouts[i]
            if self.rule.advantages is not None:
                self._set_constants(self.theta.detach())
                rollout = population.retarget(rollout, self.rule.compute_advantages)
            starts.append(_Start(population, population.weights, population.adam, rollout,
                                 population.minibatch_order()))
        return starts

    def _objective(self, starts: list[_Start], theta: torch.Tensor, differentiable: bool,
                   collect: bool = False) -> tuple[torch.Tensor, list[tuple[Weights, AdamState]]]:
        """Mean over tasks of the updated agents' surrogate; ``collect`` gathers the fresh rollouts first."""
        total, updated = torch.zeros((), dtype=self.dtype, device=self.device), []
        for start in starts:
            weights, adam = self._updates(start, theta, differentiable)
            if collect:
                start.fresh = start.population.rollout(weights)
            assert start.fresh is not None
            total = total + policy_objective(start.population.model, weights, start.fresh)
            updated.append((weights, adam))
        return total / len(starts), updated

    def es_gradient(self, starts: list[_Start], mask: torch.Tensor) -> torch.Tensor:
        """Antithetic ES estimate of d objective / d theta along the masked coordinates."""
        estimate = torch.zeros_like(self.theta, requires_grad=False)
        sigma = self.config.es_sigma
        base = self.theta.detach()
        with torch.no_grad():
            for _ in range(self.config.es_pairs):
                eps = torch.randn(base.shape, generator=self.es_generator, dtype=base.dtype) * mask
                plus, _ = self._objective(starts, base + sigma * eps, differentiable=False)
                minus, _ = self._objective(starts, base - sigma * eps, differentiable=False)
                estimate += (float(plus) - float(minus)) / (2 * sigma) * eps
        return estimate / self.config.es_pairs

    def objective_at(self, starts: list[_Start], theta: torch.Tensor) -> torch.Tensor:
        """The meta-objective at constants ``theta`` from the same start and on the same fresh experience."""
        with torch.no_grad():
            objective, _ = self._objective(starts, theta, differentiable=False)
        return objective

    # -- a meta-step ----------------------------------------------------------------------------------

    def meta_gradient(self) -> tuple[torch.Tensor, torch.Tensor, list[_Start], list]:
        """``(gradient, objective, starts, updated)`` at the current constants, without stepping."""
        starts = self._starts()
        use_grad = self.config.method != "es"
        objective, updated = self._objective(starts, self.theta, differentiable=use_grad, collect=True)
        if use_grad:
            (gradient,) = torch.autograd.grad(objective, self.theta, allow_unused=True)
            gradient = torch.zeros_like(self.theta) if gradient is None else gradient.detach()
        else:
            gradient = torch.zeros_like(self.theta).detach()
        if not bool(torch.isfinite(gradient).all()):
            raise RuleError("the meta-gradient is not finite: the rule's loss is not differentiable in its constants")
        return gradient, objective.detach(), starts, updated

    def step(self) -> StepRecord:
        began = time.perf_counter()
        gradient, _, starts, updated = self.meta_gradient()
        if self.config.method == "auto":
            vanishing = gradient.abs() <= 1e-8 * float(gradient.abs().max().clamp(min=1e-30))
            vanishing |= gradient == 0
            self.flat_count = torch.where(vanishing, self.flat_count + 1, torch.zeros_like(self.flat_count))
            self.es_mask |= self.flat_count >= self.config.flat_steps
        if bool(self.es_mask.any()):
            es = self.es_gradient(starts, self.es_mask.to(self.theta.dtype))
            gradient = torch.where(self.es_mask, es, gradient)
        norm = float(gradient.norm())
        followed = gradient * min(1.0, self.config.max_grad_norm / (norm + 1e-12))
        before = self.theta.detach().clone()
        self.meta_opt.zero_grad()
        self.theta.grad = -followed  # ascent
        self.meta_opt.step()
        replaced = 0
        for i, (start, (weights, adam)) in enumerate(zip(starts, updated, strict=True)):
            expired = start.population.advance(weights, adam)
            replaced += int(expired.sum())
            self._rollouts[i] = None if bool(expired.any()) else start.fresh
        self.steps_done += 1
        returns = {}
        for start in starts:
            assert start.fresh is not None
            finite = start.fresh.episode_return[torch.isfinite(start.fresh.episode_return)]
            returns[start.population.config.env_id] = float(finite.mean()) if finite.numel() else float("nan")
        gain = float((gradient * (self.theta.detach() - before)).sum())
        return StepRecord(step=self.steps_done, values=[float(v) for v in self.values().detach()],
                          gradient=[float(g) for g in gradient], by_es=[bool(x) for x in self.es_mask],
                          returns=returns, objective_gain=gain, seconds=time.perf_counter() - began,
                          replaced=replaced)

    def close(self) -> None:
        for population in self.populations:
            population.close()

    # -- state carried between sandboxed jobs -----------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        opt = self.meta_opt.state.get(self.theta, {})
        out = {"theta": self.theta.detach().numpy(), "flat_count": self.flat_count.numpy(),
               "es_mask": self.es_mask.numpy(), "steps_done": np.array(self.steps_done)}
        if opt:
            out |= {"opt_m": opt["exp_avg"].numpy(), "opt_v": opt["exp_avg_sq"].numpy(),
                    "opt_step": np.array(float(opt["step"]))}
        for i, population in enumerate(self.populations):
            out |= {f"p{i}.{k}": v for k, v in population.state().items()}
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        size = self.theta.shape[0]
        for key in ("theta", "flat_count", "es_mask"):
            if key not in arrays or arrays[key].shape != (size,):
                raise ValueError(f"saved tuner state lacks {key} of shape ({size},)")
        with torch.no_grad():
            self.theta.copy_(torch.from_numpy(np.asarray(arrays["theta"], dtype=np.float64)))
        self.flat_count = torch.from_numpy(np.asarray(arrays["flat_count"], dtype=np.int64))
        self.es_mask = torch.from_numpy(np.asarray(arrays["es_mask"], dtype=bool))
        self.steps_done = int(arrays["steps_done"])
        if "opt_m" in arrays:
            self.meta_opt.state[self.theta] = {
                "exp_avg": torch.from_numpy(np.asarray(arrays["opt_m"], dtype=np.float64)),
                "exp_avg_sq": torch.from_numpy(np.asarray(arrays["opt_v"], dtype=np.float64)),
                "step": torch.tensor(float(arrays["opt_step"])),
            }
        for i, population in enumerate(self.populations):
            prefix = f"p{i}."
            population.load_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        self._rollouts = [None] * len(self.populations)
